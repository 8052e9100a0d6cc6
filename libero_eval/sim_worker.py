"""One LIBERO simulator in its own process, driven over a pipe by the evaluation loop: both ends
of the pipe (the child's ``worker_main`` and the parent's ``SimWorker`` handle).

The evaluation keeps N of these stepping in lockstep: it sends every worker the next segment of
its action chunk (``exec_horizon`` 128-d vectors), then collects the replies, so the simulators run
in parallel while the policy runs one batched forward for all of them. A worker executes a segment
on its own: at every step it decodes the 128-d vector against the LIVE end-effector pose
(`policy.libero_mapping.decode_actions`, the one mapping), steps the env and stops early on success
or when the episode budget is spent. Video frames are written inside the worker (nothing large
crosses the pipe).

Protocol (after one unsolicited ("ok", {"pid"}) once the simulator stack is imported; request -> reply; every reply is ``("ok", payload)`` or ``("error", traceback text)``):
    ("start", dict(suite, task_id, init_state, seed, resolution, settle_steps, max_steps, video_tmp,
                   stop_on_done, gripper_action, goals, stop_goal))   -> {"obs", "n_state"}
    ("exec", dict(chunk (n, 128), encoding))            -> {"obs", "prev_obs", "done", "steps",
                                                            "eef", "dones", "achieved", "unavailable"}
``goals`` ({task name: goal predicates}, ``libero_eval.goals``) are evaluated after every step; their
labels holding then are ``achieved``, and ``done`` becomes "``stop_goal``'s goal holds" (the
instruction-swap diagnostic runs task X's scene prompted with task Y and stops on Y's goal). Goals
that name an object the scene lacks (libero_object: each scene has 7 of the 10 groceries) cannot
hold there: they are listed as ``unavailable`` and not evaluated; with ``stop_goal`` among them the
trial runs its whole budget.
    ("finish", dict(video_path or None))                -> {"video": path or ""}
    ("close", None)                                     -> process exits
A simulator exception is reported as "error" and the env is rebuilt for the next trial; if the
process itself dies the parent sees EOF and starts a new worker.

Fault injection for the tests (``utils/faults.py`` syntax): ``RDT_FAULT=sim_kill@<trial>`` SIGKILLs
the worker, ``RDT_FAULT=sim_error@<trial>`` raises, at the first executed segment of that trial.
"""
from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import Any, Optional

import numpy as np

from policy.libero_mapping import ENV_IMAGE_KEYS, ENV_STATE_KEYS, flip_to_camera_view

VIDEO_FPS = 20


def slim_obs(obs: dict, images: bool = True, state: bool = True) -> dict:
    keys = (ENV_IMAGE_KEYS if images else ()) + (ENV_STATE_KEYS if state else ())
    return {k: np.asarray(obs[k]) for k in keys if k in obs}


def video_frame(obs: dict) -> np.ndarray:
    """agentview | eye-in-hand side by side, in the true camera view (rows flipped)."""
    return np.concatenate([flip_to_camera_view(np.asarray(obs[k], np.uint8)) for k in ENV_IMAGE_KEYS], axis=1)


def _maybe_fault(trial: int) -> None:
    if "RDT_FAULT" not in os.environ:
        return
    from utils.faults import armed

    if armed("sim_kill", trial):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    if armed("sim_error", trial):
        raise RuntimeError(f"injected simulator fault (RDT_FAULT sim_error@{trial})")


