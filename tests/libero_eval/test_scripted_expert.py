"""The scripted expert (libero_eval.demos.expert) solves a LIBERO task in the simulator from privileged
state, and libero_eval.demos.expert_data (scripts/make_expert_dataset.py) writes its successful
episodes (randomised resets, ending at done) in LIBERO's HDF5 layout, readable by the repo's dataset."""
import json

import h5py
import numpy as np
import pytest

from libero_eval import env as lenv
from libero_eval.demos import expert as se
from libero_eval.demos import expert_data as med
from libero_eval.demos import recording as rec
from libero_eval.demos import waypoints as wp

pytestmark = [pytest.mark.slow, pytest.mark.sim]

SUITE, TASK = "libero_goal", "put_the_bowl_on_the_stove"


def test_expert_solves_benchmark_init_states():
    r = se.evaluate(SUITE, TASK, n_init=3)
    assert r["episodes"] == 3 and r["successes"] == 3, r
    assert r["max_steps_success"] < lenv.max_steps(SUITE)


@pytest.mark.parametrize("task", ["pick_up_the_cream_cheese_and_place_it_in_the_basket",
                                  "pick_up_the_ketchup_and_place_it_in_the_basket"])
def test_object_expert_own_plans(task):
    # libero_object tasks with their own plan (object_plans: the cream cheese's yaw clear of its
    # neighbours, the ketchup bottle by its cap); init states 1 and 2 failed with the generic grasp.
    r = se.evaluate("libero_object", task, n_init=3)
    assert r["successes"] == 3, r
    assert r["max_steps_success"] <= 220


def test_bowl_grasp_tolerates_a_close_that_comes_early(monkeypatch):
    """The four-task policy closed on the bowl 7-25 mm above the expert's grasp height (before its
    descent ended). The bowl is gripped low enough that a close 15 mm higher still lifts it
    (revision 1 gripped at 0.035: from 0.050 the expert itself fails on init states 0 and 1)."""
    from libero_eval.demos import goal_plans

    monkeypatch.setattr(goal_plans, "BOWL_GRASP_Z", goal_plans.BOWL_GRASP_Z + 0.015)
    r = se.evaluate(SUITE, "put_the_bowl_on_the_plate", n_init=2)
    assert r["successes"] == 2, r


def test_plan_revisions():
    """Plans changed since first recorded carry their revision (cached demos of older ones are stale)."""
    assert se.plan_revision(SUITE, "put_the_bowl_on_the_plate") == se.plan_revision(SUITE, TASK) == 2
    assert se.plan_revision(SUITE, "turn_on_the_stove") == 1
    assert se.plan_revision("libero_object", "pick_up_the_milk_and_place_it_in_the_basket") == 1
    with pytest.raises(ValueError, match="no scripted expert"):
        se.plan_revision(SUITE, "open_the_middle_drawer_of_the_cabinet")


def test_a_kept_file_of_an_older_plan_is_reported_stale(tmp_path, caplog):
    path = rec.output_path(tmp_path, SUITE, TASK)
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as f:
        f.create_group("data").attrs["generator_args"] = json.dumps({"seed": 0})  # before revisions: 1
    with caplog.at_level("WARNING"):
        assert med.make_task_file(SUITE, TASK, 1, tmp_path, overwrite=False, progress=False) == path
    assert "revision 1 of the plan, which is now at 2: stale" in caplog.text
    assert med.stored_plan_revision(path) == 1  # kept as it is


def test_demos_start_from_arm_poses_scattered_as_the_benchmarks(tmp_path):
    """LIBERO's init states scatter the arm's joints about init_qpos (robosuite's default
    initialization noise; LIBERO's ControlEnv passes none). The demos' randomised resets scatter
    them as much, and start from the nominal pose only with robot_init_noise 0."""

    def arm_offsets(noise: float) -> np.ndarray:
        seen = []

        def episode(r, attempt):
            r.env.seed(attempt)
            r.env.reset()
            sim, robot = lenv.inner_env(r.env).sim, lenv.inner_env(r.env).robots[0]
            seen.append(sim.data.qpos[robot._ref_joint_pos_indexes] - robot.init_qpos)
            return rec.Episode(None, {}, 0)  # nothing kept: no file

        assert rec.record_task_file(SUITE, 1, tmp_path, episode, episodes=8, generator="test", extra_args={},
                                    robot_init_noise=noise, progress=False) is None
        return np.array(seen)

    assert np.abs(arm_offsets(0.0)).max() < 1e-9
    env = lenv.make_physics_env(SUITE, 1, hard_reset=False)
    try:
        env.reset()
        robot = lenv.inner_env(env).robots[0]
        benchmark = np.array([s[1 + np.asarray(robot._ref_joint_pos_indexes)] - robot.init_qpos
                              for s in lenv.get_task_init_states(SUITE, 1)])
    finally:
        lenv.close_env(env)
    demos = arm_offsets(rec.ROBOT_INIT_NOISE)
    assert abs(np.log(demos.std() / benchmark.std())) < np.log(1.5), (demos.std(), benchmark.std())
    assert np.abs(demos.mean(0)).max() < 0.03 and np.abs(benchmark.mean(0)).max() < 0.01


