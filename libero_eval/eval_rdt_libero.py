"""Roll an RDT checkpoint out in the LIBERO simulator (standard protocol, receding horizon).

Protocol (FACTS §3, the OpenVLA / openpi conventions): trial i of a task starts from the task's
fixed init state ``init_states[i % 50]``; the env seed of the trial (``--seed + i``) is recorded;
``NUM_STEPS_WAIT = 10`` settle steps with the no-motion, gripper-open action; then up to the suite's
budget of policy steps (spatial 220, object 280, goal 300, libero_10 520, libero_90 400;
``--max_steps`` for short CI runs); success = the env's ``done``.

Receding horizon: the policy predicts 64 steps of 128-d actions, ``--exec_horizon`` of them
(default 16) are executed, then it re-plans from the new observation. Every executed step is
decoded against the CURRENT end-effector pose (``abs_goal``; ``delta`` needs no pose) with the
gripper binarised and the arm command clipped to [-1, 1]. ``--num_envs N`` runs N simulator
processes in lockstep with one batched policy call; a finished trial frees its slot for the next.

Outputs (``--out_root``, default ``outs``):
    eval_videos/<run>/<suite>_task<k>_trial<i>_<success|failure>.mp4   (--video all|failures|none)
    metrics/<run>/trials.csv    one row per trial, appended + fsynced when the trial ends; a rerun
                                with the same --run_name skips the trials already there
    metrics/<run>/summary.csv   per task: success rate, n, errors, latency; one mean row per suite
A simulator that raises or dies costs its trial only: the row says so in ``error``; such a trial counts
as a failure (as OpenVLA-OFT / openpi count it), and ``--retry_errors`` runs it again. Every row records
the run's settings (exec_horizon, max_steps, num_steps_wait, resolution, dtype, DPM steps, instruction);
``metrics/<run>/run.json`` holds them, and a rerun of a run with other settings is refused.

Usage::

    python -m libero_eval.eval_rdt_libero --checkpoint checkpoints/run/checkpoint-2000 \
        --suite libero_goal --task_ids 1 --num_trials 2 --exec_horizon 16 --num_envs 2 \
        --video failures --run_name goal_t1
    python -m libero_eval.eval_rdt_libero --run_name goal_all --summarize_only
    # pipeline check without a model: execute a demo file's actions through encode -> decode
    python -m libero_eval.eval_rdt_libero --policy replay --demo_file data/datasets/x/libero_goal/t_demo.hdf5
"""
from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from configs.errors import UserError
from configs.errors import exit_cli
from configs.suites import LIBERO_SUITES, UnknownSuiteError, check_suite
from libero_eval import env as lenv
from libero_eval.metrics import (
    REPLAY_FIELDS,
    append_row,
    check_columns,
    check_run_settings,
    latest_rows,
    metrics_dir,
    print_summary,
    read_rows,
    trial_key,
    videos_dir,
    write_csv_atomic,
    write_summary,
)
from libero_eval.versions import format_versions

log = logging.getLogger("eval_rdt_libero")

VIDEO_MODES = ("all", "failures", "none")
MAX_CHUNK = 64


class EvalInputError(UserError, ValueError):
    """Bad command-line input, found before any simulator starts."""


