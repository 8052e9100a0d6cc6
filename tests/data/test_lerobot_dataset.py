"""LeRobot-format LIBERO suites against the same demos in HDF5 form.

The fixtures (tests/fixtures/lerobot_libero/, README there) were written by lerobot's own writer
(0.6.1: v3.0; 0.3.3: v2.1) from two no-noops demos rolled out in the simulator, converted the way
the public LIBERO conversions do it (frames rotated 180°, state = eef pos + axis-angle + finger
qpos, raw 7-d action). ``hdf5/`` holds those two demos in HDF5 form.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from torch.utils.data import DataLoader

from configs.loader import fill_from_base
from data import lerobot_dataset as lr
from data.dataset import LiberoDataset, load_suite_specs
from data.libero_hdf5 import LiberoDataError

TASK = "put the bowl on the stove"
# fixture -> (lossless images?, LeRobot codebase version)
SETS = {"v30_image": (True, "v3.0"), "v30_video": (False, "v3.0"), "v21_video": (False, "v2.1")}
VIDEO_MEAN_ABS_ERR = 4.0  # AV1 (crf 30) round trip: measured ~2 grey levels per pixel


def cfg(encoding="abs_goal", chunk=16, view="camera", **ds):
    return fill_from_base({"common": {"img_history_size": 2, "action_chunk_size": chunk, "num_cameras": 3, "state_dim": 128},
            "dataset": {"action_encoding": encoding, "control_freq": 20, "image_view": view, **ds}})


@pytest.fixture(scope="module")
def lerobot_root(fixtures_dir):
    return fixtures_dir / "lerobot_libero"


def hdf5_ds(root, tmp_path, config, split="all"):
    return LiberoDataset(config, {"h5": {"path": str(root / "hdf5"), "layout": "no_noops"}},
                         cache_dir=tmp_path, split=split)


def lerobot_ds(root, name, config, split="all", **entry):
    return LiberoDataset(config, {"lr": {"path": str(root / name), "format": "lerobot", **entry}}, split=split)


def by_step(ds):
    """{(demo number, k): sample index}; LeRobot episode j is HDF5 demo_j (both fixtures hold both demos)."""
    out = {}
    for i in range(len(ds)):
        _, key, k = ds.locate(i)
        out[(int(key.split("_")[-1]), k)] = i
    return out


def assert_images_match(got, ref, exact):
    if exact:
        np.testing.assert_array_equal(got, ref)
    else:
        assert np.abs(got.astype(int) - ref.astype(int)).mean() < VIDEO_MEAN_ABS_ERR


# ------------------------------------------------------------------------------- equal samples
@pytest.mark.parametrize("name", list(SETS))
@pytest.mark.parametrize("encoding", ["abs_goal", "delta"])
def test_samples_equal_hdf5(lerobot_root, tmp_path, name, encoding):
    exact, version = SETS[name]
    a = hdf5_ds(lerobot_root, tmp_path, cfg(encoding))
    b = lerobot_ds(lerobot_root, name, cfg(encoding))
    assert lr.LeRobotLibero(lerobot_root / name).version == version
    assert len(a) == len(b) == 26  # every timestep of both 13-step demos
    ia, ib = by_step(a), by_step(b)
    assert sorted(ia) == sorted(ib)
    for key in sorted(ia):
        sa, sb = a[ia[key]], b[ib[key]]
        assert sb["instruction"] == sa["instruction"] == TASK
        assert sb["images"].shape == sa["images"].shape == (6, 256, 256, 3)
        assert_images_match(sb["images"], sa["images"], exact)
        for k in ("image_mask", "state_elem_mask", "action_elem_mask", "action_valid"):
            np.testing.assert_array_equal(sb[k], sa[k], err_msg=k)
        # float32 in the LeRobot files vs float64 in HDF5
        np.testing.assert_allclose(sb["state"], sa["state"], atol=2e-6, rtol=0)
        np.testing.assert_allclose(sb["actions"], sa["actions"], atol=2e-6, rtol=0)
        assert sb["ctrl_freq"] == sa["ctrl_freq"] == 20.0  # not the datasets' fps label (10)


class _EpisodeKeys:
    """A LeRobot reader addressed by the HDF5 file's demo keys (demo_j is episode j)."""

    def __init__(self, reader):
        self.reader = reader

    def lowdim(self, key):
        return self.reader.lowdim(f"episode_{int(key.split('_')[1]):06d}")

    def frames(self, key, role, idx):
        return self.reader.frames(f"episode_{int(key.split('_')[1]):06d}", role, idx)

    def images(self, key, role, idx, view):
        return self.reader.images(f"episode_{int(key.split('_')[1]):06d}", role, idx, view)

    def close(self):
        self.reader.close()


