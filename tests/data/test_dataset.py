"""LiberoDataset on the real LIBERO-format fixture and on files derived from it with h5py."""
import os
import pickle
import shutil

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from configs.loader import fill_from_base
from data.dataset import DataConfig, LiberoDataset, load_suite_specs
from policy.lang_embeddings import LangEmbeddingError, LangEmbeddingStore, write_lang_embedding_store
from data.libero_hdf5 import LiberoDataError
from policy.libero_mapping import OscScale, Pose, decode_actions, encode_state
from train.sampler import EpochSampler

LENGTHS = {"demo_0": 70, "demo_1": 72, "demo_2": 71}
CFG_DICT = {"common": {"img_history_size": 2, "action_chunk_size": 64, "num_cameras": 3, "state_dim": 128},
            "dataset": {"action_encoding": "abs_goal", "control_freq": 20}}
CFG = fill_from_base(CFG_DICT)  # the typed config LiberoDataset takes


# ------------------------------------------------------------------------------------ helpers
def make_suite(tmp_path, fixture, name="suite", files=("task_a_demo.hdf5",), edit=None):
    """Copy the fixture into tmp_path/name/<file> and apply edit(h5py.File) to each copy."""
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    for fname in files:
        dst = folder / fname
        shutil.copy(fixture, dst)
        os.chmod(dst, 0o644)
        if edit is not None:
            with h5py.File(dst, "r+") as f:
                edit(f)
    return folder


def truncate_demo(f, demo, n):
    """Keep only the first n steps of every per-step dataset of a demo."""
    g = f["data"][demo]

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            items.append(name)
    items = []
    g.visit(lambda name: visit(name, g[name]))
    for name in items:
        arr = g[name][:n]
        del g[name]
        g.create_dataset(name, data=arr)


def drop_demos(f, keep):
    for k in list(f["data"].keys()):
        if k not in keep:
            del f["data"][k]


def suites_cfg(**suites):
    return {name: {"path": str(path), **opts} for name, (path, opts) in suites.items()}


@pytest.fixture(scope="module")
def fixture_arrays(libero_fixture_file):
    out = {}
    with h5py.File(libero_fixture_file, "r") as f:
        for k in LENGTHS:
            g = f["data"][k]
            out[k] = {n: g[n][()] for n in ("actions", "obs/ee_pos", "obs/ee_ori", "obs/gripper_states",
                                             "obs/agentview_rgb", "obs/eye_in_hand_rgb")}
    return out


@pytest.fixture(scope="module")
def fixture_ds(libero_fixture_file, tmp_path_factory):
    folder = libero_fixture_file.parent
    return LiberoDataset(CFG, suites_cfg(goal=(folder, {})), cache_dir=tmp_path_factory.mktemp("cache"))


# ------------------------------------------------------------------------------- happy path
def test_config_from_repo_yaml():
    from configs.loader import load_typed

    for name in ("configs/base.yaml", "configs/tiny.yaml"):
        config = load_typed(name)
        cfg = DataConfig.from_config(config)
        assert cfg.common is config.common and cfg.dataset is config.dataset  # held, not copied field by field
        c, d = cfg.common, cfg.dataset
        assert (c.img_history_size, c.action_chunk_size, c.num_cameras, c.state_dim) == (2, 64, 3, 128)
        assert d.action_encoding in ("abs_goal", "delta") and d.control_freq == 20.0


def test_config_from_sections():
    cfg = DataConfig.from_config(CFG)
    c, d = cfg.common, cfg.dataset
    assert (c.img_history_size, c.action_chunk_size, c.num_cameras, c.state_dim) == (2, 64, 3, 128)
    assert d.action_encoding == "abs_goal" and d.control_freq == 20.0
    # configs/base.yaml spells the default instruction source "file"; val_fraction comes from the yaml too
    cfg = DataConfig.from_config(fill_from_base({"dataset": {"instruction_source": "file", "val_fraction": 0.04}}))
    assert cfg.dataset.instruction_source == "problem_info" and cfg.dataset.val_fraction == 0.04
    with pytest.raises(ValueError, match="action_encoding"):
        fill_from_base({"dataset": {"action_encoding": "velocity"}})
    with pytest.raises(ValueError, match="num_cameras"):
        fill_from_base({"common": {"num_cameras": 2}})
    # one input type: the typed config (a plain dict, a section or None is refused, not guessed at)
    for other in (CFG_DICT, CFG.dataset, None):
        with pytest.raises(TypeError, match="configs.schema.Config"):
            DataConfig.from_config(other)


