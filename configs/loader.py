"""YAML presets: one file per experiment, an optional ``inherit:`` parent, dotted overrides.

    cfg = load_typed("configs/tiny.yaml", ["model.rdt.depth=2", "dataset.action_encoding=delta"])
    cfg.model.rdt.depth                               # configs.schema.Config
    load_config(...)                                  # the same, as a plain validated dict

Overrides may only set keys that exist (a typo fails with a "did you mean"), values are parsed as
YAML (``true``, ``1e-4``, ``[1, 2]``, ``null``). Every preset inherits ``base.yaml``, the one file
that holds the defaults; ``configs/schema.py`` validates the result.
"""
from __future__ import annotations

import copy
import difflib
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

from configs.schema import Config, ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
BASE_PRESET = REPO_ROOT / "configs" / "base.yaml"

__all__ = ["BASE_PRESET", "Config", "ConfigError", "apply_override", "fill_from_base", "load_config", "load_typed",
           "read_preset"]


class _Loader(yaml.SafeLoader):
    """YAML 1.1's safe loader, with YAML 1.2's floats: ``1e-4`` / ``5E3`` (no dot) are numbers, not
    strings, as every reader of a recipe expects."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def parse_yaml(text: str, where: str) -> Any:
    """``text`` parsed as YAML (with 1.2 floats); a syntax error is one ``ConfigError`` line naming
    ``where`` (a file, or the ``--set`` assignment) and the line and column."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML{at}: {problem}") from None


def _deep_merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_yaml(path: Path) -> dict:
    if path.is_dir():
        raise ConfigError(f"config file {path}: is a folder; expected a YAML file")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc})") from None
    data = parse_yaml(text, str(path))
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    parent = data.pop("inherit", None)
    if parent is not None and not isinstance(parent, str):
        raise ConfigError(f"{path}: inherit is {parent!r}; expected the file name of a preset (e.g. base.yaml)")
    if parent:
        data = _deep_merge(_read_yaml((path.parent / parent).resolve()), data)
    return data


def apply_override(cfg: dict, assignment: str) -> None:
    """Set ``a.b.c=value`` in place; the key path must already exist."""
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} must look like key.path=value")
    dotted, raw = assignment.split("=", 1)
    keys = dotted.strip().split(".")
    node = cfg
    for depth, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            where = ".".join(keys[:depth]) or "<top level>"
            options = list(node) if isinstance(node, dict) else []
            hint = difflib.get_close_matches(key, options, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else f"; valid keys: {sorted(options)}"
            raise ConfigError(f"unknown config key {key!r} under {where}{extra}")
        if depth == len(keys) - 1:
            node[key] = parse_yaml(raw, f"--set {assignment}")
        else:
            node = node[key]


def read_preset(path: str | Path, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """The raw merged dict of a preset (``inherit:`` resolved) with ``overrides`` applied."""
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = REPO_ROOT / path
    cfg = _read_yaml(path.resolve())
    for assignment in overrides:
        apply_override(cfg, assignment)
    return cfg


def load_typed(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Preset + overrides -> the validated typed config."""
    return Config.from_dict(read_preset(path, overrides), source=str(path))


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Preset + overrides -> the validated config as a plain nested dict."""
    return load_typed(path, overrides).to_dict()


def fill_from_base(partial: dict, source: str = "config", base: dict | None = None) -> Config:
    """A config recorded by an older version (a checkpoint's train_config.json) with the keys it
    lacks taken from base.yaml (``base``: its dict, when the caller has read it already), where every
    default lives; keys it has are kept as they are."""
    base = _read_yaml(BASE_PRESET) if base is None else base
    return Config.from_dict(_deep_merge(base, partial), source=source)