@pytest.mark.parametrize("view", ["camera", "rotated_180"])
def test_readers_are_interchangeable(lerobot_root, tmp_path, monkeypatch, view):
    """``LiberoDataset`` reads through one interface: the HDF5 suite's dataset, with the LeRobot
    reader of the same demos put in place of its ``Hdf5Libero`` (no other change), gives the same
    samples (images exactly, from the lossless fixture; low-dim to float32)."""
    from data import dataset as dataset_module
    from data.libero_hdf5 import CAMERA_ROLES, Hdf5Libero

    h5 = Hdf5Libero(lerobot_root / "hdf5" / "put_the_bowl_on_the_stove_demo.hdf5")
    other = _EpisodeKeys(lr.LeRobotLibero(lerobot_root / "v30_image"))
    for role in CAMERA_ROLES:
        np.testing.assert_array_equal(h5.images("demo_1", role, [0, 4, 4], view),
                                      other.images("demo_1", role, [0, 4, 4], view))
    np.testing.assert_allclose(h5.lowdim("demo_0").ee_pos, other.lowdim("demo_0").ee_pos, atol=1e-6, rtol=0)
    h5.close()
    config = cfg(view=view)
    a = hdf5_ds(lerobot_root, tmp_path, config)
    want = [a[i] for i in range(len(a))]  # readers are made on first use: before the swap
    assert isinstance(a._handle(0), Hdf5Libero)
    monkeypatch.setitem(dataset_module.READERS, "hdf5", lambda path, spec, c: _EpisodeKeys(
        lr.LeRobotLibero(lerobot_root / "v30_image")))
    b = hdf5_ds(lerobot_root, tmp_path, config)
    assert len(want) == len(b) == 26
    for i, sa in enumerate(want):
        sb = b[i]
        assert list(sa) == list(sb)
        for key, value in sa.items():
            if key in ("state", "actions", "action_norm"):
                np.testing.assert_allclose(sb[key], value, atol=2e-6, rtol=0, err_msg=key)
            elif isinstance(value, np.ndarray):
                assert sb[key].dtype == value.dtype
                np.testing.assert_array_equal(sb[key], value, err_msg=key)
            else:
                assert sb[key] == value, key
    assert isinstance(b._handle(0), _EpisodeKeys)


def test_orientation_is_explicit(lerobot_root, tmp_path):
    """camera: LeRobot frames un-mirrored = HDF5 frames rows-flipped (the true view). rotated_180: the
    LeRobot frames as stored = HDF5 frames rotated. Without un-mirroring they do not match."""
    reader = lr.LeRobotLibero(lerobot_root / "v30_image")
    stored = reader.frames("episode_000000", "agentview", [5])[0]
    for view in ("camera", "rotated_180"):
        a = hdf5_ds(lerobot_root, tmp_path / view, cfg(view=view))
        b = lerobot_ds(lerobot_root, "v30_image", cfg(view=view))
        ia, ib = by_step(a), by_step(b)
        sa, sb = a[ia[(0, 5)]], b[ib[(0, 5)]]
        np.testing.assert_array_equal(sb["images"], sa["images"])
        cam_high_now = sb["images"][3]  # history frame t, slot cam_high
        if view == "rotated_180":
            np.testing.assert_array_equal(cam_high_now, stored)
        else:
            np.testing.assert_array_equal(cam_high_now, stored[:, ::-1])
            assert np.abs(cam_high_now.astype(int) - stored.astype(int)).mean() > 20  # a mirror differs a lot