# ================================================================================================
# CLI
# ================================================================================================
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    a = ap.add_argument
    # --- what to evaluate
    a("--checkpoint", default=None, help="checkpoint-N folder, training run folder (newest complete checkpoint), "
      "LoRA adapter folder, or a weights file (DeepSpeed mp_rank_00_model_states.pt) with --config")
    a("--config", default=None, help="YAML config for checkpoints without train_config.json")
    a("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides (e.g. dataset.instruction_source=benchmark)")
    a("--ema", action="store_true", help="use the checkpoint's ema/ weights")
    a("--policy", choices=("rdt", "replay"), default="rdt",
      help="rdt: the checkpoint; replay: execute --demo_file's recorded actions through encode -> decode")
    a("--demo_file", default=None, help="LIBERO HDF5 file for --policy replay")
    a("--replay_encoding", choices=("abs_goal", "delta"), default="abs_goal", help="encoding used by --policy replay")
    a("--vision_encoder", default=None, help="override the SigLIP path of the checkpoint config")
    a("--text_encoder", default=None, help="override the T5 path of the checkpoint config")
    a("--lang_embed_dir", default=None, help="precomputed T5 embeddings (T5 is then loaded only on a miss)")
    a("--instruction_source", default=None, choices=("problem_info", "benchmark", "filename"),
      help="default: dataset.instruction_source of the checkpoint (must match training)")
    a("--device", default=None, help="cuda / cuda:1 / cpu (default: cuda when available)")
    a("--dtype", default=None, choices=("float32", "bfloat16", "float16"), help="default: bf16 on cuda, fp32 on cpu")
    a("--num_inference_steps", type=int, default=None, help="DPM-Solver steps (default: the checkpoint's, 5)")
    a("--torch_threads", type=int, default=None, help="CPU threads of the policy (default on cpu: cores minus "
      "--num_envs, at least 1; oversubscribed cores make torch's thread pool spin and run ~100x slower)")
    # --- protocol
    a("--suite", default="libero_goal", help=f"one of {', '.join(LIBERO_SUITES)}")
    a("--task_ids", type=int, nargs="*", default=None, help="task ids (default: all tasks of the suite)")
    a("--num_trials", type=int, default=None, help="trials per task (default 50); trial i starts from init state "
      "i %% 50. With --policy replay: replay the first N demos (default all)")
    a("--exec_horizon", type=int, default=16, help="actions executed per predicted chunk of 64 (1..64)")
    a("--max_steps", type=int, default=None, help="policy steps per episode (default: the suite's budget)")
    a("--num_steps_wait", type=int, default=lenv.NUM_STEPS_WAIT,
      help="no-motion steps after each reset so that dropped objects settle (protocol: 10)")
    a("--seed", type=int, default=7, help="trial i uses env seed / noise seed SEED + i")
    a("--resolution", type=int, default=None,
      help="camera resolution; default: the training data's (recorded in the checkpoint's train_config.json; "
           "128 for LIBERO raw data, 256 for OpenVLA no_noops data), else 128")
    a("--num_envs", type=int, default=1, help="simulator processes stepping in lockstep (batched inference)")
    # --- outputs
    a("--run_name", default=None, help="name of outs/metrics/<run> and outs/eval_videos/<run> (default: "
      "<checkpoint name>_<suite>)")
    a("--out_root", default="outs", help="root of metrics/ and eval_videos/")
    a("--video", choices=VIDEO_MODES, default="failures", help="which trials keep an mp4")
    a("--retry_errors", action="store_true", help="on resume, also rerun trials whose row has an error")
    a("--summarize_only", action="store_true", help="only rewrite summary.csv from trials.csv of --run_name")
    a("--resolve_only", action="store_true", help="print '<concrete checkpoint>\\t<run name>' for these flags and "
      "exit (eval_with_video_subEnv.sh resolves a run folder once, so every task uses the same checkpoint)")
    a("--step_timeout", type=float, default=600.0, help="seconds a simulator may take for one chunk before it "
      "is declared hung and restarted")
    a("--no_progress", action="store_true", help="no tqdm bar")
    return ap


# ================================================================================================
# Simulator processes
# ================================================================================================
class SimulatorDied(RuntimeError):
    pass


class SimWorker:
    """Parent-side handle of one `libero_eval.sim_worker` process."""

    def __init__(self, ctx, index: int):
        from libero_eval.sim_worker import worker_main

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


