"""libero_eval.demos.recording (scripts/make_demo_dataset.py): simulator-made files match the layout
of LIBERO's create_dataset (the shared fixture file), with the raw alignment (states[t] before, obs[t] after actions[t]),
OpenGL (upside-down) images, cap_index applied; and the no-noops variant."""
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from policy.libero_mapping import NOOP_EPS
from libero_eval import env as lenv
from libero_eval.demos import motion
from libero_eval.demos import recording as rec
from scripts import make_demo_dataset as mdd

pytestmark = pytest.mark.sim

TASK_FILE = "libero_goal/put_the_bowl_on_the_stove_demo.hdf5"


def _layout(path: Path) -> dict:
    """Keys -> (dtype, shape[1:]) of demo_0's datasets, plus attribute names/types."""
    out = {}
    with h5py.File(path, "r") as f:
        data = f["data"]
        out["@data"] = {k: type(v).__name__ for k, v in data.attrs.items()}
        demo = data["demo_0"]

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = (obj.dtype.str, obj.shape[1:], obj.chunks, obj.compression)

        demo.visititems(visit)
        out["@demo"] = {k: type(v).__name__ for k, v in demo.attrs.items()}
    return out


@pytest.fixture(scope="module")
def raw_file(sim_demo_dir) -> Path:
    return sim_demo_dir / TASK_FILE


@pytest.fixture(scope="module")
def nn_file(sim_demo_no_noops_dir) -> Path:
    return sim_demo_no_noops_dir / TASK_FILE


def test_layout_matches_libero_fixture(raw_file, libero_fixture_file):
    ours, ref = _layout(raw_file), _layout(libero_fixture_file)
    for key in ref:
        if key.startswith("@"):
            missing = set(ref[key]) - set(ours[key])
            assert not missing, f"{key} attrs missing: {missing}"
            for name, typ in ref[key].items():
                assert ours[key][name] == typ, (key, name)
        else:
            assert ours.get(key) == ref[key], key
    assert set(k for k in ours if not k.startswith("@")) == set(k for k in ref if not k.startswith("@"))
    with h5py.File(raw_file, "r") as f, h5py.File(libero_fixture_file, "r") as g:
        a, b = f["data"].attrs, g["data"].attrs
        assert json.loads(a["env_args"]) == json.loads(b["env_args"])  # same env kwargs, 128x128, OSC_POSE
        for k in ("env_name", "problem_info", "bddl_file_name", "bddl_file_content", "macros_image_convention"):
            assert a[k] == b[k], k
        assert a["generator"] == motion.GENERATOR and int(a["generator_seed"]) == 0 and a["layout"] == "raw"
        assert f["data/demo_0"].attrs["model_file"].startswith("<mujoco")


def test_counts_flags_and_cap_index(raw_file):
    with h5py.File(raw_file, "r") as f:
        data = f["data"]
        demos = sorted(data.keys())
        assert demos == ["demo_0", "demo_1"] and int(data.attrs["num_demos"]) == 2
        total = 0
        for d in demos:
            g = data[d]
            n = int(g.attrs["num_samples"])
            total += n
            for key in ("actions", "states", "robot_states", "rewards", "dones", "obs/agentview_rgb", "obs/ee_pos"):
                assert g[key].shape[0] == n, key
            assert g["rewards"][-1] == 1 and g["dones"][-1] == 1 and g["dones"][:-1].sum() == 0
            np.testing.assert_array_equal(g.attrs["init_state"], g["states"][0])
            # cap_index: the first 5 recorded steps are gone. Recording starts after the 10 settle
            # steps, so the first kept state is at sim time (10 + 5) * 0.05 s.
            assert g["states"][0, 0] == pytest.approx((lenv.NUM_STEPS_WAIT + rec.CAP_INDEX) / lenv.CONTROL_FREQ)
            params = json.loads(g.attrs["motion_params"])
            assert n == sum(params["phase_steps"]) - rec.CAP_INDEX
            a = g["actions"][()]
            assert np.all(np.abs(a) <= 1.0) and set(np.unique(a[:, 6])) <= {-1.0, 1.0}
            assert (a[:, 6] == 1.0).any()  # the gripper closes at some point
            ee = g["obs/ee_states"][()]
            np.testing.assert_array_equal(ee[:, :3], g["obs/ee_pos"][()])
            np.testing.assert_array_equal(ee[:, 3:], g["obs/ee_ori"][()])
            rs = g["robot_states"][()]
            np.testing.assert_array_equal(rs[:, :2], g["obs/gripper_states"][()])
            np.testing.assert_array_equal(rs[:, 2:5], g["obs/ee_pos"][()])
        assert int(data.attrs["total"]) == total
        # episodes differ (init state, motion parameters)
        assert not np.allclose(data["demo_0/states"][0], data["demo_1/states"][0])