def test_video_orientation_not_mirrored(lerobot_root, tmp_path):
    """Lossy frames: still far closer to the correctly oriented HDF5 frame than to its mirror."""
    a = hdf5_ds(lerobot_root, tmp_path, cfg())
    b = lerobot_ds(lerobot_root, "v21_video", cfg())
    sa, sb = a[by_step(a)[(1, 7)]], b[by_step(b)[(1, 7)]]
    err = np.abs(sb["images"].astype(int) - sa["images"].astype(int)).mean()
    mirrored = np.abs(sb["images"][:, :, ::-1].astype(int) - sa["images"].astype(int)).mean()
    assert err < VIDEO_MEAN_ABS_ERR < 5 * VIDEO_MEAN_ABS_ERR < mirrored


def test_index_options_match_hdf5(lerobot_root, tmp_path):
    """filter_noops and the per-task val split pick the same steps / episodes as for the HDF5 file."""
    for extra, split in (({"filter_noops": True}, "all"), ({"val_fraction": 0.5}, "val"),
                         ({"val_fraction": 0.5}, "train")):
        a = hdf5_ds(lerobot_root, tmp_path / split, cfg(**extra), split=split)
        b = lerobot_ds(lerobot_root, "v30_video", cfg(**extra), split=split)
        assert sorted(by_step(a)) == sorted(by_step(b))
    assert len(b) == 13


def test_stats_and_lowdim_vectors_match(lerobot_root, tmp_path):
    from data.stats import compute_suite_stats

    a = hdf5_ds(lerobot_root, tmp_path, cfg())
    b = lerobot_ds(lerobot_root, "v30_video", cfg())
    sa, sb = compute_suite_stats(a, "h5"), compute_suite_stats(b, "lr")
    assert sa.keys() == sb.keys() and sb["num_samples"] == 26
    for k in sa:
        if isinstance(sa[k], list):
            np.testing.assert_allclose(sb[k], sa[k], atol=2e-6, rtol=0, err_msg=k)
        else:
            assert sb[k] == sa[k], k


def test_dataloader_workers_decode(lerobot_root):
    """Forked workers open their own readers (video decoding and parquet handles per process)."""
    ds = lerobot_ds(lerobot_root, "v30_video", cfg())
    ref = [ds[i]["images"] for i in range(4)]
    loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=lambda b: b)
    got = [s["images"] for batch in loader for s in batch][:4]
    for x, y in zip(got, ref):
        np.testing.assert_array_equal(x, y)


def test_instructions_for_embedding(lerobot_root, tmp_path):
    from scripts.preprocess_language_embeddings import collect_instructions

    table = tmp_path / "suites.json"
    table.write_text(json.dumps({"lr": {"path": str(lerobot_root / "v21_video"), "format": "lerobot"}}))
    assert collect_instructions(str(table), "problem_info") == [TASK]


# ------------------------------------------------------------------------------- clear errors
def copy_set(lerobot_root, tmp_path, name="v30_video"):
    dst = tmp_path / name
    shutil.copytree(lerobot_root / name, dst)
    return dst


def test_missing_folder(tmp_path):
    with pytest.raises(LiberoDataError, match="dataset folder not found") as e:
        LiberoDataset(cfg(), {"lr": {"path": str(tmp_path / "nope"), "format": "lerobot"}})
    assert str(tmp_path / "nope") in str(e.value)


def test_not_a_lerobot_dataset(lerobot_root):
    with pytest.raises(LiberoDataError, match=r"not a LeRobot dataset \(no meta/info.json\)") as e:
        lerobot_ds(lerobot_root, "hdf5", cfg())
    assert "hdf5" in str(e.value)


