"""Roll an RDT checkpoint out in the LIBERO simulator (standard protocol, receding horizon).

Protocol (the conventions of OpenVLA's ``experiments/robot/libero/run_libero_eval.py`` and openpi's
``examples/libero/main.py``): trial i of a task starts from the task's
fixed init state ``init_states[i % 50]``; the env seed of the trial (``--seed + i``) is recorded;
``NUM_STEPS_WAIT = 10`` settle steps with the no-motion, gripper-open action; then up to the suite's
budget of policy steps (spatial 220, object 280, goal 300, libero_10 520, libero_90 400;
``--max_steps`` for short CI runs); success = the env's ``done``.

Receding horizon: the policy predicts 64 steps of 128-d actions, ``--exec_horizon`` of them
(default 16) are executed, then it re-plans from the new observation. Every executed step is
decoded against the CURRENT end-effector pose (``abs_goal``; ``delta`` needs no pose) with the
gripper binarised and the arm command clipped to [-1, 1]. ``--num_envs N`` runs N simulator
processes; the observations that are waiting for actions go through one batched policy call
(``--slots independent``, default: a resetting simulator does not hold the others back; ``lockstep``:
every round waits for all); a finished trial frees its slot for the next. ``--suites`` and
``--seeds`` take several values: one run, one summary with 95% intervals, one report.

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
import contextlib
import logging
import re
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from configs.errors import exit_cli, output_dir, run_cli
from configs.schema import EVAL_DTYPES, SLOT_SCHEDULES, VIDEO_MODES, ConfigError, EvalConfig
from configs.suites import LIBERO_PRO_SUITES, LIBERO_SUITES
from libero_eval import env as lenv
from libero_eval.metrics import (
    RunBusyError,
    append_row,
    check_columns,
    check_run_settings,
    claim_task,
    record_run_settings,
    run_lock,
    latest_rows,
    metrics_dir,
    print_robustness,
    print_stack_status,
    print_summary,
    read_rows,
    trial_key,
    videos_dir,
    write_summary,
)
from libero_eval.replay import replay
from libero_eval.report import write_report
from libero_eval.runner import Active, Job, ModelPlanner, policy_threads, run_jobs
from libero_eval.settings import EvalInputError, EvalRequest, check_render
from libero_eval.versions import format_versions, premise_failures_in, stack_status

log = logging.getLogger("eval_rdt_libero")

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
    a("--dtype", default=None, choices=EVAL_DTYPES, help="default: bf16 on cuda, fp32 on cpu")
    a("--compile", action="store_const", const=True, default=None,
      help="torch.compile the diffusion network for sampling (eval.compile; inductor with frozen weights)")
    a("--num_inference_steps", type=int, default=None, help="DPM-Solver steps (default: the checkpoint's, 5)")
    a("--torch_threads", type=int, default=None, help="CPU threads of the policy (default on cpu: cores minus "
      "--num_envs, at least 1; oversubscribed cores make torch's thread pool spin and run ~100x slower)")
    # --- protocol
    a("--suites", "--suite", dest="suites", nargs="+", default=["libero_goal"],
      help=f"one or more of {', '.join(LIBERO_SUITES)} or a LIBERO-PRO suite (configs/suites.py, e.g. "
           f"libero_goal_lan): one run, one summary")
    a("--robustness", action="store_true", help="also every LIBERO-PRO perturbation of each standard suite "
      "given; the summary and the report then hold a robustness table (standard next to each perturbation)")
    a("--task_ids", type=int, nargs="*", default=None, help="task ids of every suite (default: all tasks)")
    a("--seeds", type=int, nargs="+", default=None,
      help="evaluation seeds (the published protocol: 0 1 2); default: --seed / eval.seed")
    a("--num_trials", type=int, default=None, help="trials per task (default eval.num_trials, 50); trial i starts from init state "
      "i %% 50. With --policy replay: replay the first N demos (default all)")
    a("--exec_horizon", type=int, default=None, help="actions executed per predicted chunk of 64 (1..64; default 16)")
    a("--max_steps", type=int, default=None, help="policy steps per episode (default: the suite's budget)")
    a("--num_steps_wait", type=int, default=None,
      help="no-motion steps after each reset so that dropped objects settle (protocol: 10)")
    a("--seed", type=int, default=None, help="trial i uses env seed / noise seed SEED + i (default 7)")
    a("--resolution", type=int, default=None,
      help="camera resolution; default: the training data's (recorded in the checkpoint's train_config.json; "
           "128 for LIBERO raw data, 256 for OpenVLA no_noops data), else 128")
    a("--num_envs", type=int, default=None, help="simulator processes (batched inference; default 1)")
    a("--slots", choices=SLOT_SCHEDULES, default=None,
      help="independent (default): each simulator on its own clock; lockstep: every round waits for all")
    # --- outputs
    a("--run_name", default=None, help="name of outs/metrics/<run> and outs/eval_videos/<run> (default: "
      "[<training run>_]<checkpoint name>_<suites>_h<exec_horizon>_s<seeds>, then every other setting given)")
    a("--out_root", default="outs", help="root of metrics/ and eval_videos/")
    a("--video", choices=VIDEO_MODES, default=None, help="which trials keep an mp4 (default failures)")
    a("--wandb", nargs="?", const="rdt-libero-eval", default=None, metavar="PROJECT",
      help="also log the success rates, the report figure and videos to W&B (offline without an API key)")
    a("--retry_errors", action="store_true", help="on resume, also rerun trials whose row has an error")
    a("--summarize_only", action="store_true", help="only rewrite summary.csv from trials.csv of --run_name")
    a("--resolve_only", action="store_true", help="print '<concrete checkpoint>\\t<run name>' for these flags and "
      "exit (eval_with_video_subEnv.sh resolves a run folder once, so every task uses the same checkpoint)")
    a("--step_timeout", type=float, default=None, help="seconds a simulator may take for one chunk before it "
      "is declared hung and restarted")
    a("--no_progress", action="store_true", help="no tqdm bar")
    a("--instruction_swap", action="store_true", help="the instruction-swap diagnostic instead of the protocol: "
      "every pair (X, Y) of --task_ids (one suite whose tasks share a scene, e.g. libero_goal) runs X's init "
      "states prompted with Y's instruction; writes swap_trials.csv, swap_matrix.csv and swap_matrix.png "
      "(libero_eval/instruction_swap.py)")
    a("--require_verified_stack", action="store_true", help="refuse to run on a simulator stack whose LIBERO init "
      "states were not verified (libero_eval/versions.py, docs/SIM_STACK.md) instead of warning")
    return ap


# ================================================================================================
# Validation (before any simulator starts; the flags themselves: EvalRequest, settings.py)
# ================================================================================================
def validate_tasks(request: EvalRequest) -> dict[str, tuple[Any, list[int]]]:
    """{suite name: (benchmark suite, task ids)} for every ``--suites`` entry (names already
    checked by ``EvalRequest``, before the checkpoint loads)."""
    out = {}
    for name in request.suites:
        try:
            suite = lenv.get_suite(name)
        except ValueError as exc:
            raise EvalInputError(str(exc)) from None
        ids = list(range(suite.n_tasks)) if not request.task_ids else list(request.task_ids)
        bad = [t for t in ids if not 0 <= t < suite.n_tasks]
        if bad:
            raise EvalInputError(f"task id(s) {bad} out of range for {name}: valid ids are 0..{suite.n_tasks - 1}")
        out[name] = (suite, ids)
    return out


# ================================================================================================
# Modes
# ================================================================================================
def task_prompt(data_info: dict, suite, task_id: int, task_name: str, source: str,
                explicit: Optional[str] = None) -> str:
    """The instruction to prompt with: the exact text training used for this task (stored in the
    checkpoint's train_config.json, whatever per-suite instruction_source made it), else the text
    ``source`` gives; an explicit ``--instruction_source`` wins."""
    if lenv.suite_name(suite) in LIBERO_PRO_SUITES:
        # A perturbed suite's own text (a paraphrase, another task) is only in its bddl file; its task
        # names repeat the standard ones, so the trained text of that name would undo the perturbation.
        return lenv.task_instruction(suite, task_id, "problem_info")
    trained = (data_info or {}).get("instructions") or {}
    if explicit is None and task_name in trained:
        return trained[task_name]
    return lenv.task_instruction(suite, task_id, source)


def default_run_name(checkpoint: str, suites: Sequence[str], settings: dict, seeds: Sequence[int],
                     given: Optional[dict] = None) -> str:
    """``[<run>_]<checkpoint>_<suites>_h<exec_horizon>_s<seeds>``, plus whatever differs from the
    protocol's defaults and every setting ``given`` explicitly (``num_inference_steps``, ``resolution``,
    ``dtype``, ``instruction_source``, ``ema``), so a rerun with other settings starts its own run
    instead of being refused by another. A ``checkpoint-N`` folder is named with its training run's
    folder, so step N of two runs do not share a name."""
    path = Path(checkpoint.rstrip("/"))
    stem = f"{path.parent.name}_{path.name}" if re.match(r"^checkpoint-\d+$", path.name) and path.parent.name \
        else path.name
    name = f"{stem}_{'+'.join(suites)}_h{settings['exec_horizon']}_s{'-'.join(str(s) for s in seeds)}"
    if settings["num_steps_wait"] != lenv.NUM_STEPS_WAIT:
        name += f"_wait{settings['num_steps_wait']}"
    if settings["max_steps"] is not None:
        name += f"_max{settings['max_steps']}"
    tags = {"num_inference_steps": "dpm{}", "resolution": "r{}", "dtype": "{}", "instruction_source": "{}",
            "ema": "ema"}
    for key, tag in tags.items():
        value = (given or {}).get(key)
        if value not in (None, False):
            name += "_" + tag.format(value)
    return name


def check_stack(request: EvalRequest, tasks: dict) -> dict:
    """The installed simulator stack's verification status: warned about, or refused with
    ``--require_verified_stack``; tasks whose init-state premise is known to fail under it are named."""
    status = stack_status()
    if not status["verified"]:
        if request.require_verified_stack:
            raise EvalInputError(f"--require_verified_stack: {status['warning']}")
        log.warning("%s", status["warning"])
    broken = premise_failures_in(status, [(name, t) for name, (_, ids) in tasks.items() for t in ids])
    if broken:
        log.warning("under this stack the starting scene of %s is not LIBERO's (an init-state premise fails or "
                    "objects settle elsewhere; python -m libero_eval.check_init_states)", ", ".join(f"{s} task {t}" for s, t in broken))
    return status


def open_checkpoint(request: EvalRequest):
    """The resolved checkpoint (weights + typed config) of ``--checkpoint``, or a one-line error."""
    from policy.checkpoints import PolicyError, resolve_checkpoint

    if not request.checkpoint:
        raise EvalInputError("--checkpoint is required (or --policy replay --demo_file F, or --summarize_only)")
    try:
        return resolve_checkpoint(request.checkpoint, request.config, request.ema, list(request.overrides))
    except (PolicyError, ConfigError) as exc:
        raise EvalInputError(str(exc)) from None


def run_settings(request: EvalRequest, ck, ecfg: EvalConfig, device: str) -> dict:
    """What every trials row records and what a resumed run must share: the eval section with its
    nulls resolved (benchmark settle steps, training resolution, model DPM steps); ``max_steps`` stays
    null for "each suite's own budget" (rows record the budget they ran with)."""
    from policy.checkpoints import weights_sha256

    resolution = ecfg.resolution or ck.training_resolution() or lenv.DEFAULT_RESOLUTION
    log.info("camera resolution %d (%s)", resolution, "given" if ecfg.resolution else
             "as in training" if ck.training_resolution() else "default")
    return {
        "checkpoint": str(Path(ck.weights).resolve()), "weights_sha256": weights_sha256(ck.weights),
        "exec_horizon": ecfg.exec_horizon, "max_steps": ecfg.max_steps,
        "num_steps_wait": lenv.NUM_STEPS_WAIT if ecfg.num_steps_wait is None else ecfg.num_steps_wait,
        "resolution": resolution,
        "dtype": ecfg.dtype or ("bfloat16" if device.startswith("cuda") else "float32"),
        "compile": bool(ecfg.compile),
        "num_inference_steps": ecfg.num_inference_steps or ck.config.model.noise_scheduler.num_inference_timesteps,
        "instruction_source": request.instruction_source or ck.config.dataset.instruction_source,
    }


def make_jobs(request: EvalRequest, ck, tasks: dict, settings: dict, seeds: Sequence[int], num_trials: int,
              done_keys: set) -> list[Job]:
    """One job per (suite, task, seed, trial) not already in the run's CSV; trial i of seed s starts
    from init state i % 50 with env / noise seed s + i."""
    jobs: list[Job] = []
    for name, (suite, task_ids) in tasks.items():
        budget = settings["max_steps"] or lenv.max_steps(suite)
        for tid in task_ids:
            todo = [(s, i) for s in seeds for i in range(num_trials) if (name, tid, i, s) not in done_keys]
            if not todo:
                continue
            task = lenv.get_task(suite, tid)
            init_states = lenv.get_task_init_states(suite, tid)
            instruction = task_prompt(ck.data_info, suite, tid, task.name, settings["instruction_source"],
                                      explicit=request.instruction_source)
            for seed, i in todo:
                jobs.append(Job(suite=name, task_id=tid, task_name=task.name, trial=i,
                                init_state_idx=i % len(init_states), seed=seed + i, eval_seed=seed,
                                instruction=instruction, init_state=init_states[i % len(init_states)],
                                max_steps=budget, settle_steps=settings["num_steps_wait"],
                                video_stem=f"{name}_task{tid}_s{seed}_trial{i}"))
    return jobs


def existing_trials(request: EvalRequest, run: str, settings: dict) -> tuple[Path, Path, set]:
    """(metrics dir, videos dir, keys of the trials already done); refuses a run of other settings."""
    mdir, vdir = metrics_dir(request.out_root, run), videos_dir(request.out_root, run)
    trials_csv = mdir / "trials.csv"
    existing = latest_rows(read_rows(trials_csv))
    others = {r["checkpoint"] for r in existing} - {settings["checkpoint"]}
    if others:
        raise EvalInputError(f"run {run!r} ({trials_csv}) already holds results of another checkpoint "
                             f"({sorted(others)[0]}); use another --run_name")
    try:
        check_columns(trials_csv)
        check_run_settings(mdir, settings, record=False)
    except ValueError as exc:
        raise EvalInputError(str(exc)) from None
    return mdir, vdir, {trial_key(r) for r in existing if not (request.retry_errors and r.get("error"))}


def trial_recorder(trials_csv: Path, settings: dict):
    """``on_result`` for the runner: one fsynced CSV row per finished trial."""
    stack = format_versions()  # mujoco / robosuite / LIBERO / numpy / torch versions, in every row

    def on_result(job: Job, act: Optional[Active], video: str, error: str) -> None:
        append_row(trials_csv, {
            "suite": job.suite, "task_id": job.task_id, "task_name": job.task_name, "trial": job.trial,
            "init_state_idx": job.init_state_idx,
            "success": int(bool(act and act.done and not error)),
            "steps": act.steps if act else 0,
            "wall_time_s": f"{time.perf_counter() - act.t0:.2f}" if act else "",
            "mean_infer_ms": f"{np.mean(act.infer_ms):.2f}" if act and act.infer_ms else "",
            **settings, "eval_seed": job.eval_seed, "seed": job.seed, "max_steps": job.max_steps,
            "instruction": job.instruction, "sim_stack": stack,
            "video": video, "error": error,
        })
    return on_result


def load_policy(request: EvalRequest, ck, settings: dict, device: str):
    """The checkpoint's RDTPolicy (a checkpoint that does not load is one line)."""
    from models.loading import CheckpointError
    from policy.checkpoints import PolicyError
    from policy.rdt_policy import RDTPolicy

    try:
        policy = RDTPolicy.from_pretrained(ck.weights, device, vision_encoder=request.vision_encoder,
                                           text_encoder=request.text_encoder, lang_embed_dir=request.lang_embed_dir,
                                           dtype=settings["dtype"], num_inference_steps=settings["num_inference_steps"],
                                           resolved=ck)
    except (PolicyError, CheckpointError, OSError) as exc:
        raise EvalInputError(str(exc)) from None
    if settings["compile"]:
        policy.runner.compile_for_inference()
        log.info("diffusion network compiled for sampling (inductor, frozen weights): the first chunk of each "
                 "batch size compiles")
    return policy