def test_index_counts_and_each_step_once(fixture_ds):
    ds = fixture_ds
    assert len(ds) == sum(t - 1 for t in LENGTHS.values()) == 210  # raw: T-1 usable steps per demo
    located = [ds.locate(i)[1:] for i in range(len(ds))]
    expected = {(d, k) for d, t in LENGTHS.items() for k in range(1, t)}
    assert len(set(located)) == len(located) and set(located) == expected
    # equal weights -> the training sampler permutes: every index exactly once per epoch
    sampler = EpochSampler.for_dataset(ds, seed=0)
    assert sampler.weights is None and sorted(sampler) == list(range(len(ds)))


def test_every_sample_matches_recorded_data(fixture_ds, fixture_arrays):
    ds = fixture_ds
    scale = OscScale()
    for i in range(len(ds)):
        _, demo, k = ds.locate(i)
        a = fixture_arrays[demo]
        s = ds[i]
        # state = pose recorded just before actions[k]; raw layout -> obs[k-1]
        o = k - 1
        want, want_mask = encode_state(a["obs/ee_pos"][o], a["obs/ee_ori"][o], a["obs/gripper_states"][o])
        np.testing.assert_allclose(s["state"][0], want, atol=1e-6)
        np.testing.assert_array_equal(s["state_elem_mask"], want_mask)
        # images: [t-1: agentview, eye_in_hand, empty], [t: ...], flipped to the camera view
        prev = max(o - 1, 0)
        np.testing.assert_array_equal(s["images"][3], a["obs/agentview_rgb"][o][::-1])
        np.testing.assert_array_equal(s["images"][4], a["obs/eye_in_hand_rgb"][o][::-1])
        np.testing.assert_array_equal(s["images"][0], a["obs/agentview_rgb"][prev][::-1])
        np.testing.assert_array_equal(s["images"][1], a["obs/eye_in_hand_rgb"][prev][::-1])
        assert not s["images"][[2, 5]].any()
        np.testing.assert_array_equal(s["image_mask"], [o >= 1, o >= 1, False, True, True, False])
        # actions k..k+63 decode back to the recorded ones against the poses that preceded them
        m = min(64, len(a["actions"]) - k)
        assert s["action_valid"].sum() == m and s["action_valid"][:m].all()
        pose = Pose(a["obs/ee_pos"][o:o + m], a["obs/ee_ori"][o:o + m])
        back = decode_actions(s["actions"][:m], pose, "abs_goal", scale)
        np.testing.assert_allclose(back, a["actions"][k:k + m], atol=1e-5)
        np.testing.assert_array_equal(s["actions"][m:], np.repeat(s["actions"][m - 1:m], 64 - m, 0))
        assert set(np.flatnonzero(s["action_elem_mask"])) == {10, *range(30, 39)}
        assert s["ctrl_freq"] == 20.0 and s["instruction"] == "put the bowl on the stove" and s["suite"] == "goal"
        assert s["images"].dtype == np.uint8 and s["state"].dtype == np.float32 and s["actions"].dtype == np.float32


def test_deterministic_picklable_and_workers(fixture_ds):
    ds = fixture_ds
    idx = [0, 5, 68, 69, 209]
    a = [ds[i] for i in idx]
    b = [pickle.loads(pickle.dumps(ds))[i] for i in idx]
    for x, y in zip(a, b):
        for key in ("images", "state", "actions", "action_valid", "image_mask"):
            np.testing.assert_array_equal(x[key], y[key])
    loader = DataLoader(torch.utils.data.Subset(ds, idx), batch_size=5, num_workers=2)
    batch = next(iter(loader))
    np.testing.assert_array_equal(batch["actions"].numpy(), np.stack([x["actions"] for x in a]))
    np.testing.assert_array_equal(batch["images"].numpy(), np.stack([x["images"] for x in a]))
    assert batch["instruction"] == ["put the bowl on the stove"] * 5
    with pytest.raises(IndexError):
        ds[len(ds)]
    np.testing.assert_array_equal(ds[-1]["actions"], ds[len(ds) - 1]["actions"])


