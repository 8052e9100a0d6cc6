"""The data path on files rolled out in the LIBERO simulator (libero_eval.demos), both
layouts: exact index counts, the state/chunk pairing, and encode -> decode round trips."""
import json

import h5py
import numpy as np
import pytest

from configs.loader import fill_from_base
from data.dataset import LiberoDataset
from policy.libero_mapping import OscScale, Pose, decode_actions, encode_actions, encode_state

pytestmark = pytest.mark.sim
CFG = {"common": {"img_history_size": 2, "action_chunk_size": 64, "num_cameras": 3, "state_dim": 128},
       "dataset": {"action_encoding": "abs_goal", "control_freq": 20}}
LAYOUTS = {"raw": ("sim_demo_dir", 1), "no_noops": ("sim_demo_no_noops_dir", 0)}  # obs offset


def load(folder):
    path = next((folder / "libero_goal").glob("*.hdf5"))
    demos = {}
    with h5py.File(path, "r") as f:
        scale = OscScale.from_env_args(json.loads(f["data"].attrs["env_args"]))
        for k in f["data"]:
            g = f["data"][k]
            demos[k] = {n: g[n][()] for n in ("actions", "obs/ee_pos", "obs/ee_ori", "obs/gripper_states")}
    return path, demos, scale


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_index_counts_and_state_pairing(layout, request, tmp_path):
    fixture, off = LAYOUTS[layout]
    folder = request.getfixturevalue(fixture)
    path, demos, _ = load(folder)
    ds = LiberoDataset(fill_from_base(CFG), {"sim": {"path": str(path.parent), "layout": layout}}, cache_dir=tmp_path)
    # raw: the first action has no pre-action observation -> T-1 samples; no_noops: T
    assert len(ds) == sum(len(d["actions"]) - off for d in demos.values())
    located = [ds.locate(i)[1:] for i in range(len(ds))]
    assert len(set(located)) == len(ds)
    for i in range(len(ds)):
        _, demo, k = ds.locate(i)
        d = demos[demo]
        o = k - off
        want, _ = encode_state(d["obs/ee_pos"][o], d["obs/ee_ori"][o], d["obs/gripper_states"][o])
        np.testing.assert_allclose(ds[i]["state"][0], want, atol=1e-6)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("encoding", ["abs_goal", "delta"])
def test_round_trip_every_step(layout, encoding, request):
    fixture, off = LAYOUTS[layout]
    _, demos, scale = load(request.getfixturevalue(fixture))
    for d in demos.values():
        a = d["actions"][off:]
        n = len(a)
        pose = Pose(d["obs/ee_pos"][:n], d["obs/ee_ori"][:n])  # the pose recorded before each action
        back = decode_actions(encode_actions(a, pose, encoding, scale), pose, encoding, scale)
        np.testing.assert_allclose(back, a, atol=1e-5, rtol=0)
