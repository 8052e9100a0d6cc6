"""The rollout runner: trials (``Job``) on N simulator processes, chunks from a planner, results out.

diffusion_policy's env-runner idea: the runner knows nothing about checkpoints, CSVs or the CLI.
``run_jobs(jobs, planner, ...)`` keeps ``num_envs`` simulators (``libero_eval.sim_worker``) busy:
free slots start the next trial, ``planner.plan`` serves the simulators that wait for actions in one
batch, the first ``exec_horizon`` actions of each chunk execute in the simulator processes, and a
trial ends on success, on its step budget or on a simulator failure (the slot gets a fresh process;
the failure is the trial's result, not the run's). Two schedules: ``independent`` (default; each slot
on its own clock, see ``IndependentRunner``) and ``lockstep`` (every round waits for every slot).

A planner has ``encoding`` / ``scale`` (how the simulator decodes the 128-d vectors) and
``begin(slot, active)``, ``plan(slots, actives) -> chunks``, ``after_exec(slot, prev_obs)``:
``ModelPlanner`` wraps the RDT policy, ``libero_eval.replay.ReplayPlanner`` replays demos.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from libero_eval import env as lenv
from libero_eval.sim_worker import SimulatorDied, SimWorker

log = logging.getLogger("eval_rdt_libero")


@dataclass
class Job:
    suite: str
    task_id: int
    task_name: str
    trial: int
    init_state_idx: int
    seed: Optional[int]  # env / noise seed of the trial (eval_seed + trial)
    instruction: str
    init_state: np.ndarray
    max_steps: int
    settle_steps: int  # no-motion steps after the reset (protocol: lenv.NUM_STEPS_WAIT; replay: 0)
    stop_on_done: bool = True
    video_stem: str = ""
    demo: Any = None  # replay: the recorded demo
    eval_seed: Optional[int] = None  # the evaluation seed this trial belongs to
    # instruction swap (libero_eval.instruction_swap): {task name: goal predicates} evaluated after every
    # step, and the one whose goal ends the trial (instead of the env's own task's ``done``)
    goals: Optional[dict] = None
    stop_goal: Optional[str] = None


@dataclass
class Active:
    job: Job
    t0: float
    obs: dict
    steps: int = 0
    done: bool = False
    infer_ms: list = field(default_factory=list)
    eef: list = field(default_factory=list)
    dones: list = field(default_factory=list)
    achieved: list = field(default_factory=list)  # the labels of ``job.goals`` holding after the last step
    unavailable: list = field(default_factory=list)  # those naming an object the scene lacks (never evaluated)


class ModelPlanner:
    """Chunks from the RDT policy: one batched forward over all active environments."""

    scale = None

    def __init__(self, policy, num_slots: int):
        self.policy = policy
        self.encoding = policy.action_encoding
        policy.reset(num_slots)

    def begin(self, slot: int, act: Active) -> None:
        self.policy.start_episode(slot, seed=act.job.seed)

    def after_exec(self, slot: int, prev_obs: dict) -> None:
        self.policy.observe(slot, prev_obs)  # the t-1 frame of the next plan

    def plan(self, slots: Sequence[int], acts: Sequence[Active]) -> list[np.ndarray]:
        chunks = self.policy.predict_action([a.obs for a in acts], [a.job.instruction for a in acts], slots)
        for a in acts:
            a.infer_ms.append(self.policy.last_infer_ms)
        return list(chunks)


def policy_threads(device: str, num_envs: int, requested: Optional[int] = None) -> int:
    """Torch CPU threads for the policy process: leave a core to each simulator process."""
    import torch

    if requested:
        return max(1, int(requested))
    if str(device).startswith("cuda"):
        return torch.get_num_threads()
    return max(1, (os.cpu_count() or 1) - int(num_envs))


OnResult = Callable[[Job, Optional[Active], str, str], None]


class LockstepRunner:
    """One call of ``run_jobs``: the simulator slots, the queue and the trials in flight."""

    def __init__(self, jobs: Sequence[Job], planner, num_envs: int, exec_horizon: int, video_mode: str,
                 vdir: Path, on_result: OnResult, step_timeout: float, resolution: int):
        self.planner, self.exec_horizon, self.video_mode, self.vdir = planner, exec_horizon, video_mode, vdir
        self.on_result, self.step_timeout, self.resolution = on_result, step_timeout, resolution
        self.ctx = mp.get_context("spawn")
        self.n = max(1, min(num_envs, len(jobs)))
        self.pending = deque(jobs)
        self.active: dict[int, Active] = {}
        self.workers: list[Optional[SimWorker]] = []
        self.bar = None
        self.n_succ = 0
        self.phase = {"reset_s": 0.0, "plan_s": 0.0, "exec_s": 0.0}

    # ---------------------------------------------------------------- processes
    def start_workers(self) -> None:
        self.workers = [SimWorker(self.ctx, i) for i in range(self.n)]
        try:
            for w in self.workers:
                w.wait_ready(self.step_timeout)
        except Exception:
            for w in self.workers:
                w.kill()
            raise

    def replace_worker(self, slot: int) -> None:
        w = self.workers[slot]
        if w is not None:
            w.kill()
        self.workers[slot] = SimWorker(self.ctx, slot)  # fresh simulator for the next trial

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        for w in self.workers:
            if w is not None:
                w.close()

    # ---------------------------------------------------------------- requests
    def send_start(self, slot: int, job: Job) -> None:
        self.workers[slot].send("start", {
            "suite": job.suite, "task_id": job.task_id, "init_state": job.init_state, "seed": job.seed,
            "resolution": self.resolution, "settle_steps": job.settle_steps, "max_steps": job.max_steps,
            "stop_on_done": job.stop_on_done, "trial": job.trial, "video_tmp": self.video_tmp(job),
            "goals": job.goals, "stop_goal": job.stop_goal})

    def send_exec(self, slot: int, chunk: np.ndarray) -> None:
        self.workers[slot].send("exec", {"chunk": np.asarray(chunk[: self.exec_horizon], np.float32),
                                         "encoding": self.planner.encoding, "scale": self.planner.scale})

    def open_bar(self, progress: bool) -> None:
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=len(self.pending), desc="trials", unit="trial", dynamic_ncols=True)

    # ---------------------------------------------------------------- trial ends
    def video_tmp(self, job: Job) -> Optional[str]:
        return None if self.video_mode == "none" else str(self.vdir / f"{job.video_stem}.partial.mp4")

    def fail(self, slot: int, job: Job, act: Optional[Active], exc: Exception) -> None:
        """A simulator failure ends its trial (recorded with the error) and costs the slot its process."""
        w = self.workers[slot]
        if isinstance(exc, SimulatorDied) or (w is not None and not w.alive()):
            self.replace_worker(slot)
        if isinstance(exc, SimulatorDied):
            msg = f"simulator died: {exc}"
        else:  # the worker's traceback: keep its last line (the exception) in the CSV, all of it in the log
            lines = str(exc).strip().splitlines()
            msg = f"simulator error: {lines[-1] if lines else type(exc).__name__}"
        log.error("%s task %d trial %d: simulator failure: %s", job.suite, job.task_id, job.trial, exc)
        tmp = self.video_tmp(job)
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        self.on_result(job, act, "", msg)
        self.active.pop(slot, None)
        if self.bar is not None:
            self.bar.update(1)

    def finish(self, slot: int, act: Active) -> None:
        job = act.job
        keep = self.video_mode == "all" or (self.video_mode == "failures" and not act.done)
        final = str(self.vdir / f"{job.video_stem}_{'success' if act.done else 'failure'}.mp4") if keep else None
        try:
            self.workers[slot].send("finish", {"video_path": final})
            video = self.workers[slot].recv(self.step_timeout)["video"]
        except Exception as exc:  # the trial itself is complete; only the video is lost
            log.error("video of %s lost: %s", job.video_stem, exc)
            video = ""
            if not self.workers[slot].alive():
                self.replace_worker(slot)
        self.n_succ += int(act.done)
        self.on_result(job, act, video, "")
        self.active.pop(slot, None)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(success=f"{self.n_succ}/{self.bar.n}")

    # ---------------------------------------------------------------- one lockstep round
    def fill_free_slots(self) -> None:
        """Start the next trials in the free slots: send every reset, then collect the replies."""
        starting = {}
        for slot in range(self.n):
            if slot not in self.active and self.pending:
                job = self.pending.popleft()
                try:
                    self.send_start(slot, job)
                    starting[slot] = (job, time.perf_counter())
                except Exception as exc:
                    self.fail(slot, job, None, exc)
        for slot, (job, t0) in starting.items():
            try:
                reply = self.workers[slot].recv(self.step_timeout)
            except Exception as exc:
                self.fail(slot, job, None, exc)
                continue
            self.active[slot] = Active(job=job, t0=t0, obs=reply["obs"])
            self.planner.begin(slot, self.active[slot])

    def execute(self, slots: Sequence[int], chunks: Sequence[np.ndarray]) -> None:
        """Send each slot its segment, then collect: the simulators step in parallel."""
        sent = []
        for slot, chunk in zip(slots, chunks):
            try:
                self.send_exec(slot, chunk)
                sent.append(slot)
            except Exception as exc:
                self.fail(slot, self.active[slot].job, self.active[slot], exc)
        for slot in sent:
            act = self.active[slot]
            try:
                r = self.workers[slot].recv(self.step_timeout)
            except Exception as exc:
                self.fail(slot, act.job, act, exc)
                continue
            self.absorb(slot, r)

    def absorb(self, slot: int, r: dict) -> bool:
        """Take an executed segment's reply into the slot's trial; True when the trial is over."""
        act = self.active[slot]
        act.obs, act.steps, act.done = r["obs"], int(r["steps"]), bool(r["done"])
        act.eef.extend(list(r["eef"]))
        act.dones.extend(r["dones"])
        act.achieved = list(r.get("achieved", ()))
        act.unavailable = list(r.get("unavailable", ()))
        self.planner.after_exec(slot, r["prev_obs"])
        out_of_actions = len(r["dones"]) == 0 and not act.done
        if (act.done and act.job.stop_on_done) or act.steps >= act.job.max_steps or out_of_actions:
            self.finish(slot, act)
            return True
        return False

    def run(self, progress: bool) -> None:
        self.open_bar(progress)
        while self.pending or self.active:
            t_reset = time.perf_counter()
            self.fill_free_slots()
            t_plan = time.perf_counter()
            self.phase["reset_s"] += t_plan - t_reset
            if not self.active:
                continue
            slots = sorted(self.active)
            chunks = self.planner.plan(slots, [self.active[s] for s in slots])
            t_exec = time.perf_counter()
            self.phase["plan_s"] += t_exec - t_plan
            self.execute(slots, chunks)
            self.phase["exec_s"] += time.perf_counter() - t_exec


class IndependentRunner(LockstepRunner):
    """Every slot on its own clock: a slot whose simulator is resetting or still stepping does not hold
    the others back. Whatever observations have arrived are planned in one batch, then the loop waits
    for the next replies (``multiprocessing.connection.wait`` over the pipes). Each trial's noise
    comes from its own generator, so a trial's actions do not depend on which others share its batch."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.waiting: dict[int, tuple[str, float, Job]] = {}  # slot -> (request, sent at, job)
        self.ready: list[int] = []
        self.phase = {"plan_s": 0.0, "wait_s": 0.0}

    def fail(self, slot: int, job: Job, act: Optional[Active], exc: Exception) -> None:
        self.waiting.pop(slot, None)
        if slot in self.ready:
            self.ready.remove(slot)
        super().fail(slot, job, act, exc)

    def start_next(self, slot: int) -> None:
        job = self.pending.popleft()
        try:
            self.send_start(slot, job)
            self.waiting[slot] = ("start", time.perf_counter(), job)
        except Exception as exc:
            self.fail(slot, job, None, exc)

    def on_reply(self, slot: int) -> None:
        kind, sent_at, job = self.waiting.pop(slot)
        try:
            reply = self.workers[slot].recv(self.step_timeout)
        except Exception as exc:
            self.fail(slot, job, self.active.get(slot), exc)
            return
        if kind == "start":
            self.active[slot] = Active(job=job, t0=sent_at, obs=reply["obs"])
            self.planner.begin(slot, self.active[slot])
            self.ready.append(slot)
        elif not self.absorb(slot, reply):
            self.ready.append(slot)

    def wait_for_replies(self) -> None:
        """Block until at least one simulator answers (or the oldest request times out: hung)."""
        from multiprocessing.connection import wait

        conns = {self.workers[s].conn: s for s in self.waiting}
        oldest = min(self.waiting, key=lambda s: self.waiting[s][1])
        timeout = max(0.0, self.waiting[oldest][1] + self.step_timeout - time.perf_counter())
        got = wait(list(conns), timeout)
        if not got:
            kind, _, job = self.waiting[oldest]
            self.fail(oldest, job, self.active.get(oldest), SimulatorDied(
                f"simulator process {oldest} did not answer within {self.step_timeout:.0f} s (hung)"))
            return
        for conn in got:
            self.on_reply(conns[conn])

    def plan_ready(self) -> None:
        slots, self.ready = sorted(self.ready), []
        t0 = time.perf_counter()
        chunks = self.planner.plan(slots, [self.active[s] for s in slots])
        self.phase["plan_s"] += time.perf_counter() - t0
        for slot, chunk in zip(slots, chunks):
            try:
                self.send_exec(slot, chunk)
                self.waiting[slot] = ("exec", time.perf_counter(), self.active[slot].job)
            except Exception as exc:
                self.fail(slot, self.active[slot].job, self.active[slot], exc)

    def run(self, progress: bool) -> None:
        self.open_bar(progress)
        while self.pending or self.active or self.waiting:
            for slot in range(self.n):
                if slot not in self.active and slot not in self.waiting and self.pending:
                    self.start_next(slot)
            if not self.ready and self.waiting:
                t0 = time.perf_counter()
                self.wait_for_replies()
                self.phase["wait_s"] += time.perf_counter() - t0
            if self.ready:
                self.plan_ready()