def prepare_run(request: EvalRequest, ck, ecfg: EvalConfig, tasks: dict, settings: dict, seeds: Sequence[int], device: str,
                run: str, claims: contextlib.ExitStack):
    """(metrics dir, videos dir, jobs, policy or None). Under the run folder's lock: the settings are
    checked against run.json, this process's tasks claimed (held in ``claims``: an evaluation of the
    same tasks started at the same time is refused), the trials not done yet listed; a new run's
    run.json is written only once the policy has loaded (a checkpoint that fails leaves no run)."""
    output_dir(request.out_root, "--out_root")
    mdir = metrics_dir(request.out_root, run)
    with run_lock(mdir):
        for name, (_, task_ids) in tasks.items():
            for tid in task_ids:
                try:
                    claims.enter_context(claim_task(mdir, name, tid))
                except RunBusyError as exc:
                    raise EvalInputError(str(exc)) from None
        mdir, vdir, done_keys = existing_trials(request, run, settings)
        jobs = make_jobs(request, ck, tasks, settings, seeds, ecfg.num_trials, done_keys)
        if not jobs:
            return mdir, vdir, jobs, None
        if not (mdir / "run.json").is_file():
            policy = load_policy(request, ck, settings, device)
            record_run_settings(mdir, settings)
            return mdir, vdir, jobs, policy
    return mdir, vdir, jobs, load_policy(request, ck, settings, device)