def test_no_noops_layout_uses_obs_before_action(tmp_path, libero_fixture_file, fixture_arrays):
    folder = make_suite(tmp_path, libero_fixture_file, edit=lambda f: f["data"].attrs.__setitem__("layout", "no_noops"))
    ds = LiberoDataset(CFG, suites_cfg(nn=(folder, {"layout": "auto"})))
    assert len(ds) == sum(LENGTHS.values())  # T samples per demo
    i = [j for j in range(len(ds)) if ds.locate(j)[1:] == ("demo_1", 0)][0]
    s = ds[i]
    a = fixture_arrays["demo_1"]
    want, _ = encode_state(a["obs/ee_pos"][0], a["obs/ee_ori"][0], a["obs/gripper_states"][0])
    np.testing.assert_allclose(s["state"][0], want, atol=1e-6)
    np.testing.assert_array_equal(s["image_mask"], [False, False, False, True, True, False])
    np.testing.assert_array_equal(s["images"][0], a["obs/agentview_rgb"][0][::-1])  # padded = first frame
    # explicit layout in the suites table wins over auto-detection
    ds_raw = LiberoDataset(CFG, suites_cfg(nn=(folder, {"layout": "raw"})))
    assert len(ds_raw) == 210


def test_delta_encoding_and_joint_state(tmp_path, libero_fixture_file, fixture_arrays):
    folder = make_suite(tmp_path, libero_fixture_file)
    cfg = fill_from_base({"common": CFG_DICT["common"], "dataset": {"action_encoding": "delta", "use_joint_state": True}})
    ds = LiberoDataset(cfg, suites_cfg(g=(folder, {})))
    s = ds[0]
    _, demo, k = ds.locate(0)
    a = fixture_arrays[demo]
    np.testing.assert_allclose(s["actions"][0, 30:33], 0.05 * a["actions"][k, :3], atol=1e-7)
    np.testing.assert_allclose(decode_actions(s["actions"][:5], None, "delta"), a["actions"][k:k + 5], atol=1e-5)
    assert s["state_elem_mask"][:7].all() and s["state"][0, :7].any()


@pytest.mark.parametrize("encoding", ["abs_goal", "delta"])
def test_cached_encoded_actions_equal_encoding_each_sample(tmp_path, libero_fixture_file, fixture_arrays, encoding):
    """Samples slice each demo's actions encoded once; the result is exactly what encoding the
    sample's own 64 actions against their preceding poses gives (the pre-cache code path)."""
    from policy.libero_mapping import encode_actions, hold_action

    folder = make_suite(tmp_path, libero_fixture_file)
    ds = LiberoDataset(fill_from_base({"common": CFG_DICT["common"], "dataset": {"action_encoding": encoding}}),
                       suites_cfg(g=(folder, {})))
    scale = OscScale()
    for i in range(len(ds)):
        _, demo, k = ds.locate(i)
        a = fixture_arrays[demo]
        m = min(64, len(a["actions"]) - k)
        enc = encode_actions(a["actions"][k:k + m], Pose(a["obs/ee_pos"][k - 1:k - 1 + m],
                                                           a["obs/ee_ori"][k - 1:k - 1 + m]), encoding, scale)
        want = np.empty((64, enc.shape[1]), np.float32)
        want[:m] = enc
        want[m:] = hold_action(enc[-1], encoding)
        np.testing.assert_array_equal(ds[i]["actions"], want)


def test_demo_keys_sorted_numerically(tmp_path, libero_fixture_file):
    def rename(f):
        f["data"].move("demo_1", "demo_10")
        f["data"].move("demo_2", "demo_2")  # unchanged; demo_2 must come before demo_10
    folder = make_suite(tmp_path, libero_fixture_file, edit=rename)
    ds = LiberoDataset(CFG, suites_cfg(g=(folder, {})))
    order = []
    for i in range(len(ds)):
        d = ds.locate(i)[1]
        if not order or order[-1] != d:
            order.append(d)
    assert order == ["demo_0", "demo_2", "demo_10"]