def test_broken_expert_fails(monkeypatch):
    # Negative control: an expert that never closes the gripper must not solve the task.
    real = se.make_expert

    def never_close(*args, **kwargs):
        expert = real(*args, **kwargs)
        for wp in expert.plan:
            wp.grip = lenv.GRIPPER_OPEN
        return expert

    monkeypatch.setattr(se, "make_expert", never_close)
    r = se.evaluate(SUITE, TASK, n_init=1)
    assert r["successes"] == 0, r


def test_geometry_helpers():
    for angle in (0.3, -1.2, 2.5):
        R = wp.rot_z(angle) @ wp.R_DOWN
        np.testing.assert_allclose(wp.mat_to_axisangle(wp.rot_z(angle)), [0, 0, angle], atol=1e-9)
        np.testing.assert_allclose(wp.mat_to_axisangle(R @ R.T), 0, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(wp.mat_to_axisangle(wp.R_DOWN)), np.pi, atol=1e-6)
    assert wp.wrap_half_pi(np.pi) == pytest.approx(0.0, abs=1e-12)
    assert wp.wrap_half_pi(np.pi + 0.2) == pytest.approx(0.2)


@pytest.fixture(scope="module")
def expert_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("expert")
    raw = med.make_task_file(SUITE, TASK, 2, root / "raw", fmt="raw", seed=3, progress=False)
    nn = med.make_task_file(SUITE, TASK, 1, root / "nn", fmt="no_noops", resolution=64, seed=3, progress=False)
    return raw, nn


def test_demos_go_on_after_success_as_libero_records_them(expert_files, tmp_path):
    """The same episode recorded to its first success step (post_success_steps 0) and with LIBERO's
    10 steps after it: the same actions, 10 more of them, the release phase finished in them (the
    gripper opened after carrying the bowl), and the goal holds at the end."""
    raw, _ = expert_files
    cut = med.make_task_file(SUITE, TASK, 1, tmp_path, fmt="raw", resolution=64, seed=3, progress=False,
                             post_success_steps=0)
    with h5py.File(raw, "r") as f, h5py.File(cut, "r") as g:
        assert json.loads(f["data"].attrs["generator_args"])["post_success_steps"] == rec.POST_SUCCESS_STEPS == 10
        assert json.loads(g["data"].attrs["generator_args"])["post_success_steps"] == 0
        a10, a0 = f["data/demo_0/actions"][()], g["data/demo_0/actions"][()]
        phases10 = [p for p, _ in json.loads(f["data/demo_0"].attrs["expert_phases"])]
        phases0 = [p for p, _ in json.loads(g["data/demo_0"].attrs["expert_phases"])]
        last_state = f["data/demo_0/states"][-1]
        last_action = a10[-1]
    assert len(a10) == len(a0) + 10
    np.testing.assert_array_equal(a10[:len(a0)], a0)
    assert "release" not in phases0 and "release" in phases10
    assert np.all(a10[len(a0):, 6] == lenv.GRIPPER_OPEN)
    env = lenv.make_env(SUITE, 1, use_camera_obs=False)  # task 1: TASK
    try:
        env.reset()
        lenv.reset_to_state(env, last_state, lenv.GRIPPER_OPEN)
        env.step(last_action)  # states[t] is the state before actions[t]
        assert lenv.inner_env(env)._check_success()
    finally:
        lenv.close_env(env)


def test_expert_dataset_layout_and_success(expert_files):
    raw, _ = expert_files
    assert raw == rec.output_path(raw.parents[1], SUITE, TASK) and raw.is_file()
    assert not list(raw.parent.glob(".*tmp*"))
    with h5py.File(raw, "r") as f:
        data = f["data"]
        assert int(data.attrs["num_demos"]) == 2 and sorted(data) == ["demo_0", "demo_1"]
        assert data.attrs["generator"] == med.GENERATOR and data.attrs["layout"] == "raw"
        assert med.stored_plan_revision(raw) == json.loads(data.attrs["generator_args"])["plan_revision"] == 2
        assert json.loads(data.attrs["generator_args"])["robot_init_noise"] == rec.ROBOT_INIT_NOISE
        assert json.loads(data.attrs["problem_info"])["language_instruction"] == "put the bowl on the stove"
        assert json.loads(data.attrs["env_args"])["env_kwargs"]["camera_heights"] == 128
        total = 0
        for d in data.values():
            n = int(d.attrs["num_samples"])
            total += n
            assert bool(d.attrs["success"]) and d["dones"][-1] == 1 and d["dones"][:-1].sum() == 0
            assert d["obs/agentview_rgb"].shape == (n, 128, 128, 3)
            a = d["actions"][()]
            assert np.all(np.abs(a) <= 1.0) and set(np.unique(a[:, 6])) == {-1.0, 1.0}
            # the episode ended at success: well inside the budget
            assert n + rec.CAP_INDEX < lenv.max_steps(SUITE)
            # randomised reset, not one of the benchmark's init states (objects >= 1 mm away)
            assert float(d.attrs["min_init_state_dist"]) > 1e-3
        assert int(data.attrs["total"]) == total
        s0, s1 = data["demo_0/states"][0], data["demo_1/states"][0]
    env = lenv.make_env(SUITE, 1, use_camera_obs=False)
    try:
        assert np.abs(med.object_qpos(env, s0) - med.object_qpos(env, s1)).max() > 1e-3
    finally:
        lenv.close_env(env)