RUNNERS = {"lockstep": LockstepRunner, "independent": IndependentRunner}


def run_jobs(jobs: Sequence[Job], planner, num_envs: int, exec_horizon: int, video_mode: str, vdir: Path,
             on_result: OnResult, step_timeout: float = 600.0, progress: bool = True,
             resolution: int = lenv.DEFAULT_RESOLUTION, stats: Optional[dict] = None,
             slots: str = "independent") -> None:
    """Run `jobs` on `num_envs` simulator processes; `on_result(job, active, video, error)` is called as
    each trial ends (success, budget spent, or simulator error). ``slots``: ``independent`` (a slot that
    resets or steps does not hold the others; batches whatever is ready) or ``lockstep`` (every round
    waits for all slots). `stats` (optional) gets ``startup_s`` (starting the processes), ``loop_s``
    (the rollouts, resets included) and its parts ``reset_s`` / ``plan_s`` / ``exec_s`` (lockstep) or
    ``plan_s`` / ``wait_s`` (independent)."""
    runner = RUNNERS[slots](jobs, planner, num_envs, exec_horizon, video_mode, vdir, on_result, step_timeout,
                            resolution)
    t_start = time.perf_counter()
    runner.start_workers()
    t_ready = time.perf_counter()
    try:
        runner.run(progress)
    finally:
        if stats is not None:
            stats.update(startup_s=t_ready - t_start, loop_s=time.perf_counter() - t_ready, **runner.phase)
        runner.close()