class _Sim:
    def __init__(self):
        self.env = None
        self.key: tuple | None = None
        self.writer = None
        self.video_tmp: str | None = None
        self.obs: dict | None = None
        self.steps = 0
        self.max_steps = 0
        self.stop_on_done = True
        self.done = False
        self.trial = -1
        self.goals: Optional[dict] = None
        self.unavailable: list[str] = []
        self.stop_goal: Optional[str] = None
        self.achieved: list[str] = []

    # ------------------------------------------------------------------ env lifetime
    def _env_for(self, suite: str, task_id: int, resolution: int):
        from libero_eval import env as lenv

        key = (suite, int(task_id), int(resolution))
        if self.env is None or self.key != key:
            self.close_env()
            self.env = lenv.make_env(suite, task_id, resolution=resolution, seed=None)
            self.key = key
        return self.env

    def close_env(self) -> None:
        from libero_eval import env as lenv

        self._close_writer(None)
        if self.env is not None:
            lenv.close_env(self.env)
        self.env, self.key = None, None

    def _close_writer(self, keep_as: str | None) -> str:
        if self.writer is None:
            return ""
        try:
            self.writer.close()
        finally:
            self.writer = None
        tmp, self.video_tmp = self.video_tmp, None
        if keep_as:
            os.replace(tmp, keep_as)
            return keep_as
        Path(tmp).unlink(missing_ok=True)
        return ""

    # ------------------------------------------------------------------ commands
    def start(self, job: dict) -> dict:
        from libero_eval import env as lenv

        self._close_writer(None)
        env = self._env_for(job["suite"], job["task_id"], job.get("resolution", lenv.DEFAULT_RESOLUTION))
        if job.get("seed") is not None:
            env.seed(int(job["seed"]))
        env.reset()
        obs = lenv.reset_to_state(env, job["init_state"], job.get("gripper_action", lenv.GRIPPER_OPEN))
        if job["settle_steps"] > 0:
            obs = lenv.settle(env, int(job["settle_steps"]))
        self.obs, self.steps, self.done = obs, 0, False
        self.trial = int(job.get("trial", -1))
        self.max_steps = int(job["max_steps"])
        self.stop_on_done = bool(job.get("stop_on_done", True))
        self._set_goals(job.get("goals"), job.get("stop_goal"))
        if job.get("video_tmp"):
            import imageio

            Path(job["video_tmp"]).parent.mkdir(parents=True, exist_ok=True)
            self.video_tmp = job["video_tmp"]
            self.writer = imageio.get_writer(self.video_tmp, format="FFMPEG", mode="I", fps=VIDEO_FPS,
                                             codec="libx264", quality=7, macro_block_size=16)
            self.writer.append_data(video_frame(obs))
        return {"obs": slim_obs(obs), "n_state": len(lenv.sim_state(env))}

    def _set_goals(self, goals: Optional[dict], stop_goal: Optional[str]) -> None:
        """Track other tasks' goals (``libero_eval.goals``); ``stop_goal``'s then replaces the env's ``done``."""
        from libero_eval import env as lenv
        from libero_eval.goals import missing_objects

        self.goals, self.stop_goal, self.achieved, self.unavailable = goals or None, stop_goal, [], []
        if self.goals is None:
            return
        if stop_goal not in self.goals:
            raise ValueError(f"stop_goal {stop_goal!r} is not one of the tracked goals {sorted(self.goals)}")
        missing = missing_objects(lenv.inner_env(self.env), self.goals)
        self.unavailable = sorted(missing)
        self.goals = {label: goal for label, goal in self.goals.items() if label not in missing}

    def _done_after_step(self, env_done: bool) -> bool:
        if self.goals is None:
            return env_done
        from libero_eval import env as lenv
        from libero_eval.goals import goals_holding

        self.achieved = goals_holding(lenv.inner_env(self.env), self.goals)
        return self.stop_goal in self.achieved

    def execute(self, req: dict) -> dict:
        from policy.libero_mapping import OscScale, decode_actions, pose_from_env_obs

        if self.env is None or self.obs is None:
            raise RuntimeError("exec before start")
        if self.steps == 0:
            _maybe_fault(self.trial)
        chunk = np.asarray(req["chunk"], np.float64)
        scale = req.get("scale") or OscScale()
        prev, obs = self.obs, self.obs
        eef, dones = [], []
        for vec in chunk:
            if self.steps >= self.max_steps or (self.done and self.stop_on_done):
                break
            action = decode_actions(vec, pose_from_env_obs(obs), req["encoding"], scale,
                                    binarize_gripper=True, clip=True)
            prev = obs
            obs, _, done, _ = self.env.step(action)
            done = self._done_after_step(bool(done))
            self.steps += 1
            self.done = self.done or bool(done)
            dones.append(bool(done))
            eef.append(np.asarray(obs["robot0_eef_pos"], np.float64))
            if self.writer is not None:
                self.writer.append_data(video_frame(obs))
        self.obs = obs
        return {"obs": slim_obs(obs), "prev_obs": slim_obs(prev, state=False), "done": self.done,
                "steps": self.steps, "eef": np.asarray(eef).reshape(-1, 3), "dones": dones,
                "achieved": list(self.achieved), "unavailable": list(self.unavailable)}

    def finish(self, req: dict) -> dict:
        return {"video": self._close_writer((req or {}).get("video_path"))}