def test_expert_dataset_loads(expert_files, tmp_path):
    from configs.loader import fill_from_base
    from data.dataset import LiberoDataset

    raw, nn = expert_files
    cfg = {"common": {"img_history_size": 2, "action_chunk_size": 16, "num_cameras": 3, "state_dim": 128},
           "dataset": {"action_encoding": "abs_goal", "control_freq": 20}}
    with h5py.File(raw, "r") as f:
        lengths = [int(d.attrs["num_samples"]) for d in f["data"].values()]
    ds = LiberoDataset(fill_from_base(cfg), {"expert": {"path": str(raw.parent), "layout": "raw"}}, cache_dir=tmp_path / "c1")
    assert len(ds) == sum(n - 1 for n in lengths)
    sample = ds[len(ds) - 1]
    assert np.isfinite(sample["state"]).all()
    with h5py.File(nn, "r") as f:
        n_nn = int(f["data/demo_0"].attrs["num_samples"])
    ds = LiberoDataset(fill_from_base(cfg), {"expert": {"path": str(nn.parent), "layout": "no_noops"}}, cache_dir=tmp_path / "c2")
    assert len(ds) == n_nn


def test_expert_dataset_deterministic_across_layouts(expert_files):
    # Same seed -> same placement and expert: the no-noops file (obs before action, nothing dropped
    # since the expert's actions are never no-ops) holds the raw file's actions plus the first
    # CAP_INDEX ones, whatever the camera resolution.
    raw, nn = expert_files
    with h5py.File(raw, "r") as f, h5py.File(nn, "r") as g:
        a_raw, a_nn = f["data/demo_0/actions"][()], g["data/demo_0/actions"][()]
        assert int(f["data/demo_0"].attrs["reset_seed"]) == int(g["data/demo_0"].attrs["reset_seed"])
        s_raw, s_nn = f["data/demo_0/states"][()], g["data/demo_0/states"][()]
    np.testing.assert_array_equal(a_nn[rec.CAP_INDEX:], a_raw)
    np.testing.assert_allclose(s_nn[rec.CAP_INDEX:], s_raw, atol=1e-9)


def test_parallel_recording_writes_the_serial_files(tmp_path, expert_files):
    """make_task_files with 2 workers (2 tasks, one spawned process each) writes what a serial
    make_task_file writes: the raw fixture above (bowl, seed 3) and the stove recorded here."""
    raw, _ = expert_files
    stove = "turn_on_the_stove"
    serial = med.make_task_file(SUITE, stove, 1, tmp_path / "serial", fmt="raw", resolution=64, seed=3,
                                progress=False)
    files = med.make_task_files(SUITE, [TASK, stove], 1, tmp_path / "parallel", workers=2, fmt="raw",
                                resolution=64, seed=3)
    assert files == [rec.output_path(tmp_path / "parallel", SUITE, n) for n in (TASK, stove)]
    with h5py.File(raw, "r") as f, h5py.File(files[0], "r") as g:  # demo_0 of the 128 px fixture
        np.testing.assert_array_equal(f["data/demo_0/actions"][()], g["data/demo_0/actions"][()])
    with h5py.File(serial, "r") as f, h5py.File(files[1], "r") as g:
        for key in ("actions", "states", "obs/agentview_rgb", "obs/eye_in_hand_rgb"):
            np.testing.assert_array_equal(f[f"data/demo_0/{key}"][()], g[f"data/demo_0/{key}"][()], err_msg=key)
    with pytest.raises(ValueError, match="no scripted expert"):  # refused before any process starts
        med.make_task_files(SUITE, [stove, "open_the_middle_drawer_of_the_cabinet"], 1, tmp_path / "x", workers=2)
    assert not (tmp_path / "x").exists()


def test_expert_dataset_cli_errors_are_one_line(tmp_path, caplog):
    from scripts import make_expert_dataset as cli

    assert cli.main(["--tasks", "7", "--workers", "0", "--out", str(tmp_path)]) == 2
    assert "--workers 0: expected at least 1" in caplog.text
    assert cli.main(["--tasks", "7", "open_the_middle_drawer_of_the_cabinet", "--workers", "2",
                     "--out", str(tmp_path)]) == 2
    assert "no scripted expert for libero_goal/open_the_middle_drawer_of_the_cabinet" in caplog.text
    assert not list(tmp_path.rglob("*"))
