"""YAML configuration: one file per experiment, an optional ``inherit:`` parent, dotted overrides.

    cfg = load_config("configs/tiny.yaml", ["model.rdt.depth=2", "dataset.action_encoding=delta"])

Overrides may only set keys that exist (a typo fails with a "did you mean"), values are parsed as
YAML (``true``, ``1e-4``, ``[1, 2]``, ``null``).
"""
from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any, Iterable

import yaml

from configs.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[1]


class ConfigError(UserError, ValueError):
    """A bad config file, key or value."""


def _deep_merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    parent = data.pop("inherit", None)
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
            node[key] = yaml.safe_load(raw)
        else:
            node = node[key]


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> dict[str, Any]:
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = REPO_ROOT / path
    cfg = _read_yaml(path.resolve())
    for assignment in overrides:
        apply_override(cfg, assignment)
    validate_config(cfg, source=str(path))
    return cfg


def validate_config(cfg: dict, source: str = "config") -> None:
    for section in ("common", "dataset", "model"):
        if section not in cfg:
            raise ConfigError(f"{source}: missing section {section!r}")
    enc = cfg["dataset"].get("action_encoding")
    if enc not in ("abs_goal", "delta"):
        raise ConfigError(f"{source}: dataset.action_encoding is {enc!r}; expected 'abs_goal' or 'delta'")
    if cfg["common"]["state_dim"] != cfg["model"]["state_token_dim"]:
        raise ConfigError(f"{source}: common.state_dim ({cfg['common']['state_dim']}) must equal "
                          f"model.state_token_dim ({cfg['model']['state_token_dim']})")