@pytest.fixture(scope="module")
def physics_env():
    env = lenv.make_env("libero_goal", 1, seed=0, use_camera_obs=False)
    env.reset()
    yield env
    lenv.close_env(env)


def test_raw_alignment_states_before_obs_after(raw_file, physics_env):
    with h5py.File(raw_file, "r") as f:
        g = f["data/demo_0"]
        states, ee_pos = g["states"][()], g["obs/ee_pos"][()]
        joints = g["obs/joint_states"][()]
    # obs[t] is observed after actions[t]: it is the robot of states[t+1] exactly
    np.testing.assert_allclose(joints[:-1], states[1:, 1:8], atol=1e-12)
    after = [np.linalg.norm(lenv.eef_pos_from_state(physics_env, states[t + 1]) - ee_pos[t]) for t in range(10)]
    before = [np.linalg.norm(lenv.eef_pos_from_state(physics_env, states[t]) - ee_pos[t]) for t in range(10)]
    # ee_pos is MuJoCo's site position, computed at the start of the last 2 ms physics substep
    # (<= 0.6 mm behind qpos in the LIBERO-made file too); states[t] is a whole step behind.
    assert max(after) < 1e-3
    assert np.median(before) > 3 * np.median(after)


def test_images_as_rendered_upside_down(raw_file, libero_fixture_file):
    with h5py.File(raw_file, "r") as f, h5py.File(libero_fixture_file, "r") as g:
        ours = f["data/demo_0/obs/agentview_rgb"][0].astype(np.float32)
        ref = g["data/demo_0/obs/agentview_rgb"][0].astype(np.float32)
        states = f["data/demo_0/states"][()]
        stored = f["data/demo_0/obs/agentview_rgb"][3]
        stored_wrist = f["data/demo_0/obs/eye_in_hand_rgb"][3]
    # Same scene and camera as the LIBERO-made file: our frame matches its (upside-down) frame far
    # better than the flipped one.
    same = np.abs(ours - ref).mean()
    flipped = np.abs(ours - ref[::-1]).mean()
    assert same < 0.6 * flipped, (same, flipped)
    # And it is exactly what the env renders for that state (robosuite's OpenGL convention).
    env = lenv.make_env("libero_goal", 1, resolution=128, seed=0, camera_names=rec.DATASET_CAMERAS)
    try:
        env.reset()
        obs = env.regenerate_obs_from_state(states[4])  # obs[3] was observed in states[4]
        # (up to the one-substep kinematics lag of the stored frame, ~1-2 levels on average)
        for rendered, saved in ((obs["agentview_image"], stored), (obs["robot0_eye_in_hand_image"], stored_wrist)):
            rendered, saved = rendered.astype(np.float32), saved.astype(np.float32)
            assert np.abs(rendered - saved).mean() < 4.0
            assert np.abs(rendered[::-1] - saved).mean() > 10 * max(np.abs(rendered - saved).mean(), 0.5)
    finally:
        lenv.close_env(env)


def test_loader_reads_simulator_files(raw_file):
    from data import libero_hdf5 as lh5

    with lh5.open_file(raw_file) as f:
        assert lh5.detect_layout(f, raw_file) == "raw"
        assert lh5.read_instruction(f, raw_file) == "put the bowl on the stove"
        low = lh5.read_demo_lowdim(f, raw_file, "demo_1", need_joints=True)
        assert len(low) > 20


def test_no_noops_variant(nn_file):
    with h5py.File(nn_file, "r") as f:
        data = f["data"]
        assert data.attrs["layout"] == "no_noops"
        assert json.loads(data.attrs["env_args"])["env_kwargs"]["camera_heights"] == 256
        for d in data:
            g = data[d]
            n = int(g.attrs["num_samples"])
            assert g["obs/agentview_rgb"].shape == (n, 256, 256, 3)
            a = g["actions"][()]
            # no-op transitions were dropped: every step moves or changes the gripper
            moving = np.linalg.norm(a[:, :6], axis=1) >= NOOP_EPS
            grip_change = np.r_[True, a[1:, 6] != a[:-1, 6]]
            assert np.all(moving | grip_change)
            params = json.loads(g.attrs["motion_params"])
            assert n < sum(params["phase_steps"])  # the hold-still steps are gone
            # obs recorded BEFORE each action: obs[t] is the robot of states[t]
            np.testing.assert_allclose(g["obs/joint_states"][()], g["states"][:, 1:8], atol=1e-12)
            assert g["states"][0, 0] == pytest.approx(lenv.NUM_STEPS_WAIT / lenv.CONTROL_FREQ)