# ================================================================================================
# Jobs and planners
# ================================================================================================
@dataclass
class Job:
    suite: str
    task_id: int
    task_name: str
    trial: int
    init_state_idx: int
    seed: Optional[int]
    instruction: str
    init_state: np.ndarray
    max_steps: int
    settle_steps: int  # no-motion steps after the reset (protocol: lenv.NUM_STEPS_WAIT; replay: 0)
    stop_on_done: bool = True
    video_stem: str = ""
    demo: Any = None  # replay: the recorded demo


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
        chunks = self.policy.predict_chunk([a.obs for a in acts], [a.job.instruction for a in acts], slots)
        for a in acts:
            a.infer_ms.append(self.policy.last_infer_ms)
        return list(chunks)


# ================================================================================================
# The rollout loop
# ================================================================================================
def run_jobs(jobs: Sequence[Job], planner, num_envs: int, exec_horizon: int, video_mode: str, vdir: Path,
             on_result, step_timeout: float = 600.0, progress: bool = True, resolution: int = 128,
             stats: Optional[dict] = None) -> None:
    """Run `jobs` on `num_envs` simulator processes in lockstep; `on_result(job, active, video, error)`
    is called as each trial ends (success, budget spent, or simulator error). `stats` (optional) gets
    ``startup_s`` (starting the processes), ``loop_s`` (the rollouts, resets included) and its parts
    ``reset_s`` (env creation + reset + settle), ``plan_s`` (policy), ``exec_s`` (stepping)."""
    ctx = mp.get_context("spawn")
    n = max(1, min(num_envs, len(jobs)))
    t_start = time.perf_counter()
    workers: list[Optional[SimWorker]] = [SimWorker(ctx, i) for i in range(n)]
    try:
        for w in workers:
            w.wait_ready(step_timeout)
    except Exception:
        for w in workers:
            w.kill()
        raise
    t_ready = time.perf_counter()
    pending = deque(jobs)
    active: dict[int, Active] = {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="trials", unit="trial", dynamic_ncols=True)
    n_succ = 0

    def video_tmp(job: Job) -> Optional[str]:
        if video_mode == "none":
            return None
        return str(vdir / f"{job.video_stem}.partial.mp4")

    def fail(slot: int, job: Job, act: Optional[Active], exc: Exception) -> None:
        w = workers[slot]
        if isinstance(exc, SimulatorDied) or (w is not None and not w.alive()):
            if w is not None:
                w.kill()
            workers[slot] = SimWorker(ctx, slot)  # fresh simulator for the next trial
        if isinstance(exc, SimulatorDied):
            msg = f"simulator died: {exc}"
        else:  # the worker's traceback: keep its last line (the exception) in the CSV, all of it in the log
            lines = str(exc).strip().splitlines()
            msg = f"simulator error: {lines[-1] if lines else type(exc).__name__}"
        log.error("%s task %d trial %d: simulator failure: %s", job.suite, job.task_id, job.trial, exc)
        tmp = video_tmp(job)
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        on_result(job, act, "", msg)
        active.pop(slot, None)
        if bar is not None:
            bar.update(1)

    def finish(slot: int, act: Active) -> None:
        nonlocal n_succ
        job = act.job
        keep = video_mode == "all" or (video_mode == "failures" and not act.done)
        final = str(vdir / f"{job.video_stem}_{'success' if act.done else 'failure'}.mp4") if keep else None
        try:
            workers[slot].send("finish", {"video_path": final})
            video = workers[slot].recv(step_timeout)["video"]
        except Exception as exc:  # the trial itself is complete; only the video is lost
            log.error("video of %s lost: %s", job.video_stem, exc)
            video = ""
            if not workers[slot].alive():
                workers[slot].kill()
                workers[slot] = SimWorker(ctx, slot)
        n_succ += int(act.done)
        on_result(job, act, video, "")
        active.pop(slot, None)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(success=f"{n_succ}/{bar.n}")

    phase = {"reset_s": 0.0, "plan_s": 0.0, "exec_s": 0.0}
    try:
        while pending or active:
            # 1. fill free slots (resets run in parallel: send all, then collect)
            t_phase = time.perf_counter()
            starting = {}
            for slot in range(n):
                if slot not in active and pending:
                    job = pending.popleft()
                    try:
                        workers[slot].send("start", {
                            "suite": job.suite, "task_id": job.task_id, "init_state": job.init_state,
                            "seed": job.seed, "resolution": resolution, "settle_steps": job.settle_steps,
                            "max_steps": job.max_steps, "stop_on_done": job.stop_on_done, "trial": job.trial,
                            "video_tmp": video_tmp(job)})
                        starting[slot] = (job, time.perf_counter())
                    except Exception as exc:
                        fail(slot, job, None, exc)
            for slot, (job, t0) in starting.items():
                try:
                    reply = workers[slot].recv(step_timeout)
                except Exception as exc:
                    fail(slot, job, None, exc)
                    continue
                active[slot] = Active(job=job, t0=t0, obs=reply["obs"])
                planner.begin(slot, active[slot])
            t_plan = time.perf_counter()
            phase["reset_s"] += t_plan - t_phase
            if not active:
                continue
            # 2. one batched plan for every active env, 3. execute the segments in parallel
            slots = sorted(active)
            chunks = planner.plan(slots, [active[s] for s in slots])
            t_exec = time.perf_counter()
            phase["plan_s"] += t_exec - t_plan
            sent = []
            for slot, chunk in zip(slots, chunks):
                try:
                    workers[slot].send("exec", {"chunk": np.asarray(chunk[:exec_horizon], np.float32),
                                                "encoding": planner.encoding, "scale": planner.scale})
                    sent.append(slot)
                except Exception as exc:
                    fail(slot, active[slot].job, active[slot], exc)
            for slot in sent:
                act = active[slot]
                try:
                    r = workers[slot].recv(step_timeout)
                except Exception as exc:
                    fail(slot, act.job, act, exc)
                    continue
                act.obs, act.steps, act.done = r["obs"], int(r["steps"]), bool(r["done"])
                act.eef.extend(list(r["eef"]))
                act.dones.extend(r["dones"])
                planner.after_exec(slot, r["prev_obs"])
                executed = len(r["dones"])
                out_of_actions = executed == 0 and not act.done
                if (act.done and act.job.stop_on_done) or act.steps >= act.job.max_steps or out_of_actions:
                    finish(slot, act)
            phase["exec_s"] += time.perf_counter() - t_exec
    finally:
        if stats is not None:
            stats.update(startup_s=t_ready - t_start, loop_s=time.perf_counter() - t_ready, **phase)
        if bar is not None:
            bar.close()
        for w in workers:
            if w is not None:
                w.close()


