"""download_libero.py (data.download, data.hub, data.verify): no network -> one clear line, non-zero
exit, nothing in place; staged downloads are verified before an atomic rename; --verify (shared with
scripts/verify_dataset.py) on the LIBERO-made fixture file and on corrupted copies."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import download_libero as dl
from data import hub
from data import verify as dv
from scripts import verify_dataset as vd

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE_NAME = "put_the_bowl_on_the_stove_demo.hdf5"


def test_no_network_is_one_clear_line(tmp_path):
    env = dict(os.environ, HF_ENDPOINT="http://127.0.0.1:9", HF_HUB_OFFLINE="0")
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, "download_libero.py", "--suites", "libero_goal", "--out", str(tmp_path),
                           "--no_progress"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == dl.EXIT_NETWORK
    err = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1, proc.stderr
    assert "yifengzhu-hf/LIBERO-datasets" in err[0] and "HF_ENDPOINT" in err[0] and "by hand" in err[0]
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.rglob("*.hdf5")) and not (tmp_path / "libero_goal").exists()


def test_repo_id_is_a_flag(tmp_path, capsys):
    assert dl.main(["--source", "no_noops", "--suites", "libero_goal", "--out", str(tmp_path)]) == dl.EXIT_USAGE
    assert "--repo_id" in capsys.readouterr().err


@pytest.fixture
def fake_hub(monkeypatch, libero_fixture_file):
    """The hub lists one libero_goal file; `content` decides what a download writes."""
    import huggingface_hub

    state = {"content": "good", "calls": 0}
    size = libero_fixture_file.stat().st_size
    remote = [hub.RemoteFile(f"libero_goal/{FIXTURE_NAME}", size, None)]
    monkeypatch.setattr(hub, "probe_endpoint", lambda *a, **k: None)
    monkeypatch.setattr(hub, "list_remote", lambda *a, **k: remote)

    def fake_download(repo_id, filename, repo_type=None, revision=None, local_dir=None, **kw):
        state["calls"] += 1
        target = Path(local_dir) / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        if state["content"] == "good":
            shutil.copyfile(libero_fixture_file, target)
        elif state["content"] == "truncated":
            target.write_bytes(libero_fixture_file.read_bytes()[: size // 2])
        else:  # right size, garbage bytes
            target.write_bytes(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())
        return str(target)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    return state


def test_download_stages_verifies_and_renames(tmp_path, fake_hub):
    assert dl.main(["--suites", "libero_goal", "--out", str(tmp_path), "--no_progress"]) == 0
    placed = tmp_path / "libero_goal" / FIXTURE_NAME
    assert placed.is_file() and fake_hub["calls"] == 1
    assert not list((tmp_path / ".staging").rglob("*.hdf5"))  # moved, not copied
    # a rerun resumes: the complete file is not downloaded again
    assert dl.main(["--suites", "libero_goal", "--out", str(tmp_path), "--no_progress"]) == 0
    assert fake_hub["calls"] == 1


@pytest.mark.parametrize("content", ["truncated", "garbage"])
def test_bad_download_never_lands_in_place(tmp_path, fake_hub, content, capsys):
    fake_hub["content"] = content
    rc = dl.main(["--suites", "libero_goal", "--out", str(tmp_path), "--no_progress"])
    assert rc == dl.EXIT_VERIFY
    assert "failed verification" in capsys.readouterr().err
    assert not (tmp_path / "libero_goal").exists()
    assert not list((tmp_path / ".staging").rglob("*.hdf5"))  # bad file removed, next run starts clean


@pytest.fixture
def suite_dir(tmp_path, libero_fixture_file) -> Path:
    d = tmp_path / "libero_goal"
    d.mkdir()
    shutil.copyfile(libero_fixture_file, d / FIXTURE_NAME)
    return d


def test_verify_fixture(suite_dir, capsys):
    assert dl.main(["--verify", "--suites", "libero_goal", "--out", str(suite_dir.parent)]) == 0
    out = capsys.readouterr().out
    row = [ln for ln in out.splitlines() if ln.startswith("libero_goal")][0].split()
    assert row == ["libero_goal", "1", "3", "213", "1", "raw", "0"]
    rep = dv.verify_file(suite_dir / FIXTURE_NAME)
    assert rep.ok and rep.measured == "raw" and rep.layout == "raw"
    assert rep.instruction == "put the bowl on the stove"


def _corrupt(path: Path, how: str) -> str:
    """Damage a copy; returns a substring the error must contain."""
    if how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
        return FIXTURE_NAME
    with h5py.File(path, "r+") as f:
        if how == "nan":
            ee = f["data/demo_1/obs/ee_pos"]
            arr = ee[()]
            arr[7, 1] = np.nan
            ee[...] = arr
            return "data/demo_1/obs/ee_pos"
        if how == "missing_key":
            del f["data/demo_2/states"]
            return "data/demo_2/states"
        if how == "length":
            g = f["data/demo_0"]
            a = g["actions"][()]
            del g["robot_states"]
            g.create_dataset("robot_states", data=np.zeros((len(a) - 1, 9)))
            return "data/demo_0/robot_states"
        if how == "layout":  # claims the no-noops layout, but obs are recorded after the action
            f["data"].attrs["layout"] = "no_noops"
            return "alignment"
        if how == "total":
            f["data"].attrs["total"] = np.int64(5)
            return "total"
    raise ValueError(how)


@pytest.mark.parametrize("how", ["truncated", "nan", "missing_key", "length", "layout", "total"])
def test_verify_corrupted_copy(suite_dir, how, capsys):
    needle = _corrupt(suite_dir / FIXTURE_NAME, how)
    assert vd.main([str(suite_dir)]) == 1
    out = capsys.readouterr().out
    errors = [ln for ln in out.splitlines() if ln.startswith("ERROR")]
    assert errors and any(needle in e and FIXTURE_NAME in e for e in errors), out
    assert dl.main(["--verify", "--suites", "libero_goal", "--out", str(suite_dir.parent)]) == dl.EXIT_VERIFY


def test_verify_missing_suite_folder(tmp_path, capsys):
    assert dl.main(["--verify", "--suites", "libero_10", "--out", str(tmp_path)]) == dl.EXIT_VERIFY
    assert "dataset folder not found" in capsys.readouterr().out