def test_short_episode_is_padded(tmp_path, libero_fixture_file):
    folder = make_suite(tmp_path, libero_fixture_file, edit=lambda f: (drop_demos(f, ["demo_0"]),
                                                                        truncate_demo(f, "demo_0", 10)))
    ds = LiberoDataset(CFG, suites_cfg(g=(folder, {})))
    assert len(ds) == 9
    for i in range(9):
        s = ds[i]
        k = ds.locate(i)[2]
        assert s["action_valid"].sum() == 10 - k
        assert s["actions"].shape == (64, 128)
        np.testing.assert_array_equal(s["actions"][-1], s["actions"][10 - k - 1])


def test_filter_noops(tmp_path, libero_fixture_file):
    def make_noops(f):
        a = f["data/demo_0/actions"]
        arr = a[()]
        arr[10:13, :6] = 0.0  # still, gripper unchanged (-1 throughout) -> no-ops
        arr[40, :6] = 0.0  # still, but gripper same as before (+1) -> no-op as well
        a[...] = arr
    folder = make_suite(tmp_path, libero_fixture_file, edit=make_noops)
    cfg = fill_from_base({"common": CFG_DICT["common"], "dataset": {"filter_noops": True}})
    ds = LiberoDataset(cfg, suites_cfg(g=(folder, {})))
    assert len(ds) == 210 - 4
    starts = {ds.locate(i)[1:] for i in range(len(ds))}
    assert ("demo_0", 11) not in starts and ("demo_0", 40) not in starts and ("demo_0", 13) in starts
    # a different config is a different cache entry; the unfiltered index is unaffected
    assert len(LiberoDataset(CFG, suites_cfg(g=(folder, {})))) == 210


def test_index_cache_reuse_and_invalidation(tmp_path, libero_fixture_file):
    folder = make_suite(tmp_path, libero_fixture_file)
    suites = suites_cfg(g=(folder, {}))
    ds1 = LiberoDataset(CFG, suites)
    assert ds1.index_sources == {"g": "built"}
    assert list(folder.glob(".rdt_index_*.json"))  # cached next to the data
    ds2 = LiberoDataset(CFG, suites)
    assert ds2.index_sources == {"g": "cache"} and len(ds2) == len(ds1)
    # the data changes (one demo shorter): the fingerprint no longer matches -> rebuilt
    with h5py.File(folder / "task_a_demo.hdf5", "r+") as f:
        truncate_demo(f, "demo_0", 30)
    ds3 = LiberoDataset(CFG, suites)
    assert ds3.index_sources == {"g": "built"} and len(ds3) == 29 + 71 + 70
    # a new file in the suite also invalidates
    shutil.copy(libero_fixture_file, folder / "task_b_demo.hdf5")
    ds4 = LiberoDataset(CFG, suites)
    assert ds4.index_sources == {"g": "built"} and len(ds4) == 170 + 210


def test_read_only_data_folder_is_not_written(tmp_path, libero_fixture_file, monkeypatch):
    folder = make_suite(tmp_path, libero_fixture_file, name="ro")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    folder.chmod(0o555)
    try:
        ds = LiberoDataset(CFG, suites_cfg(g=(folder, {})))
        assert ds.index_sources == {"g": "built"} and len(ds) == 210
        assert not list(folder.glob(".rdt_index_*"))
        assert list((tmp_path / "home" / ".cache" / "rdt_libero" / "index").glob("g_*.json"))
        assert LiberoDataset(CFG, suites_cfg(g=(folder, {}))).index_sources == {"g": "cache"}
    finally:
        folder.chmod(0o755)


