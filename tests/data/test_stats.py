"""Dataset statistics and the data scripts (compute_dataset_stats, bench_dataloader)."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from configs.loader import fill_from_base
from data.dataset import LiberoDataset
from data.stats import compute_suite_stats, merge_stats_file

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def suite_json(tmp_path, libero_fixture_file):
    folder = tmp_path / "goal"
    folder.mkdir()
    shutil.copy(libero_fixture_file, folder / "put_the_bowl_on_the_stove_demo.hdf5")
    path = tmp_path / "finetune_datasets.json"
    path.write_text(json.dumps({"goal_demo": {"path": str(folder), "sample_weight": 1.0, "layout": "raw"}}))
    return path


def test_suite_stats_values(suite_json, libero_fixture_file):
    ds = LiberoDataset(fill_from_base({}), suite_json)
    st = compute_suite_stats(ds, "goal_demo")
    assert st["num_samples"] == 210 and st["action_encoding"] == "abs_goal"
    with h5py.File(libero_fixture_file, "r") as f:
        pos = np.concatenate([f[f"data/demo_{i}/obs/ee_pos"][:-1] for i in range(3)])  # obs[k-1], k >= 1
        acts = np.concatenate([f[f"data/demo_{i}/actions"][1:] for i in range(3)])
    np.testing.assert_allclose(st["state_mean"][30:33], pos.mean(0), atol=1e-12)
    np.testing.assert_allclose(st["state_std"][30:33], pos.std(0), atol=1e-12)
    np.testing.assert_allclose(st["state_min"][30:33], pos.min(0), atol=1e-12)
    np.testing.assert_allclose(st["action_mean"][10], ((1 - acts[:, 6]) / 2).mean(), atol=1e-12)
    for key in ("state_mean", "state_std", "state_min", "state_max", "action_mean", "action_max"):
        v = np.asarray(st[key])
        assert v.shape == (128,)
        assert not v[[i for i in range(128) if i not in (10, *range(30, 39))]].any()
    assert 0 <= st["state_min"][10] <= st["state_max"][10] <= 1


def test_merge_keeps_other_suites_and_is_atomic(tmp_path):
    out = tmp_path / "dataset_stat.json"
    out.write_text(json.dumps({"other": {"state_mean": [0.0] * 128}, "goal_demo": {"old": True}}))
    merged = merge_stats_file(out, {"goal_demo": {"state_mean": [1.0] * 128}})
    on_disk = json.loads(out.read_text())
    assert on_disk == merged and set(on_disk) == {"other", "goal_demo"} and "old" not in on_disk["goal_demo"]
    assert not list(tmp_path.glob("*.tmp"))
    out.write_text("{broken")
    with pytest.raises(ValueError, match="not valid JSON"):
        merge_stats_file(out, {})


def test_compute_dataset_stats_cli(suite_json, tmp_path):
    out = tmp_path / "stats.json"
    out.write_text(json.dumps({"kept": {"x": 1}}))
    bad = subprocess.run([sys.executable, "-m", "scripts.compute_dataset_stats", "--datasets_config",
                          str(suite_json), "--out", str(out), "--config", str(REPO / "configs" / "missing_ok.yaml")],
                         cwd=REPO, capture_output=True, text=True)  # missing yaml -> clear exit, nothing written
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("error: ") and "missing_ok.yaml" in bad.stderr
    assert json.loads(out.read_text()) == {"kept": {"x": 1}}
    r = subprocess.run([sys.executable, "-m", "scripts.compute_dataset_stats", "--datasets_config", str(suite_json),
                        "--out", str(out)], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert set(data) == {"kept", "goal_demo"} and data["goal_demo"]["num_samples"] == 210


@pytest.mark.slow
def test_bench_dataloader_last_line(suite_json):
    r = subprocess.run([sys.executable, "-m", "scripts.bench_dataloader", "--datasets_config", str(suite_json),
                        "--batch_size", "8", "--num_workers", "0", "--num_batches", "3"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"loader [\d.]+ samples/s, naive [\d.]+ samples/s, ratio [\d.]+", last), last
