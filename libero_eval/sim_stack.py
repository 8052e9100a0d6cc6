"""Does the installed MuJoCo / robosuite / LIBERO stack reproduce LIBERO's recorded demos and images?

The library of ``python -m scripts.check_sim_stack`` (its docstring has the usage): replay a raw-layout
LIBERO HDF5 file open loop and one step at a time, render its cameras, and compare with what the file
recorded (``check_file`` per file, ``summarize`` / ``print_report`` across demos).

For each demo of a raw-layout LIBERO HDF5 file (default: the LIBERO-made fixture
``tests/fixtures/libero_format/put_the_bowl_on_the_stove_demo.hdf5``, robosuite 1.4.0 + mujoco
3.3.7; raw layout: ``states[t]`` is the state before ``actions[t]``, ``obs/*[t]`` is observed after
it, i.e. at ``states[t+1]``):

- **replay** (open loop): set ``states[0]`` (OSC controller refreshed, gripper open), execute the
  recorded actions, and measure the simulated state after action t against ``states[t+1]``:
  end-effector position (mm, max and final), object positions (free joints, mm) and the largest
  |qpos| difference; also the end effector against the recorded ``obs/ee_pos[t]``. Open-loop replay
  is chaotic once contacts are involved, so it exaggerates small differences.
- **one step**: for every t, set ``states[t]`` (controller refreshed, the gripper's hidden command
  state synced), execute ``actions[t]`` and compare with ``states[t+1]``; averaged over t. Much
  less sensitive to chaos: it measures how differently one control step integrates.
- **pixels**: both cameras at the file's resolution against ``obs/agentview_rgb[t]`` /
  ``obs/eye_in_hand_rgb[t]`` (mean and max |difference| in grey levels over all channels, % of
  pixels whose largest channel difference exceeds 8 levels), rendered two ways: *stepped* = the
  image observed after the one step from ``states[t]`` (how LIBERO rendered it: right after
  ``mj_step``, i.e. with the kinematics of the last 2 ms substep; the headline number) and
  *static* = rendered at ``states[t+1]`` after ``forward`` (renderer only; a floor of ~0.5 levels
  even on the generating stack, the robot being one substep further). Both sides are in
  robosuite's image convention (the file's ``macros_image_convention``, "opengl" = upside down),
  so nothing is flipped unless the conventions differ. For the first demo the pairing is also
  measured against ``states[t]`` and ``states[t+2]`` (it must be smallest at t+1).

The scene is built from the task's bddl by the installed LIBERO, then the fixtures that LIBERO
placed at random (cabinet, stove, rack: fixed bodies, not in ``states``) are moved to the poses in
the demo's recorded ``model_file``. See docs/SIM_STACK.md for the measurements.

Open-loop replay is chaotic through contacts: even the generating stack drifts on some demos, so
rank stacks by the one-step error and the stepped pixels.
"""
from __future__ import annotations

import logging
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from data import libero_hdf5 as lh5
from libero_eval import env as lenv
from libero_eval.versions import format_versions

log = logging.getLogger("check_sim_stack")

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "libero_format" / "put_the_bowl_on_the_stove_demo.hdf5"
# Recorded image key -> robosuite observation key.
CAMERAS = {"agentview_rgb": "agentview_image", "eye_in_hand_rgb": "robot0_eye_in_hand_image"}
PIXEL_THRESHOLD = 8  # grey levels: "differs" means the largest channel difference exceeds this
# Panda gripper's hidden command state when fully open (robosuite 1.4 PandaGripper.current_action).
GRIPPER_HIDDEN_OPEN = np.array([1.0, -1.0])


@dataclass
class PixelStats:
    mean: float  # mean |diff| over all pixels, channels and frames (grey levels)
    max: int  # largest |diff| anywhere
    pct_over: float  # % of pixels (all frames) whose largest channel |diff| > PIXEL_THRESHOLD
    frames: int


