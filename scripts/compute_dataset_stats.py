"""Compute per-suite state/action statistics and merge them into configs/dataset_stat.json.

Usage:
    python -m scripts.compute_dataset_stats --datasets_config configs/finetune_datasets.json \
        --out configs/dataset_stat.json [--config configs/base.yaml] [--set dataset.action_encoding=delta]
        [--suites libero_goal ...]

Only the low-dimensional arrays are read (fast). Suites already in the output file and not
recomputed are kept; the file is replaced atomically.
"""
from __future__ import annotations

import argparse
import logging

from configs.errors import exit_cli
from configs.loader import fill_from_base, load_typed
from configs.schema import Config
from data.dataset import LiberoDataset
from data.stats import compute_suite_stats, merge_stats_file

log = logging.getLogger("compute_dataset_stats")


def load_yaml_config(path: str | None, overrides: list[str] | None = None) -> Config:
    """The typed experiment config via ``configs.loader`` (``inherit:`` and dotted overrides); base.yaml's
    defaults when no path is given. Only its ``common``/``dataset`` sections matter to the data code."""
    if path is None:
        return fill_from_base({})
    return load_typed(path, overrides or [])  # a ConfigError ends the CLI with one line (run_cli)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets_config", default=None, help="suites table (default: dataset.datasets_config of --config)")
    ap.add_argument("--out", default="configs/dataset_stat.json")
    ap.add_argument("--config", default="configs/base.yaml",
                    help="experiment yaml (its dataset section picks action_encoding, use_joint_state, ...)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override, e.g. --set dataset.action_encoding=delta (repeatable)")
    ap.add_argument("--suites", nargs="*", default=None, help="subset of suites (default: all)")
    ap.add_argument("--cache_dir", default=None, help="index cache folder (default: next to the data)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    cfg = load_yaml_config(args.config, args.overrides)
    table = args.datasets_config or cfg.dataset.datasets_config
    ds = LiberoDataset(cfg, table, suites=args.suites, cache_dir=args.cache_dir)
    new = {}
    for suite in ds.suite_names:
        new[suite] = compute_suite_stats(ds, suite)
        log.info("%s: %d samples", suite, new[suite]["num_samples"])
    merge_stats_file(args.out, new)
    log.info("wrote %s (%s)", args.out, ", ".join(new))


if __name__ == "__main__":
    exit_cli(main)