def test_suite_weights_and_sampler(tmp_path, libero_fixture_file):
    big = make_suite(tmp_path, libero_fixture_file, name="big", files=("a_demo.hdf5", "b_demo.hdf5"))
    small = make_suite(tmp_path, libero_fixture_file, name="small", edit=lambda f: drop_demos(f, ["demo_0"]))
    ds = LiberoDataset(CFG, suites_cfg(big=(big, {"sample_weight": 1.0}), small=(small, {"sample_weight": 3.0})))
    assert len(ds) == 420 + 69
    w = ds.sample_weights()
    suites = ds.sample_suites()
    assert abs(w.sum() - 1) < 1e-12
    assert abs(w[suites == 0].sum() - 0.25) < 1e-12 and abs(w[suites == 1].sum() - 0.75) < 1e-12
    assert np.allclose(w[suites == 1], w[suites == 1][0])
    # the training sampler draws by these weights: 489 draws per epoch, ~75% from the small suite
    sampler = EpochSampler.for_dataset(ds, seed=0)
    assert sampler.weights is not None
    drawn = np.concatenate([sampler.epoch_indices(e) for e in range(4)])
    assert len(drawn) == 4 * len(ds) and abs((suites[drawn] == 1).mean() - 0.75) < 0.04
    # weights proportional to suite sizes -> uniform per sample -> plain permutations
    ds_eq = LiberoDataset(CFG, suites_cfg(big=(big, {"sample_weight": 420}), small=(small, {"sample_weight": 69})))
    assert ds_eq.weights_are_uniform() and EpochSampler.for_dataset(ds_eq, seed=0).weights is None
    assert {s["suite"] for s in (ds[0], ds[len(ds) - 1])} == {"big", "small"}


def test_val_split_holds_out_episodes(tmp_path, libero_fixture_file):
    folder = make_suite(tmp_path, libero_fixture_file)
    suites = suites_cfg(g=(folder, {}))
    train = LiberoDataset(CFG, suites, split="train", val_fraction=0.3)
    val = LiberoDataset(CFG, suites, split="val", val_fraction=0.3)
    assert {train.locate(i)[1] for i in range(len(train))} == {"demo_0", "demo_1"}
    assert {val.locate(i)[1] for i in range(len(val))} == {"demo_2"}
    assert len(train) + len(val) == 210


def test_instruction_sources(tmp_path, libero_fixture_file):
    folder = make_suite(tmp_path, libero_fixture_file, files=("KITCHEN_SCENE3_turn_on_the_stove_demo.hdf5",))
    ds = LiberoDataset(fill_from_base({"dataset": {"instruction_source": "filename"}}), suites_cfg(g=(folder, {})))
    assert ds[0]["instruction"] == "turn on the stove"
    ds = LiberoDataset(fill_from_base({}), suites_cfg(g=(folder, {})))
    assert ds[0]["instruction"] == "put the bowl on the stove"
    # benchmark language of the task named by the file (LIBERO is installed in the test env)
    bench = make_suite(tmp_path, libero_fixture_file, name="bench", files=("put_the_bowl_on_the_stove_demo.hdf5",))
    ds = LiberoDataset(fill_from_base({"dataset": {"instruction_source": "benchmark"}}), suites_cfg(g=(bench, {})))
    assert ds[0]["instruction"] == "put the bowl on the stove"
    custom = make_suite(tmp_path, libero_fixture_file, name="custom", files=("my_own_task_demo.hdf5",))
    with pytest.raises(LiberoDataError, match="not a LIBERO benchmark task") as e:
        LiberoDataset(fill_from_base({"dataset": {"instruction_source": "benchmark"}}), suites_cfg(g=(custom, {})))
    assert "my_own_task_demo.hdf5" in str(e.value)