def policy_threads(device: str, num_envs: int, requested: Optional[int] = None) -> int:
    """Torch CPU threads for the policy process: leave a core to each simulator process."""
    import torch

    if requested:
        return max(1, int(requested))
    if str(device).startswith("cuda"):
        return torch.get_num_threads()
    return max(1, (os.cpu_count() or 1) - int(num_envs))


# ================================================================================================
# Validation (before any simulator starts)
# ================================================================================================
def validate_common(args) -> None:
    if not 1 <= args.exec_horizon <= MAX_CHUNK:
        raise EvalInputError(f"--exec_horizon must be in 1..{MAX_CHUNK} (the model predicts {MAX_CHUNK}-step "
                             f"chunks), got {args.exec_horizon}")
    if args.num_envs < 1:
        raise EvalInputError(f"--num_envs must be >= 1, got {args.num_envs}")
    if args.num_trials is not None and args.num_trials < 1:
        raise EvalInputError(f"--num_trials must be >= 1, got {args.num_trials}")
    if args.max_steps is not None and args.max_steps < 1:
        raise EvalInputError(f"--max_steps must be >= 1, got {args.max_steps}")


def validate_tasks(args) -> tuple[Any, list[int]]:
    check_suite(args.suite, "--suite")
    try:
        suite = lenv.get_suite(args.suite)
    except ValueError as exc:
        raise EvalInputError(str(exc)) from None
    ids = list(range(suite.n_tasks)) if not args.task_ids else list(args.task_ids)
    bad = [t for t in ids if not 0 <= t < suite.n_tasks]
    if bad:
        raise EvalInputError(f"task id(s) {bad} out of range for {args.suite}: valid ids are 0..{suite.n_tasks - 1}")
    return suite, ids