def test_only_success_keeps_nothing_for_failing_script(tmp_path):
    # The scripted motion does not solve the task: with --only_success no file is written.
    rc = mdd.main(["--suite", "libero_goal", "--tasks", "1", "--episodes", "1", "--format", "no_noops",
                   "--only_success", "--length_scale", "0.4", "--resolution", "64", "--no_progress",
                   "--out", str(tmp_path)])
    assert rc == 0
    assert not list(tmp_path.rglob("*.hdf5")) and not list(tmp_path.rglob("*tmp*"))


def test_cli_errors_are_clean(tmp_path, capsys):
    assert mdd.main(["--suite", "libero_nope", "--out", str(tmp_path)]) == 2
    assert mdd.main(["--suite", "libero_goal", "--tasks", "42", "--out", str(tmp_path)]) == 2
    assert not list(tmp_path.rglob("*"))


def _record_counting_renders(fmt: str, monkeypatch) -> tuple[dict, int]:
    """One scripted episode of libero_goal task 1 (64 px) in layout `fmt`; returns it and the
    number of camera renders its rollout made (reset included)."""
    from robosuite.utils.binding_utils import MjSim

    renders = 0
    real_render = MjSim.render

    def counting_render(self, *a, **k):
        nonlocal renders
        renders += 1
        return real_render(self, *a, **k)

    env = lenv.make_env("libero_goal", 1, resolution=64, seed=0, camera_names=rec.DATASET_CAMERAS, ignore_done=True)
    try:
        init = lenv.get_task_init_states(lenv.get_suite("libero_goal"), 1)[0]
        rng = np.random.default_rng(0)
        params = motion.sample_motion(rng, 0.3)
        with monkeypatch.context() as m:
            m.setattr(MjSim, "render", counting_render)
            demo, _ = rec.ROLLOUTS[fmt](env, init, lambda obs: motion.ScriptedMotion(
                params, motion.target_object(env, obs), rng))
        return demo, renders
    finally:
        lenv.close_env(env)


@pytest.mark.parametrize("fmt", ["raw", "no_noops"])
def test_only_stored_frames_are_rendered_and_they_are_unchanged(fmt, monkeypatch):
    """`cameras_paused` skips rendering the settle steps (and raw's dropped CAP_INDEX steps) without
    moving a single stored pixel: the same episode with the cameras never paused is identical."""
    from contextlib import nullcontext

    paused, paused_renders = _record_counting_renders(fmt, monkeypatch)
    monkeypatch.setattr(rec, "cameras_paused", lambda env: nullcontext())
    plain, plain_renders = _record_counting_renders(fmt, monkeypatch)
    assert paused.keys() == plain.keys()
    for k in paused:
        np.testing.assert_array_equal(paused[k], plain[k], err_msg=k)
    # Exactly the frames not stored are no longer rendered (2 cameras): the settle steps (no_noops
    # stores the last one's), raw's first CAP_INDEX steps and set_init_state's observation.
    skipped = lenv.NUM_STEPS_WAIT + 1 + (rec.CAP_INDEX if fmt == "raw" else -1)
    assert plain_renders - paused_renders == len(rec.DATASET_CAMERAS) * skipped


def test_success_hold_counts_like_libero_collect_demonstration():
    """The episode ends N steps after the goal is reached, the goal holding at each; a lost goal
    starts the count again; N = 0 ends at the success step."""
    def end_step(flags, n):
        hold = rec.SuccessHold(n)
        return next((t for t, done in enumerate(flags) if hold.stop(done)), None)

    assert end_step([0, 0, 1, 1, 1, 1], 0) == 2
    assert end_step([0, 0, 1, 1, 1, 1], 3) == 5
    assert end_step([0, 1, 1, 0, 1, 1, 1, 1], 3) == 7  # the goal was lost at step 3
    assert end_step([0, 1, 1, 0, 1], 3) is None
    with pytest.raises(ValueError, match="post_success_steps -1"):
        rec.SuccessHold(-1)