@contextlib.contextmanager
def policy_thread_pool(request: EvalRequest, ecfg: EvalConfig, device: str):
    """torch's thread count for the policy while the simulators run (``runner.policy_threads``), put
    back afterwards: ``main()`` may run inside another program (tests)."""
    import torch

    threads_before = torch.get_num_threads()
    torch.set_num_threads(policy_threads(device, ecfg.num_envs, request.torch_threads))
    try:
        yield
    finally:
        torch.set_num_threads(threads_before)


def rollout_policy(request: EvalRequest, ecfg: EvalConfig, settings: dict, jobs: list[Job], device: str, vdir: Path,
                   policy, on_result) -> None:
    """Run every job through the runner with the loaded policy; ``on_result`` records each trial."""
    log.info("policy: %s (encoding %s, instruction source %s) on %s; %d trial(s), %d env(s), exec_horizon %d",
             settings["checkpoint"], policy.action_encoding, settings["instruction_source"], device, len(jobs),
             ecfg.num_envs, ecfg.exec_horizon)
    policy.prepare_instructions(sorted({j.instruction for j in jobs}))  # T5 once per task, then freed
    policy.warmup(jobs[0].instruction, settings["resolution"])  # first-call overheads stay out of the latency
    run_jobs(jobs, ModelPlanner(policy, ecfg.num_envs), ecfg.num_envs, ecfg.exec_horizon, ecfg.video, vdir,
             on_result, ecfg.step_timeout, request.progress, settings["resolution"], slots=ecfg.slots)


