"""The packages import only downward: configs (the typed schema) / utils -> models -> policy -> data / train / libero_eval
-> scripts. Evaluation stands on the policy, never on the trainer; no library module imports a script."""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "configs": {"data", "models", "policy", "train", "libero_eval", "scripts"},
    "utils": {"configs", "data", "models", "policy", "train", "libero_eval", "scripts"},
    "models": {"policy", "train", "libero_eval", "scripts"},
    "policy": {"train", "libero_eval", "scripts"},
    "data": {"train", "libero_eval", "scripts"},
    "train": {"libero_eval", "scripts"},
    "libero_eval": {"train", "scripts"},
}


def imported_packages(path: Path) -> set[str]:
    """Top-level package of every import in the file, including imports inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_lower_layers(package):
    bad = {str(p.relative_to(REPO)): sorted(imported_packages(p) & FORBIDDEN[package])
           for p in sorted((REPO / package).rglob("*.py"))}
    assert not {k: v for k, v in bad.items() if v}


MAX_FUNCTION_LINES = 80


@pytest.mark.parametrize("package", ["configs", "models", "policy", "data", "train", "libero_eval"])
def test_no_function_is_longer_than_a_screen(package):
    """Long functions with closures hid the loops' structure; each piece gets a name instead."""
    long = {}
    for p in sorted((REPO / package).rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{p.relative_to(REPO)}:{node.name}"] = lines
    assert not long