def test_lang_embeddings(tmp_path, libero_fixture_file):
    folder = make_suite(tmp_path, libero_fixture_file)
    good = tmp_path / "emb_good"
    write_lang_embedding_store(good, {"put the bowl on the stove.": torch.randn(7, 16)}, model="tiny-t5")
    ds = LiberoDataset(CFG, suites_cfg(g=(folder, {})), lang_embed_dir=good, lang_embed_dim=16)
    assert ds[0]["lang_embed"].shape == (7, 16)
    # wrong width: t5-base (768) where the model expects 4096
    bad = tmp_path / "emb_bad"
    write_lang_embedding_store(bad, {"put the bowl on the stove": torch.randn(5, 768)}, model="t5-base")
    with pytest.raises(LangEmbeddingError, match=r"768-d \(from t5-base\).*expects 4096") as e:
        LiberoDataset(CFG, suites_cfg(g=(folder, {})), lang_embed_dir=bad, lang_embed_dim=4096)
    assert "manifest.json" in str(e.value)
    # instruction absent from the store
    other = tmp_path / "emb_other"
    write_lang_embedding_store(other, {"open the drawer": torch.randn(5, 16)}, model="tiny-t5")
    with pytest.raises(LiberoDataError, match="put the bowl on the stove") as e:
        LiberoDataset(CFG, suites_cfg(g=(folder, {})), lang_embed_dir=other, lang_embed_dim=16)
    assert "manifest.json" in str(e.value)
    # a (1, L, D) tensor (inference format) slipped into the store is caught on load
    torch.save(torch.randn(1, 5, 16), other / LangEmbeddingStore(other)._files["open the drawer"])
    with pytest.raises(LangEmbeddingError, match=r"expected a \(L, 16\) tensor"):
        LangEmbeddingStore(other, 16).get("open the drawer")


# ------------------------------------------------------------------------------- bad inputs
def test_missing_folder(tmp_path):
    with pytest.raises(LiberoDataError, match="dataset folder not found") as e:
        LiberoDataset(CFG, suites_cfg(g=(tmp_path / "nope", {})))
    assert str(tmp_path / "nope") in str(e.value)