def check_render(args) -> None:
    try:
        lenv.check_render_backend()
    except lenv.RenderBackendError as exc:
        raise EvalInputError(str(exc)) from None


# ================================================================================================
# Modes
# ================================================================================================
def task_prompt(data_info: dict, suite, task_id: int, task_name: str, source: str,
                explicit: Optional[str] = None) -> str:
    """The instruction to prompt with: the exact text training used for this task (stored in the
    checkpoint's train_config.json, whatever per-suite instruction_source made it), else the text
    ``source`` gives; an explicit ``--instruction_source`` wins."""
    trained = (data_info or {}).get("instructions") or {}
    if explicit is None and task_name in trained:
        return trained[task_name]
    return lenv.task_instruction(suite, task_id, source)


def default_run_name(checkpoint: str, suite: str, settings: dict) -> str:
    """``<checkpoint>_<suite>_h<exec_horizon>_s<seed>``, plus whatever differs from the protocol's
    defaults, so a rerun with other settings starts its own run instead of resuming another."""
    name = f"{Path(checkpoint.rstrip('/')).name}_{suite}_h{settings['exec_horizon']}_s{settings['seed']}"
    if settings["num_steps_wait"] != lenv.NUM_STEPS_WAIT:
        name += f"_wait{settings['num_steps_wait']}"
    if settings["max_steps"] != lenv.max_steps(suite):
        name += f"_max{settings['max_steps']}"
    return name


