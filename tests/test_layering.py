"""The code imports only downward: configs (the typed schema) / utils -> models -> policy -> data / train /
libero_eval -> the entry points (scripts/, main_sft.py, download_libero.py). Evaluation stands on the policy,
never on the trainer; no library module imports an entry point; no module imports another module's private
names; and no two modules import each other, directly or around a longer circle."""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["configs", "utils", "models", "policy", "data", "train", "libero_eval"]
TOP_LEVEL = sorted(p.stem for p in REPO.glob("*.py"))  # main_sft, download_libero: command-line programs
ENTRY_POINTS = {"scripts", *TOP_LEVEL}
LOWER_ONLY = {
    "configs": {"data", "models", "policy", "train", "libero_eval"},
    "utils": {"configs", "data", "models", "policy", "train", "libero_eval"},
    "models": {"policy", "train", "libero_eval"},
    "policy": {"train", "libero_eval"},
    "data": {"train", "libero_eval"},
    "train": {"libero_eval"},
    "libero_eval": {"train"},
}
FORBIDDEN = {package: LOWER_ONLY[package] | ENTRY_POINTS for package in PACKAGES}


def module_files() -> dict[str, Path]:
    """Dotted name -> file of every module of the repository outside tests/ (packages, scripts, top level)."""
    files = {p.stem: p for p in REPO.glob("*.py")}
    for package in [*PACKAGES, "scripts"]:
        for p in sorted((REPO / package).rglob("*.py")):
            parts = p.relative_to(REPO).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return files


MODULES = module_files()


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def imported_packages(path: Path) -> set[str]:
    """Top-level package of every import in the file, including imports inside functions."""
    found = set()
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def resolve(dotted: str) -> str | None:
    """The repository module a dotted import name lands in (None: outside the repository)."""
    while dotted not in MODULES and "." in dotted:
        dotted = dotted.rsplit(".", 1)[0]
    return dotted if dotted in MODULES else None


def imported_modules(path: Path) -> dict[str, set[str]]:
    """Repository module -> the names imported from it (``*`` for the module itself), in any scope."""
    found: dict[str, set[str]] = {}
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            for a in node.names:
                if resolve(a.name):
                    found.setdefault(resolve(a.name), set()).add("*")
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import"
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                if sub in MODULES:
                    found.setdefault(sub, set()).add("*")
                elif resolve(node.module):
                    found.setdefault(resolve(node.module), set()).add(a.name)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_lower_layers(package):
    bad = {str(p.relative_to(REPO)): sorted(imported_packages(p) & FORBIDDEN[package])
           for p in sorted((REPO / package).rglob("*.py"))}
    assert not {k: v for k, v in bad.items() if v}


@pytest.mark.parametrize("name", [*TOP_LEVEL, "scripts"])
def test_entry_points_import_no_other_entry_point(name):
    """scripts/ and the top-level programs stand on the packages, not on each other (a script may use
    another script's public ``main`` or constants, never a top-level program)."""
    paths = [MODULES[name]] if name in TOP_LEVEL else sorted((REPO / "scripts").glob("*.py"))
    bad = {str(p.relative_to(REPO)): sorted(imported_packages(p) & (set(TOP_LEVEL) - {name}))
           for p in paths}
    assert not {k: v for k, v in bad.items() if v}


def private_uses(path: Path, own: str) -> list[str]:
    """``_name`` taken from another repository module: imported by name, or read as ``alias._name``."""
    bad, aliases = [], {}
    for node in ast.walk(parse(path)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                full = a.name if isinstance(node, ast.Import) else f"{node.module}.{a.name}"
                target = resolve(full)
                if target is None or target == own:
                    continue
                if full in MODULES or (isinstance(node, ast.Import) and a.asname):
                    aliases[a.asname or a.name] = full
                if any(part.startswith("_") and not part.startswith("__") for part in full.split(".")):
                    bad.append(full)
    for node in ast.walk(parse(path)):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            bad.append(f"{aliases[node.value.id]}.{node.attr}")
    return sorted(set(bad))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_uses_another_modules_private_names(name):
    """What two modules share gets a public name (e.g. `libero_eval.env.inner_env`), in the lower one."""
    assert not private_uses(MODULES[name], name)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph` (a list of modules, first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_no_import_cycle_between_modules():
    """Module level, imports inside functions included: a lazy import still ties two modules together."""
    graph = {name: set(imported_modules(p)) - {name} for name, p in MODULES.items()}
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_cycle_finder_sees_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


MAX_FUNCTION_LINES = 80


@pytest.mark.parametrize("package", [*PACKAGES, "scripts", *TOP_LEVEL])
def test_no_function_is_longer_than_a_screen(package):
    """Long functions with closures hid the loops' structure; each piece gets a name instead."""
    long = {}
    paths = [MODULES[package]] if package in TOP_LEVEL else sorted((REPO / package).rglob("*.py"))
    for p in paths:
        for node in ast.walk(parse(p)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{p.relative_to(REPO)}:{node.name}"] = lines
    assert not long


MAX_SCRIPTS_SHARE = 0.15


def test_scripts_are_a_thin_layer():
    """scripts/ holds entry points only: at most 15% of the Python lines outside tests/ (library code
    that grows there belongs in a package)."""
    lines = {name: len(p.read_text().splitlines()) for name, p in MODULES.items()}
    scripts = sum(n for name, n in lines.items() if name.split(".")[0] == "scripts")
    share = scripts / sum(lines.values())
    assert share <= MAX_SCRIPTS_SHARE, f"scripts/ is {share:.1%} of the Python lines ({scripts} of {sum(lines.values())})"