@dataclass
class DemoResult:
    file: str
    demo: str
    steps: int
    replay_eef_max_mm: float  # open loop: eef vs eef of states[t+1]
    replay_eef_final_mm: float
    replay_eef_vs_obs_max_mm: float  # open loop: observed robot0_eef_pos vs recorded obs/ee_pos[t]
    replay_obj_max_mm: float  # open loop: largest object (free joint) position error
    replay_obj_final_mm: float
    replay_qpos_max: float  # open loop: largest |qpos - recorded qpos| (m or rad)
    onestep_eef_mean_mm: float  # set states[t], step actions[t], vs states[t+1]; mean over t
    onestep_eef_max_mm: float
    onestep_obj_mean_mm: float
    onestep_qpos_mean: float  # mean over t of max |qpos diff|
    fixture_shift_mm: float = 0.0  # largest move of a fixture to its recorded pose (0: not restored)
    pixels: dict[str, PixelStats] = field(default_factory=dict)  # images observed after a one-step from states[t]
    pixels_static: dict[str, PixelStats] = field(default_factory=dict)  # images rendered at states[t+1]
    alignment: dict[str, float] = field(default_factory=dict)  # "t+k" -> agentview static mean |diff|


# ------------------------------------------------------------------------------------------------
# Simulator helpers
# ------------------------------------------------------------------------------------------------
def _raw_model(inner):
    m = inner.sim.model
    return getattr(m, "_model", m)


def state_qpos(inner, states: np.ndarray) -> np.ndarray:
    """qpos part of flat mujoco states ``[time, qpos(nq), qvel(nv)]``."""
    nq = _raw_model(inner).nq
    return np.asarray(states)[..., 1:1 + nq]


def object_qpos_index(inner) -> list[tuple[str, int]]:
    """(joint name, qpos address) of every free joint (the movable objects)."""
    import mujoco

    m = _raw_model(inner)
    out = []
    for j in range(m.njnt):
        if int(m.jnt_type[j]) == int(mujoco.mjtJoint.mjJNT_FREE):
            out.append((mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, j) or f"joint{j}", int(m.jnt_qposadr[j])))
    return out


def object_positions(qpos: np.ndarray, index: list[tuple[str, int]]) -> np.ndarray:
    """(..., n_objects, 3) positions from qpos."""
    if not index:
        return np.zeros(qpos.shape[:-1] + (0, 3))
    return np.stack([qpos[..., a:a + 3] for _, a in index], axis=-2)


def _eef(inner) -> np.ndarray:
    """End-effector position of the CURRENT state. After ``mj_step`` the kinematics (site_xpos, and
    so robosuite's ``robot0_eef_pos`` observation and the rendered images) still belong to the
    state before the last 2 ms substep; ``forward`` recomputes them (the state is unchanged)."""
    inner.sim.forward()
    return np.array(inner.sim.data.site_xpos[inner.robots[0].eef_site_id], dtype=np.float64)


def _gripper(inner):
    g = getattr(inner.robots[0], "gripper", None)
    return g if g is not None and hasattr(g, "current_action") else None