def evaluate(args) -> int:
    from libero_eval.policy import PolicyError, resolve_checkpoint

    validate_common(args)
    args.num_trials = args.num_trials or 50
    check_suite(args.suite, "--suite")
    if not args.checkpoint:
        raise EvalInputError("--checkpoint is required (or --policy replay --demo_file F, or --summarize_only)")
    try:
        ck = resolve_checkpoint(args.checkpoint, args.config, args.ema, args.set)
    except PolicyError as exc:
        raise EvalInputError(str(exc)) from None
    if args.resolution is None:
        args.resolution = ck.training_resolution() or lenv.DEFAULT_RESOLUTION
        log.info("camera resolution %d (%s)", args.resolution,
                 "as in training" if ck.training_resolution() else "default")
    suite, task_ids = validate_tasks(args)
    check_render(args)

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    checkpoint_id = str(Path(ck.weights).resolve())
    source = args.instruction_source or ck.config["dataset"]["instruction_source"]
    max_steps = args.max_steps or lenv.max_steps(suite)
    settings = {
        "checkpoint": checkpoint_id, "exec_horizon": args.exec_horizon, "max_steps": max_steps,
        "num_steps_wait": args.num_steps_wait, "resolution": args.resolution,
        "dtype": args.dtype or ("bfloat16" if device.startswith("cuda") else "float32"),
        "num_inference_steps": args.num_inference_steps or ck.config["model"]["noise_scheduler"]["num_inference_timesteps"],
        "instruction_source": source, "seed": args.seed,
    }
    run = args.run_name or default_run_name(ck.source, args.suite, settings)
    if args.resolve_only:
        print(f"{ck.concrete or ck.source}\t{run}")
        return 0
    mdir, vdir = metrics_dir(args.out_root, run), videos_dir(args.out_root, run)
    trials_csv = mdir / "trials.csv"
    existing = latest_rows(read_rows(trials_csv))
    others = {r["checkpoint"] for r in existing} - {checkpoint_id}
    if others:
        raise EvalInputError(f"run {run!r} ({trials_csv}) already holds results of another checkpoint "
                             f"({sorted(others)[0]}); use another --run_name")
    try:
        check_columns(trials_csv)
        check_run_settings(mdir, settings)
    except ValueError as exc:
        raise EvalInputError(str(exc)) from None
    done_keys = {trial_key(r) for r in existing if not (args.retry_errors and r.get("error"))}

    jobs: list[Job] = []
    for tid in task_ids:
        todo = [i for i in range(args.num_trials) if (args.suite, tid, i) not in done_keys]
        if not todo:
            continue
        task = lenv.get_task(suite, tid)
        init_states = lenv.get_task_init_states(suite, tid)
        instruction = task_prompt(ck.data_info, suite, tid, task.name, source, explicit=args.instruction_source)
        for i in todo:
            jobs.append(Job(suite=args.suite, task_id=tid, task_name=task.name, trial=i,
                            init_state_idx=i % len(init_states), seed=args.seed + i, instruction=instruction,
                            init_state=init_states[i % len(init_states)], max_steps=max_steps,
                            settle_steps=args.num_steps_wait, video_stem=f"{args.suite}_task{tid}_trial{i}"))
    skipped = len(task_ids) * args.num_trials - len(jobs)
    if skipped:
        log.info("resuming run %s: %d trial(s) already in %s are skipped", run, skipped, trials_csv)
    if jobs:
        from libero_eval.policy import RDTPolicy
        from models.loading import CheckpointError

        threads_before = torch.get_num_threads()
        torch.set_num_threads(policy_threads(device, args.num_envs, args.torch_threads))
        try:
            policy = RDTPolicy.from_checkpoint(ck.weights, device, vision_encoder=args.vision_encoder,
                                               text_encoder=args.text_encoder, lang_embed_dir=args.lang_embed_dir,
                                               dtype=settings["dtype"],
                                               num_inference_steps=settings["num_inference_steps"],
                                               resolved=ck)
        except (PolicyError, CheckpointError, OSError) as exc:
            raise EvalInputError(str(exc)) from None
        log.info("policy: %s (encoding %s, instruction source %s) on %s; %d trial(s), %d env(s), exec_horizon %d",
                 checkpoint_id, policy.action_encoding, source, device, len(jobs), args.num_envs, args.exec_horizon)

        stack = format_versions()  # mujoco / robosuite / LIBERO / numpy / torch versions, in every row

        def on_result(job: Job, act: Optional[Active], video: str, error: str) -> None:
            append_row(trials_csv, {
                "suite": job.suite, "task_id": job.task_id, "task_name": job.task_name, "trial": job.trial,
                "init_state_idx": job.init_state_idx, "seed": job.seed,
                "success": int(bool(act and act.done and not error)),
                "steps": act.steps if act else 0,
                "wall_time_s": f"{time.perf_counter() - act.t0:.2f}" if act else "",
                "mean_infer_ms": f"{np.mean(act.infer_ms):.2f}" if act and act.infer_ms else "",
                **{**settings, "seed": job.seed}, "instruction": job.instruction, "sim_stack": stack,
                "video": video, "error": error,
            })

        try:
            policy.prepare_instructions(sorted({j.instruction for j in jobs}))  # T5 once per task, then freed
            policy.warmup(jobs[0].instruction, args.resolution)  # first-call overheads stay out of the latency numbers
            run_jobs(jobs, ModelPlanner(policy, args.num_envs), args.num_envs, args.exec_horizon, args.video, vdir,
                     on_result, args.step_timeout, not args.no_progress, args.resolution)
        finally:
            torch.set_num_threads(threads_before)  # main() may run inside another program (tests)
    summary = write_summary(mdir)
    print_summary(summary)
    print(f"trials: {trials_csv}\nsummary: {mdir / 'summary.csv'}")
    return 0