def evaluate(request: EvalRequest) -> int:
    ck = open_checkpoint(request)
    ecfg = request.applied_to(ck.config).eval  # Config checks exec_horizon against the model's chunk
    seeds = list(dict.fromkeys(request.seeds or [ecfg.seed]))
    tasks = validate_tasks(request)
    check_stack(request, tasks)
    check_render()

    import torch

    device = request.device or ("cuda" if torch.cuda.is_available() else "cpu")
    settings = run_settings(request, ck, ecfg, device)
    given = {"num_inference_steps": ecfg.num_inference_steps, "resolution": ecfg.resolution, "dtype": ecfg.dtype,
             "instruction_source": request.instruction_source, "ema": request.ema}
    run = request.run_name or default_run_name(ck.source, request.suites, settings, seeds, given)
    if request.resolve_only:
        print(f"{ck.concrete or ck.source}\t{run}")
        return 0
    if request.instruction_swap:
        return instruction_swap(request, ck, ecfg, tasks, settings, seeds, device, request.run_name or f"{run}_swap")
    with policy_thread_pool(request, ecfg, device), contextlib.ExitStack() as claims:
        mdir, vdir, jobs, policy = prepare_run(request, ck, ecfg, tasks, settings, seeds, device, run, claims)
        skipped = sum(len(ids) for _, ids in tasks.values()) * len(seeds) * ecfg.num_trials - len(jobs)
        if skipped:
            log.info("resuming run %s: %d trial(s) already in %s are skipped", run, skipped, mdir / "trials.csv")
        if jobs:
            rollout_policy(request, ecfg, settings, jobs, device, vdir, policy,
                           trial_recorder(mdir / "trials.csv", settings))
    summary = write_summary(mdir)
    print_summary(summary)
    print_robustness(summary)
    print_stack_status(summary)
    print(f"trials: {mdir / 'trials.csv'}\nsummary: {mdir / 'summary.csv'}\nreport: {write_report(mdir)}")
    if request.wandb:
        from libero_eval.report import log_wandb

        print(f"wandb: {log_wandb(mdir, request.wandb)}")
    return 0