def recorded_body_poses(model_xml: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Body name -> (pos, unit quat) relative to the parent, from a recorded ``model_file`` XML."""
    import xml.etree.ElementTree as ET

    out = {}
    for b in ET.fromstring(model_xml).iter("body"):
        name = b.get("name")
        if not name or any(k in b.attrib for k in ("euler", "axisangle", "xyaxes", "zaxis")):
            continue
        pos = np.array([float(v) for v in (b.get("pos") or "0 0 0").split()])
        quat = np.array([float(v) for v in (b.get("quat") or "1 0 0 0").split()])
        out[name] = (pos, quat / np.linalg.norm(quat))
    return out


def apply_body_poses(env, poses: dict[str, tuple[np.ndarray, np.ndarray]], tol: float = 1e-5) -> float:
    """Move the scene's fixed bodies to their recorded poses; returns the largest shift (mm).

    LIBERO places fixtures (cabinet, stove, rack, ...) at random inside their bddl regions at every
    hard reset, as fixed bodies whose pose is not part of ``states``: the recorded poses live only
    in the demo's ``model_file``. Bodies whose pose already agrees within `tol` (the XML's 6-digit
    rounding) are left alone.
    """
    import mujoco

    inner = lenv.inner_env(env)
    m = _raw_model(inner)
    moved = 0.0
    for name, (pos, quat) in poses.items():
        bid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, name)
        if bid < 0:
            continue
        dpos = float(np.linalg.norm(m.body_pos[bid] - pos))
        dquat = float(min(np.abs(m.body_quat[bid] - quat).max(), np.abs(m.body_quat[bid] + quat).max()))
        if dpos > tol or dquat > tol:
            moved = max(moved, dpos * 1000.0)
            m.body_pos[bid] = pos
            m.body_quat[bid] = quat
    inner.sim.forward()
    return moved


def reset_scene(env, poses: dict | None) -> float:
    """``env.reset()`` (a hard reset re-randomizes the fixtures), then restore the recorded scene."""
    env.reset()
    return apply_body_poses(env, poses) if poses else 0.0


def set_state(env, state: np.ndarray, gripper_hidden: np.ndarray | None) -> None:
    """Jump to a recorded state: set, forward, refresh the controller, set the gripper's hidden state.

    Physically the same as `libero_eval.env.reset_to_state`, without LIBERO's forced observation
    update (which renders both cameras; the images are not needed here).
    """
    inner = lenv.inner_env(env)
    inner.sim.set_state_from_flattened(np.asarray(state, dtype=np.float64))
    inner.sim.forward()
    lenv.refresh_controller(env, lenv.GRIPPER_OPEN)
    g = _gripper(inner)
    if g is not None and gripper_hidden is not None:
        g.current_action = np.array(gripper_hidden, dtype=np.float64)


def _max_obj_err_mm(pos_a: np.ndarray, pos_b: np.ndarray) -> np.ndarray:
    """Per time step, largest object position error (mm); zeros when there are no objects."""
    if pos_a.shape[-2] == 0:
        return np.zeros(pos_a.shape[0])
    return np.linalg.norm(pos_a - pos_b, axis=-1).max(axis=-1) * 1000.0


# ------------------------------------------------------------------------------------------------
# The three measurements
# ------------------------------------------------------------------------------------------------
def recorded_eef(env, states: np.ndarray) -> np.ndarray:
    return np.stack([lenv.eef_pos_from_state(env, s) for s in states])


def replay_open_loop(env, states, actions, ee_pos_obs, rec_eef, obj_index, poses=None) -> tuple[dict, list]:
    """Open-loop replay from states[0]; returns (metrics, gripper hidden state after each action)."""
    inner = lenv.inner_env(env)
    reset_scene(env, poses)
    set_state(env, states[0], GRIPPER_HIDDEN_OPEN)
    live_states, live_eef, live_obs_eef, hidden = [], [], [], []
    for a in actions:
        obs, _, _, _ = env.step(np.asarray(a, dtype=np.float64))
        live_obs_eef.append(np.array(obs["robot0_eef_pos"], dtype=np.float64))  # same lag as obs/ee_pos
        live_states.append(lenv.sim_state(env))
        live_eef.append(_eef(inner))
        g = _gripper(inner)
        hidden.append(None if g is None else np.array(g.current_action, dtype=np.float64))
    live_states, live_eef = np.stack(live_states), np.stack(live_eef)
    n = len(actions) - 1  # live[t] <-> states[t+1] for t < T-1
    eef_err = np.linalg.norm(live_eef[:n] - rec_eef[1:], axis=-1) * 1000.0
    q_live, q_rec = state_qpos(inner, live_states[:n]), state_qpos(inner, states[1:])
    obj_err = _max_obj_err_mm(object_positions(q_live, obj_index), object_positions(q_rec, obj_index))
    obs_err = np.linalg.norm(np.stack(live_obs_eef) - ee_pos_obs, axis=-1) * 1000.0
    metrics = {
        "replay_eef_max_mm": float(eef_err.max()),
        "replay_eef_final_mm": float(eef_err[-1]),
        "replay_eef_vs_obs_max_mm": float(obs_err.max()),
        "replay_obj_max_mm": float(obj_err.max()),
        "replay_obj_final_mm": float(obj_err[-1]),
        "replay_qpos_max": float(np.abs(q_live - q_rec).max()),
    }
    return metrics, hidden


def one_step_errors(env, states, actions, rec_eef, obj_index, hidden_after,
                    images: dict[str, list] | None = None, flip: bool = False) -> dict:
    """Set states[t] (gripper hidden state as in the replay), step actions[t], compare with states[t+1].

    With `images` (a camera env), the images observed after each step are appended to it: they are
    rendered exactly as LIBERO's playback rendered the recorded ones (kinematics of the last substep).
    """
    inner = lenv.inner_env(env)
    eef_err, obj_err, q_err = [], [], []
    for t in range(len(actions) - 1):
        before = GRIPPER_HIDDEN_OPEN if t == 0 else hidden_after[t - 1]
        set_state(env, states[t], before)
        obs, _, _, _ = env.step(np.asarray(actions[t], dtype=np.float64))
        if images is not None:
            for rec_key, obs_key in CAMERAS.items():
                img = np.asarray(obs[obs_key])
                images[rec_key].append(img[::-1] if flip else img)
        q = state_qpos(inner, lenv.sim_state(env))
        q_rec = state_qpos(inner, states[t + 1])
        eef_err.append(np.linalg.norm(_eef(inner) - rec_eef[t + 1]) * 1000.0)
        obj_err.append(_max_obj_err_mm(object_positions(q[None], obj_index), object_positions(q_rec[None], obj_index))[0])
        q_err.append(np.abs(q - q_rec).max())
    return {
        "onestep_eef_mean_mm": float(np.mean(eef_err)),
        "onestep_eef_max_mm": float(np.max(eef_err)),
        "onestep_obj_mean_mm": float(np.mean(obj_err)),
        "onestep_qpos_mean": float(np.mean(q_err)),
    }


def pixel_stats(live: np.ndarray, recorded: np.ndarray) -> PixelStats:
    """Compare (N, H, W, 3) uint8 stacks."""
    d = np.abs(live.astype(np.int16) - recorded.astype(np.int16))
    return PixelStats(mean=float(d.mean()), max=int(d.max()),
                      pct_over=float((d.max(axis=-1) > PIXEL_THRESHOLD).mean() * 100.0), frames=len(d))


def render_states(env, states: np.ndarray, flip: bool = False) -> dict[str, np.ndarray]:
    """Both cameras rendered at each state (LIBERO's set_init_state: set, forward, observe)."""
    frames: dict[str, list] = {k: [] for k in CAMERAS}
    for s in states:
        obs = env.set_init_state(np.asarray(s, dtype=np.float64))
        for rec_key, obs_key in CAMERAS.items():
            img = np.asarray(obs[obs_key])
            frames[rec_key].append(img[::-1] if flip else img)
    return {k: np.stack(v) for k, v in frames.items()}


def image_convention_flip(f) -> bool:
    """True when the file's image convention differs from robosuite's current one."""
    import robosuite.macros as macros

    rec = f["data"].attrs.get("macros_image_convention", "opengl")
    rec = rec.decode() if isinstance(rec, bytes) else str(rec)
    return rec != getattr(macros, "IMAGE_CONVENTION", "opengl")


# ------------------------------------------------------------------------------------------------
# Files
# ------------------------------------------------------------------------------------------------
def _attr_str(v) -> str | None:
    return v.decode() if isinstance(v, bytes) else (None if v is None else str(v))


def check_file(path: str | Path, max_demos: int | None = None, pixels: bool = True, alignment: bool = True,
               flip: bool = False, state_noise: float = 0.0, use_model_file: bool = True) -> list[DemoResult]:
    """Measure every demo (at most `max_demos`) of one raw-layout file.

    The scene is built from the task's bddl by the installed LIBERO; with `use_model_file` its
    randomly placed fixtures are then moved to the poses in the demo's recorded ``model_file``.

    `flip` (flip the rendered images) and `state_noise` (add N(0, state_noise²) to the recorded
    qpos before anything is simulated or rendered) are deliberate mistakes, for testing the check.
    """
    from libero_eval.replay import task_of_file

    path = Path(path)
    results: list[DemoResult] = []
    with lh5.open_file(path) as f:
        layout = lh5.detect_layout(f, path)
        if layout != "raw":
            raise lh5.LiberoDataError(path, f"layout {layout!r}: only raw LIBERO files (obs after the action) are supported")
        suite, task_id = task_of_file(f, path)
        demos = lh5.demo_keys(f, path)[: max_demos or None]
        h, w = lh5.image_shape(f, demos[0])
        if h != w:
            raise lh5.LiberoDataError(path, f"non-square images {h}x{w}")
        flip = flip ^ image_convention_flip(f)
        phys = lenv.make_env(suite, task_id, resolution=h, seed=0, use_camera_obs=False, ignore_done=True)
        cam = lenv.make_env(suite, task_id, resolution=h, seed=0, ignore_done=True) if pixels else None
        try:
            obj_index = object_qpos_index(lenv.inner_env(phys))
            n_env = len(lenv.sim_state(phys))
            rng = np.random.default_rng(0)
            for i, demo in enumerate(demos):
                g = f[f"data/{demo}"]
                states = np.asarray(g["states"][()], dtype=np.float64)
                if states.shape[1] != n_env:
                    raise lh5.LiberoDataError(path, f"state size {states.shape[1]} != simulator's {n_env}", key=f"data/{demo}/states")
                if state_noise:
                    nq = _raw_model(lenv.inner_env(phys)).nq
                    states = states.copy()
                    states[:, 1:1 + nq] += rng.normal(0.0, state_noise, size=(len(states), nq))
                actions = np.asarray(g["actions"][()], dtype=np.float64)
                ee_obs = np.asarray(g["obs/ee_pos"][()], dtype=np.float64)
                rec_eef = recorded_eef(phys, states)
                model_xml = _attr_str(g.attrs.get("model_file"))
                poses = recorded_body_poses(model_xml) if use_model_file and model_xml else None
                replay, hidden = replay_open_loop(phys, states, actions, ee_obs, rec_eef, obj_index, poses)
                T = len(actions)
                stepped: dict[str, list] | None = {k: [] for k in CAMERAS} if cam is not None else None
                if cam is not None:
                    moved = reset_scene(cam, poses)
                else:
                    moved = reset_scene(phys, poses)
                onestep = one_step_errors(cam if cam is not None else phys, states, actions, rec_eef, obj_index,
                                          hidden, images=stepped, flip=flip)
                res = DemoResult(str(path), demo, T, **replay, **onestep, fixture_shift_mm=moved)
                if cam is not None:
                    recorded = {k: np.asarray(g[f"obs/{k}"][()]) for k in CAMERAS}
                    static = render_states(cam, states[1:T], flip=flip)
                    for key in CAMERAS:
                        res.pixels[key] = pixel_stats(np.stack(stepped[key]), recorded[key][: T - 1])
                        res.pixels_static[key] = pixel_stats(static[key], recorded[key][: T - 1])
                    if alignment and i == 0:
                        rec = recorded["agentview_rgb"]
                        res.alignment["t+1"] = res.pixels_static["agentview_rgb"].mean
                        at_t = render_states(cam, states[0:T - 1], flip=flip)["agentview_rgb"]
                        res.alignment["t"] = pixel_stats(at_t, rec[: T - 1]).mean
                        at_t2 = render_states(cam, states[2:T], flip=flip)["agentview_rgb"]
                        res.alignment["t+2"] = pixel_stats(at_t2, rec[: T - 2]).mean
                log.info("%s %s: replay eef max %.2f mm, one-step eef mean %.3f mm%s", path.name, demo,
                         res.replay_eef_max_mm, res.onestep_eef_mean_mm,
                         "".join(f", {k} mean |diff| {p.mean:.3f}" for k, p in res.pixels.items()))
                results.append(res)
        finally:
            lenv.close_env(phys)
            if cam is not None:
                lenv.close_env(cam)
    return results


# ------------------------------------------------------------------------------------------------
# Summary and report
# ------------------------------------------------------------------------------------------------
def _pool(stats: list[PixelStats]) -> dict:
    frames = sum(p.frames for p in stats)
    if not frames:
        return {"mean": float("nan"), "max": 0, "pct_over": float("nan")}
    return {"mean": sum(p.mean * p.frames for p in stats) / frames, "max": max(p.max for p in stats),
            "pct_over": sum(p.pct_over * p.frames for p in stats) / frames}


def summarize(results: Sequence[DemoResult]) -> dict:
    """Worst replay error, mean one-step error and pooled pixel differences over all demos/cameras."""
    def mean(key):
        return float(np.mean([getattr(r, key) for r in results])) if results else float("nan")

    def worst(key):
        return float(max((getattr(r, key) for r in results), default=float("nan")))

    stepped = _pool([p for r in results for p in r.pixels.values()])
    static = _pool([p for r in results for p in r.pixels_static.values()])
    return {
        "demos": len(results),
        "replay_eef_max_mm": worst("replay_eef_max_mm"),
        "replay_eef_vs_obs_max_mm": worst("replay_eef_vs_obs_max_mm"),
        "replay_obj_max_mm": worst("replay_obj_max_mm"),
        "replay_qpos_max": worst("replay_qpos_max"),
        "onestep_eef_mean_mm": mean("onestep_eef_mean_mm"),
        "onestep_eef_max_mm": worst("onestep_eef_max_mm"),
        "onestep_obj_mean_mm": mean("onestep_obj_mean_mm"),
        "onestep_qpos_mean": mean("onestep_qpos_mean"),
        "pixel_mean": stepped["mean"], "pixel_max": stepped["max"], "pixel_pct_over": stepped["pct_over"],
        "pixel_static_mean": static["mean"], "pixel_static_max": static["max"],
        "pixel_static_pct_over": static["pct_over"],
    }


def _px(p: PixelStats | None) -> str:
    return f"{p.mean:.3f} / {p.max} / {p.pct_over:.2f}" if p else "-"


def print_report(results: Sequence[DemoResult], versions: dict) -> dict:
    print(f"python {platform.python_version()}, {format_versions(versions)}, "
          f"MUJOCO_GL={os.environ.get('MUJOCO_GL')}")
    print("physics (mm unless noted): replay = open loop from states[0] vs states[t+1] (obs: robot0_eef_pos vs "
          "obs/ee_pos); 1-step = set states[t], step actions[t], vs states[t+1]; fix = largest fixture move "
          "to its recorded pose")
    print(f"{'demo':<8} {'T':>3} {'fix':>5} | {'replay eef':>10} {'final':>6} {'obs':>6} {'obj':>7} {'obj fin':>7} "
          f"{'qpos':>7} | {'1-step eef':>10} {'max':>6} {'obj':>7} {'qpos':>8}")
    for r in results:
        print(f"{r.demo:<8} {r.steps:>3} {r.fixture_shift_mm:>5.1f} | {r.replay_eef_max_mm:>10.3f} {r.replay_eef_final_mm:>6.2f} "
              f"{r.replay_eef_vs_obs_max_mm:>6.2f} {r.replay_obj_max_mm:>7.2f} {r.replay_obj_final_mm:>7.2f} "
              f"{r.replay_qpos_max:>7.4f} | {r.onestep_eef_mean_mm:>10.4f} {r.onestep_eef_max_mm:>6.3f} "
              f"{r.onestep_obj_mean_mm:>7.4f} {r.onestep_qpos_mean:>8.2e}")
    if any(r.pixels for r in results):
        print(f"pixels, mean |diff| / max / % > {PIXEL_THRESHOLD} levels: stepped = image observed after the "
              "one step from states[t]; static = rendered at states[t+1]")
        print(f"{'demo':<8} | {'agentview stepped':>20} {'static':>20} | {'eye_in_hand stepped':>20} {'static':>20}")
        for r in results:
            print(f"{r.demo:<8} | {_px(r.pixels.get('agentview_rgb')):>20} {_px(r.pixels_static.get('agentview_rgb')):>20} | "
                  f"{_px(r.pixels.get('eye_in_hand_rgb')):>20} {_px(r.pixels_static.get('eye_in_hand_rgb')):>20}")
    for r in results:
        if r.alignment:
            print(f"alignment ({r.demo}, agentview mean |diff| of obs[t] against a render of): "
                  + ", ".join(f"states[{k}] {v:.3f}" for k, v in sorted(r.alignment.items())))
    s = summarize(results)
    print(f"summary: replay eef max {s['replay_eef_max_mm']:.3f} mm, objects max {s['replay_obj_max_mm']:.3f} mm; "
          f"1-step eef mean {s['onestep_eef_mean_mm']:.4f} mm; pixels stepped {s['pixel_mean']:.3f} / "
          f"{s['pixel_max']} / {s['pixel_pct_over']:.2f}%, static {s['pixel_static_mean']:.3f} / "
          f"{s['pixel_static_max']} / {s['pixel_static_pct_over']:.2f}%")
    print(f"replay max {s['replay_eef_max_mm']:.2f} mm, pixels mean |diff| {s['pixel_mean']:.3f} levels "
          f"(mujoco {versions.get('mujoco')}, robosuite {versions.get('robosuite')})")
    return s