def test_wrong_state_width_in_info(lerobot_root, tmp_path):
    root = copy_set(lerobot_root, tmp_path)
    info = json.loads((root / "meta/info.json").read_text())
    info["features"]["observation.state"]["shape"] = [9]
    (root / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(LiberoDataError, match=r"'observation.state' \(state\) has shape \(9,\), expected \(8,\)"):
        LiberoDataset(cfg(), {"lr": {"path": str(root), "format": "lerobot"}})


def test_wrong_state_width_in_data(lerobot_root, tmp_path):
    """info.json says 8 but the parquet rows hold 7 numbers: named file and column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = copy_set(lerobot_root, tmp_path)
    path = root / "data/chunk-000/file-000.parquet"
    t = pq.read_table(path)
    rows = [r[:7] for r in t.column("observation.state").to_pylist()]
    t = t.set_column(t.schema.get_field_index("observation.state"), "observation.state",
                     pa.array(rows, pa.list_(pa.float32())))
    pq.write_table(t, path)
    with pytest.raises(LiberoDataError, match=r"file-000.parquet.*'observation.state' has rows of width 7, expected 8"):
        LiberoDataset(cfg(), {"lr": {"path": str(root), "format": "lerobot"}})


def test_nan_state(lerobot_root, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = copy_set(lerobot_root, tmp_path, "v21_video")
    path = root / "data/chunk-000/episode_000001.parquet"
    t = pq.read_table(path)
    rows = t.column("state").to_pylist()
    rows[4][2] = float("nan")
    t = t.set_column(t.schema.get_field_index("state"), "state", pa.array(rows, t.column("state").type))
    pq.write_table(t, path)
    with pytest.raises(LiberoDataError, match=r"episode_000001.parquet.*'state' has NaN/inf values \(first at row 4\)"):
        LiberoDataset(cfg(), {"lr": {"path": str(root), "format": "lerobot"}})


def test_missing_video_is_named(lerobot_root, tmp_path):
    root = copy_set(lerobot_root, tmp_path)
    ds = LiberoDataset(cfg(), {"lr": {"path": str(root), "format": "lerobot"}})
    (root / "videos/observation.images.image2/chunk-000/file-000.mp4").unlink()
    with pytest.raises(LiberoDataError, match="observation.images.image2/chunk-000/file-000.mp4.*missing video"):
        ds[0]


def test_unknown_feature_names_say_how_to_map(lerobot_root, tmp_path):
    root = copy_set(lerobot_root, tmp_path, "v21_video")
    with pytest.raises(LiberoDataError, match=r"'keys.state' = 'robot_state' is not a feature"):
        LiberoDataset(cfg(), {"lr": {"path": str(root), "format": "lerobot", "keys": {"state": "robot_state"}}})
    info = json.loads((root / "meta/info.json").read_text())
    info["features"]["proprio"] = info["features"].pop("state")
    (root / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(LiberoDataError, match=r"no state feature .*\"keys\""):
        LiberoDataset(cfg(), {"lr": {"path": str(root), "format": "lerobot"}})


def test_suite_entry_errors(lerobot_root):
    path = str(lerobot_root / "v30_video")
    with pytest.raises(LiberoDataError, match="format 'zarr'"):
        load_suite_specs({"x": {"path": path, "format": "zarr"}})
    with pytest.raises(LiberoDataError, match="layout 'raw'.*no_noops"):
        load_suite_specs({"x": {"path": path, "format": "lerobot", "layout": "raw"}})
    with pytest.raises(LiberoDataError, match="unknown keys"):
        load_suite_specs({"x": {"path": path, "format": "lerobot", "camera": "image"}})
    with pytest.raises(LiberoDataError, match="use_joint_state"):
        LiberoDataset(cfg(use_joint_state=True), {"x": {"path": path, "format": "lerobot"}})
    with pytest.raises(ValueError, match=r"dataset.image_view is 'mirror'; expected one of \['camera', 'rotated_180'\]"):
        LiberoDataset(cfg(view="mirror"), {"x": {"path": path, "format": "lerobot"}})


def test_hub_id_offline_is_one_clear_line(tmp_path, monkeypatch):
    """A hub id that is not a local folder: snapshot_download; without network, one line naming the repo."""
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(LiberoDataError) as e:
        LiberoDataset(cfg(), {"lr": {"path": "someone/libero_lerobot", "format": "lerobot"}}, root=tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "someone/libero_lerobot" in msg and "HF_ENDPOINT" in msg
    assert "download_libero.py --format lerobot" in msg


def test_hub_id_resolves_through_snapshot_download(lerobot_root, tmp_path, monkeypatch):
    import huggingface_hub

    from data import hub

    calls = []

    def fake_snapshot(repo_id, repo_type=None, revision=None, local_dir=None, **kw):
        calls.append((repo_id, repo_type, revision))
        return str(lerobot_root / "v30_video")

    monkeypatch.setattr(hub, "probe_endpoint", lambda *a, **k: None)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    ds = LiberoDataset(cfg(), {"lr": {"path": "someone/libero_lerobot", "format": "lerobot", "revision": "v1"}},
                       root=tmp_path)
    assert len(ds) == 26 and calls == [("someone/libero_lerobot", "dataset", "v1")]
    assert ds.locate(0)[0] == lerobot_root / "v30_video"


# ------------------------------------------------------------------- download_libero.py --format lerobot
def test_download_no_network_is_one_clear_line(tmp_path):
    import os
    import subprocess
    import sys

    import download_libero as dl

    env = dict(os.environ, HF_ENDPOINT="http://127.0.0.1:9", HF_HUB_OFFLINE="0")
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, "download_libero.py", "--format", "lerobot", "--out", str(tmp_path)],
                          cwd=dl.REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == dl.EXIT_NETWORK
    err = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1, proc.stderr
    assert "physical-intelligence/libero" in err[0] and "HF_ENDPOINT" in err[0] and "by hand" in err[0]
    assert "Traceback" not in proc.stderr and not any(tmp_path.iterdir())


@pytest.fixture
def fake_lerobot_hub(monkeypatch, lerobot_root):
    """snapshot_download writes the chosen fixture set (or a damaged copy) into local_dir."""
    import huggingface_hub

    from data import hub

    state = {"set": "v21_video", "damage": None, "calls": []}

    def fake_snapshot(repo_id, repo_type=None, revision=None, local_dir=None, **kw):
        state["calls"].append((repo_id, repo_type, revision))
        shutil.copytree(lerobot_root / state["set"], local_dir, dirs_exist_ok=True)
        if state["damage"]:
            (Path(local_dir) / state["damage"]).unlink()
        return local_dir

    monkeypatch.setattr(hub, "probe_endpoint", lambda *a, **k: None)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    return state


def test_download_stages_verifies_and_renames(tmp_path, fake_lerobot_hub, capsys):
    import download_libero as dl

    argv = ["--format", "lerobot", "--repo_id", "someone/libero_lr", "--out", str(tmp_path)]
    assert dl.main(argv) == 0
    dest = tmp_path / "lerobot" / "someone" / "libero_lr"
    assert (dest / "meta" / "info.json").is_file() and fake_lerobot_hub["calls"] == [("someone/libero_lr", "dataset", None)]
    assert not (tmp_path / ".staging" / "someone__libero_lr").exists()  # moved, not copied
    assert dl.main(argv) == 0 and len(fake_lerobot_hub["calls"]) == 1  # in place: not fetched again
    assert dl.main(argv + ["--verify"]) == 0 and "someone/libero_lr: ok" in capsys.readouterr().out
    ds = LiberoDataset(cfg(), {"lr": {"path": str(dest), "format": "lerobot"}})
    assert len(ds) == 26


@pytest.mark.parametrize("damage", ["meta/info.json", "videos/chunk-000/wrist_image/episode_000001.mp4",
                                    "data/chunk-000/episode_000000.parquet"])
def test_bad_download_never_lands_in_place(tmp_path, fake_lerobot_hub, damage, capsys):
    import download_libero as dl

    fake_lerobot_hub["damage"] = damage
    rc = dl.main(["--format", "lerobot", "--repo_id", "someone/libero_lr", "--out", str(tmp_path)])
    assert rc == dl.EXIT_VERIFY
    err = capsys.readouterr().err
    assert "failed verification" in err and (damage in err or "meta/info.json" in err), err
    assert not (tmp_path / "lerobot").exists()


def test_download_lerobot_usage_and_verify_missing(tmp_path, capsys):
    import download_libero as dl

    assert dl.main(["--format", "lerobot", "--suites", "libero_goal", "--out", str(tmp_path)]) == dl.EXIT_USAGE
    assert "--repo_id" in capsys.readouterr().err
    assert dl.main(["--format", "lerobot", "--verify", "--out", str(tmp_path)]) == dl.EXIT_VERIFY
    assert "dataset folder not found" in capsys.readouterr().out


# ------------------------------------------------------------------------ training and evaluation
@pytest.fixture(scope="module")
def lerobot_train_run(tiny_encoders_dir, lerobot_root, tmp_path_factory):
    """A few main_sft.py steps on the LeRobot fixture (v3.0 PNG), trained on the frames as stored
    (image_view rotated_180), so evaluation has to rotate its live frames to match."""
    import os
    import subprocess
    import sys

    from scripts.compute_dataset_stats import main as compute_stats

    root = tmp_path_factory.mktemp("lerobot_train")
    suites = root / "suites.json"
    suites.write_text(json.dumps({"libero_goal_lerobot": {"path": str(lerobot_root / "v30_image"),
                                                          "format": "lerobot"}}))
    stats = root / "stats.json"
    compute_stats(["--datasets_config", str(suites), "--out", str(stats), "--config", "configs/tiny.yaml"])
    out = root / "run"
    cmd = [sys.executable, "main_sft.py", "--config_path", "configs/tiny.yaml",
           "--set", f"model.vision_encoder={tiny_encoders_dir / 'siglip'}",
           f"model.text_encoder={tiny_encoders_dir / 't5'}", f"dataset.datasets_config={suites}",
           f"dataset.stats_path={stats}", "dataset.image_view=rotated_180", "dataset.val_fraction=0.5",
           "--output_dir", str(out), "--report_to", "none", "--train_batch_size", "4", "--learning_rate", "1e-3",
           "--seed", "7", "--log_period", "1", "--max_train_steps", "3", "--checkpointing_period", "3",
           "--sample_period", "3", "--sample_batch_size", "4", "--num_sample_batches", "1"]
    env = {**os.environ, "RDT_FAULT": "", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {"out": out, "suites": suites, "stats": stats}


def test_training_on_lerobot_fixture(lerobot_train_run):
    out = lerobot_train_run["out"]
    recs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = {r["step"]: r["loss"] for r in recs if "loss" in r}
    assert sorted(losses) == [1, 2, 3] and all(np.isfinite(v) for v in losses.values())
    assert any("val/overall_avg_sample_mse" in r for r in recs)  # the held-out episode was sampled
    info = json.loads((out / "train_config.json").read_text())
    assert info["data"]["suites"] == ["libero_goal_lerobot"] and info["data"]["image_hw"] == [[256, 256]]
    assert info["config"]["dataset"]["image_view"] == "rotated_180"
    assert (out / "checkpoint-3").is_dir()


def test_evaluation_follows_the_training_image_view(lerobot_train_run, lerobot_root):
    """The policy rebuilt from that checkpoint rotates live frames 180°: its batch for the observation
    of HDF5 demo_1 step k equals the training batch of the LeRobot sample (episode 1, step k)."""
    import h5py
    import torch
    from robosuite.utils.transform_utils import axisangle2quat

    from policy.rdt_policy import RDTPolicy
    from policy.batch import collate

    policy = RDTPolicy.from_pretrained(lerobot_train_run["out"], "cpu")
    assert policy.image_view == "rotated_180"
    ds = LiberoDataset(policy.cfg, lerobot_train_run["suites"])
    idx = by_step(ds)

    def obs(g, t):
        return {"agentview_image": g["agentview_rgb"][t], "robot0_eye_in_hand_image": g["eye_in_hand_rgb"][t],
                "robot0_eef_pos": g["ee_pos"][t], "robot0_eef_quat": axisangle2quat(g["ee_ori"][t]),
                "robot0_gripper_qpos": g["gripper_states"][t], "robot0_joint_pos": g["joint_states"][t]}

    with h5py.File(lerobot_root / "hdf5" / "put_the_bowl_on_the_stove_demo.hdf5") as f:
        g = f["data/demo_1/obs"]
        for k in (0, 6):
            ref = collate([ds[idx[(1, k)]]])
            policy.reset(1)
            policy.start_episode(0)
            if k > 0:
                policy.observe(0, obs(g, k - 1))
            got = policy.build_batch([obs(g, k)], TASK)
            assert torch.equal(got["images"], ref["images"])
            assert torch.equal(got["image_mask"], ref["image_mask"])
            torch.testing.assert_close(got["state"], ref["state"], atol=2e-6, rtol=0)