def replay(args) -> int:
    from data import libero_hdf5 as lh5
    from libero_eval.replay import ReplayDemo, ReplayPlanner, load_replay_demos, max_dev_mm, recorded_after

    validate_common(args)
    if not args.demo_file:
        raise EvalInputError("--policy replay needs --demo_file")
    path = Path(args.demo_file)
    if not path.is_file():
        raise EvalInputError(f"--demo_file {path}: file not found")
    try:
        suite, task_id, demos, starts = load_replay_demos(path, args.num_trials)
    except (lh5.LiberoDataError, ValueError) as exc:
        raise EvalInputError(str(exc)) from None
    check_render(args)
    run = args.run_name or f"replay_{path.stem}"
    mdir, vdir = metrics_dir(args.out_root, run), videos_dir(args.out_root, run)
    task_name = lenv.get_task(suite, task_id).name
    with lh5.open_file(path) as f:
        resolution = int(f[f"data/{demos[0].key}/{lh5.IMAGE_KEYS[0]}"].shape[1])
    jobs = [Job(suite=suite, task_id=task_id, task_name=task_name, trial=i, init_state_idx=-1, seed=None,
                instruction="", init_state=starts[d.key], max_steps=len(d.actions), settle_steps=0,
                stop_on_done=False, video_stem=f"replay_{suite}_task{task_id}_{d.key}", demo=d)
            for i, d in enumerate(demos)]
    rows: list[dict] = []

    def on_result(job: Job, act: Optional[Active], video: str, error: str) -> None:
        d: ReplayDemo = job.demo
        row = {"file": d.file, "demo": d.key, "steps": act.steps if act else 0, "video": video, "error": error,
               "demo_success": int(d.expected_success)}
        if act is not None and act.eef and not error:
            ref = recorded_after(d.ee_pos, d.layout)[: len(act.eef)]
            dev = np.linalg.norm(np.asarray(act.eef) - ref, axis=-1) * 1000.0
            env_success = bool(act.dones[-1]) if act.dones else False
            row.update(max_eef_dev_mm=f"{max_dev_mm(act.eef, ref):.3f}", mean_eef_dev_mm=f"{np.nanmean(dev):.3f}",
                       env_success=int(env_success), env_success_any=int(any(act.dones)),
                       success_match=int(env_success == d.expected_success))
        rows.append(row)

    run_jobs(jobs, ReplayPlanner(args.replay_encoding), args.num_envs, args.exec_horizon, args.video, vdir,
             on_result, args.step_timeout, not args.no_progress, resolution)
    rows.sort(key=lambda r: int(r["demo"].rsplit("_", 1)[-1]))
    write_csv_atomic(mdir / "replay.csv", rows, REPLAY_FIELDS)
    print(f"{'demo':<8} {'steps':>5} {'max dev mm':>10} {'mean dev mm':>11} {'env succ':>8} {'demo succ':>9} {'match':>5}")
    for r in rows:
        print(f"{r['demo']:<8} {r['steps']:>5} {r.get('max_eef_dev_mm', ''):>10} {r.get('mean_eef_dev_mm', ''):>11} "
              f"{str(r.get('env_success', '')):>8} {r['demo_success']:>9} {str(r.get('success_match', '')):>5}"
              f"{'  ERROR ' + r['error'] if r['error'] else ''}")
    print(f"replay: {mdir / 'replay.csv'}")
    bad = [r for r in rows if r["error"]]
    return 1 if bad else 0


def summarize_only(args) -> int:
    if not args.run_name:
        raise EvalInputError("--summarize_only needs --run_name")
    mdir = metrics_dir(args.out_root, args.run_name)
    if not (mdir / "trials.csv").is_file():
        raise EvalInputError(f"no trials.csv in {mdir}")
    summary = write_summary(mdir)
    print_summary(summary)
    print(f"summary: {mdir / 'summary.csv'}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        if args.summarize_only:
            return summarize_only(args)
        if args.policy == "replay":
            return replay(args)
        return evaluate(args)
    except (EvalInputError, UnknownSuiteError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    exit_cli(main)