def test_empty_suite(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README.txt").write_text("no data")
    with pytest.raises(LiberoDataError, match="no .hdf5 files") as e:
        LiberoDataset(CFG, suites_cfg(g=(tmp_path / "empty", {})))
    assert str(tmp_path / "empty") in str(e.value)


@pytest.mark.parametrize("kind", ["truncated", "garbage"])
def test_truncated_or_corrupt_file(tmp_path, libero_fixture_file, kind):
    folder = tmp_path / "s"
    folder.mkdir()
    dst = folder / "broken_demo.hdf5"
    raw = libero_fixture_file.read_bytes()
    dst.write_bytes(raw[: len(raw) // 2] if kind == "truncated" else b"not an hdf5 file" * 100)
    with pytest.raises(LiberoDataError, match="truncated or corrupt") as e:
        LiberoDataset(CFG, suites_cfg(g=(folder, {})))
    assert str(dst) in str(e.value)


def test_missing_key(tmp_path, libero_fixture_file):
    folder = make_suite(tmp_path, libero_fixture_file, edit=lambda f: f["data/demo_1/obs"].__delitem__("ee_pos"))
    with pytest.raises(LiberoDataError, match="missing key") as e:
        LiberoDataset(CFG, suites_cfg(g=(folder, {})))
    assert "task_a_demo.hdf5" in str(e.value) and "data/demo_1/obs/ee_pos" in str(e.value)


def test_missing_images(tmp_path, libero_fixture_file):
    folder = make_suite(tmp_path, libero_fixture_file,
                        edit=lambda f: f["data/demo_2/obs"].__delitem__("eye_in_hand_rgb"))
    with pytest.raises(LiberoDataError, match="missing key") as e:
        LiberoDataset(CFG, suites_cfg(g=(folder, {"layout": "raw"})))
    assert "task_a_demo.hdf5" in str(e.value) and "data/demo_2/obs/eye_in_hand_rgb" in str(e.value)


@pytest.mark.parametrize("key", ["actions", "obs/gripper_states"])
def test_nan_values(tmp_path, libero_fixture_file, key):
    def poison(f):
        ds = f[f"data/demo_2/{key}"]
        arr = ds[()]
        arr[7, 1] = np.nan
        ds[...] = arr
    folder = make_suite(tmp_path, libero_fixture_file, edit=poison)
    with pytest.raises(LiberoDataError, match=r"NaN/inf values \(first at step 7\)") as e:
        LiberoDataset(CFG, suites_cfg(g=(folder, {})))
    assert "task_a_demo.hdf5" in str(e.value) and f"data/demo_2/{key}" in str(e.value)


def test_mismatched_lengths(tmp_path, libero_fixture_file):
    def cut(f):
        arr = f["data/demo_0/obs/ee_ori"][:50]
        del f["data/demo_0/obs/ee_ori"]
        f["data/demo_0/obs"].create_dataset("ee_ori", data=arr)
    folder = make_suite(tmp_path, libero_fixture_file, edit=cut)
    with pytest.raises(LiberoDataError, match="length 50 != 70") as e:
        LiberoDataset(CFG, suites_cfg(g=(folder, {})))
    assert "task_a_demo.hdf5" in str(e.value) and "data/demo_0/obs/ee_ori" in str(e.value)


def test_missing_problem_info(tmp_path, libero_fixture_file):
    folder = make_suite(tmp_path, libero_fixture_file, edit=lambda f: f["data"].attrs.__delitem__("problem_info"))
    with pytest.raises(LiberoDataError, match="problem_info") as e:
        LiberoDataset(CFG, suites_cfg(g=(folder, {})))
    assert "task_a_demo.hdf5" in str(e.value)


def test_bad_suite_table(tmp_path):
    with pytest.raises(LiberoDataError, match="not configured"):
        load_suite_specs({"a": {"path": str(tmp_path)}}, suites=["b"])
    with pytest.raises(LiberoDataError, match="layout"):
        load_suite_specs({"a": {"path": str(tmp_path), "layout": "rlds"}})
    with pytest.raises(LiberoDataError, match="datasets config not found"):
        load_suite_specs(tmp_path / "missing.json")
    specs = load_suite_specs({"_comment": "x", "a": {"path": "data/datasets/a", "sample_weight": 2}}, root=tmp_path)
    assert specs[0].path == tmp_path / "data/datasets/a" and specs[0].sample_weight == 2.0


# ----------------------------------------------------------- padding, resolutions (issue: right numbers)
@pytest.mark.parametrize("encoding", ["abs_goal", "delta"])
def test_chunks_past_the_end_are_padded_with_stay(libero_fixture_file, encoding):
    """abs_goal pads with the last goal ("be there"); delta with zero motion and the last gripper
    target -- repeating the last delta would tell the robot to keep moving."""
    from policy.libero_mapping import matrix_to_rot6d

    cfg = fill_from_base({**CFG_DICT, "dataset": {**CFG_DICT["dataset"], "action_encoding": encoding}})
    ds = LiberoDataset(cfg, suites_cfg(g=(libero_fixture_file.parent, {})))
    i = next(i for i in range(len(ds)) if ds.locate(i)[1] == "demo_0" and ds.locate(i)[2] == 60)
    s = ds[i]
    valid = s["action_valid"]
    m = int(valid.sum())
    assert m == 70 - 60 and not valid[m:].any()
    last, pad = s["actions"][m - 1], s["actions"][m:]
    assert np.abs(last[30:33]).max() > 0  # the last real action moves (delta) / is a pose (abs_goal)
    if encoding == "abs_goal":
        assert np.array_equal(pad, np.broadcast_to(last, pad.shape))
    else:
        assert np.all(pad[:, 30:33] == 0)
        assert np.allclose(pad[:, 33:39], matrix_to_rot6d(np.eye(3)))
        assert np.all(pad[:, 10] == last[10])
        # decoded against any pose: no motion, same gripper command
        dec = decode_actions(pad, None, "delta")
        assert np.allclose(dec[:, :6], 0, atol=1e-7)


def test_suites_with_different_image_sizes_are_refused_up_front(tmp_path, libero_fixture_file):
    def upscale(f):
        for demo in f["data"]:
            for key in ("agentview_rgb", "eye_in_hand_rgb"):
                big = np.repeat(np.repeat(f["data"][demo]["obs"][key][:], 2, axis=1), 2, axis=2)
                del f["data"][demo]["obs"][key]
                f["data"][demo]["obs"].create_dataset(key, data=big)

    raw = make_suite(tmp_path, libero_fixture_file, name="raw128")
    big = make_suite(tmp_path, libero_fixture_file, name="big256", edit=upscale)
    with pytest.raises(LiberoDataError, match=r"different image sizes.*128x128: .*raw128.*256x256: .*big256"):
        LiberoDataset(CFG, suites_cfg(a=(raw, {"layout": "raw"}), b=(big, {"layout": "raw"})))