def worker_main(conn, env_vars: dict[str, str] | None = None) -> None:
    """Entry point of a simulator process (``multiprocessing`` target)."""
    for k, v in (env_vars or {}).items():
        os.environ[k] = v
    os.environ.setdefault("MUJOCO_GL", "egl")
    import logging

    logging.basicConfig(level=logging.WARNING)
    try:  # import the simulator stack now, so the first trial does not pay for it
        from libero_eval import env as lenv

        lenv.libero_api()
        conn.send(("ok", {"pid": os.getpid()}))
    except Exception:
        conn.send(("error", traceback.format_exc(limit=8)))
        conn.close()
        return
    sim = _Sim()
    handlers: dict[str, Any] = {"start": sim.start, "exec": sim.execute, "finish": sim.finish}
    try:
        while True:
            try:
                cmd, payload = conn.recv()
            except (EOFError, OSError):  # the parent is gone
                break
            if cmd == "close":
                break
            try:
                reply = ("ok", handlers[cmd](payload))
            except Exception:
                reply = ("error", traceback.format_exc(limit=8))
                sim.close_env()  # a simulator that raised is not trusted for the next trial
            try:
                conn.send(reply)
            except (BrokenPipeError, OSError):
                break
    finally:
        sim.close_env()
        conn.close()


# ================================================================================================
# Parent side
# ================================================================================================
class SimulatorDied(RuntimeError):
    pass


class SimWorker:
    """Parent-side handle of one `libero_eval.sim_worker` process."""

    def __init__(self, ctx, index: int):
        self.index = index
        self.conn, child = ctx.Pipe()
        env_vars = {k: os.environ[k] for k in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "MUJOCO_EGL_DEVICE_ID")
                    if k in os.environ}
        self.proc = ctx.Process(target=worker_main, args=(child, env_vars), daemon=True, name=f"libero-sim-{index}")
        self.proc.start()
        child.close()
        self.ready = False

    def wait_ready(self, timeout: float) -> None:
        """Consume the worker's "simulator stack imported" message (once)."""
        if not self.ready:
            self.recv(timeout)
            self.ready = True

    def send(self, cmd: str, payload: Any) -> None:
        self.wait_ready(600.0)
        try:
            self.conn.send((cmd, payload))
        except (BrokenPipeError, OSError) as exc:
            raise SimulatorDied(f"simulator process {self.index} is gone ({exc})") from None

    def recv(self, timeout: float) -> Any:
        """The payload of an "ok" reply; RuntimeError with the worker's traceback on "error"."""
        try:
            if not self.conn.poll(timeout):
                raise SimulatorDied(f"simulator process {self.index} did not answer within {timeout:.0f} s (hung)")
            status, payload = self.conn.recv()
        except (EOFError, OSError):
            self.proc.join(timeout=5)
            raise SimulatorDied(f"simulator process {self.index} died (exit code {self.proc.exitcode})") from None
        if status != "ok":
            raise RuntimeError(f"simulator error:\n{payload}")
        return payload

    def alive(self) -> bool:
        return self.proc.is_alive()

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=10)
        self.conn.close()

    def close(self) -> None:
        try:
            self.conn.send(("close", None))
        except (BrokenPipeError, OSError):
            pass
        self.proc.join(timeout=30)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=10)
        self.conn.close()