def instruction_swap(request: EvalRequest, ck, ecfg: EvalConfig, tasks: dict, settings: dict, seeds: Sequence[int],
                     device: str, run: str) -> int:
    """``--instruction_swap``: every (init-state task, instruction task) pair of one suite's tasks;
    resumable like a run (its settings in run.json, one fsynced row per trial)."""
    from libero_eval import instruction_swap as swap

    if len(tasks) != 1:
        raise EvalInputError(f"--instruction_swap takes one suite (whose tasks share a scene), got {list(tasks)}")
    (name, (suite, task_ids)), = tasks.items()
    plan = swap.SwapPlan(name, tuple(task_ids), ecfg.num_trials, tuple(seeds),
                         settings["max_steps"] or lenv.max_steps(suite), settings["num_steps_wait"])
    output_dir(request.out_root, "--out_root")
    mdir, vdir = metrics_dir(request.out_root, run), videos_dir(request.out_root, run)

    def instruction_of(task_id: int) -> str:
        return task_prompt(ck.data_info, suite, task_id, lenv.get_task(suite, task_id).name,
                           settings["instruction_source"], explicit=request.instruction_source)

    with run_lock(mdir):
        try:
            check_run_settings(mdir, settings, record=False)
            jobs = swap.swap_jobs(plan, instruction_of, swap.done_trials(mdir / "swap_trials.csv",
                                                                         request.retry_errors))
        except ValueError as exc:
            raise EvalInputError(str(exc)) from None
        policy = load_policy(request, ck, settings, device) if jobs else None
        record_run_settings(mdir, settings)
    if jobs:
        with policy_thread_pool(request, ecfg, device):
            rollout_policy(request, ecfg, settings, jobs, device, vdir, policy,
                           swap.swap_recorder(mdir / "swap_trials.csv", plan))
    swap.write_swap_outputs(mdir, plan, f"{run}: instruction swap ({len(seeds)} seed(s) x {ecfg.num_trials} trials per pair)")
    return 0


def replay_config(request: EvalRequest) -> EvalConfig:
    """``--policy replay``: the eval section of ``--config`` (default base.yaml) with ``--set`` and the
    eval flags given."""
    from configs.loader import BASE_PRESET, load_typed

    return request.applied_to(load_typed(request.config or BASE_PRESET, request.overrides)).eval


def summarize_only(request: EvalRequest) -> int:
    if not request.run_name:
        raise EvalInputError("--summarize_only needs --run_name")
    mdir = metrics_dir(request.out_root, request.run_name)
    if not (mdir / "trials.csv").is_file():
        raise EvalInputError(f"no trials.csv in {mdir}")
    summary = write_summary(mdir)
    print_summary(summary)
    print(f"summary: {mdir / 'summary.csv'}\nreport: {write_report(mdir)}")
    return 0


def _main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    request = EvalRequest.from_args(build_parser().parse_args(argv))  # the namespace goes no further
    if request.summarize_only:
        return summarize_only(request)
    if request.policy == "replay":
        return replay(request, replay_config(request))
    return evaluate(request)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The CLI: a user mistake is one ``error:`` line and status 2 (``configs.errors.run_cli``)."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    exit_cli(main)
