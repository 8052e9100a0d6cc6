"""The learning bench: does what this repository trains succeed in the LIBERO simulator?

For each chosen task: record expert demos (scripts/make_expert_dataset.py, randomised resets, cached),
train a CPU-sized RDT (configs/learn.yaml) through ``main_sft.py``, and roll it out through
``libero_eval.eval_rdt_libero`` on the task's standard init states. Beside the policy it measures
what explains a 0%: the expert on the same init states, ``--policy replay`` of the expert demos
through encode -> decode, the held-out sampled-action MSE, and whole-chunk execution
(``--diag_horizon 64``) next to re-planning.

    python -m scripts.bench_learning                          # turn on the stove, ~25 min with demos cached
    python -m scripts.bench_learning --tasks libero_goal/1 libero_goal/7 libero_object/0
    python -m scripts.bench_learning --tasks libero_goal/1 libero_goal/7 --multitask   # one policy
    python -m scripts.bench_learning --set dataset.action_encoding=delta --mixed_precision bf16
    python -m scripts.bench_learning --format no_noops        # 256 px OpenVLA-layout demos

Everything lands in ``--out`` (default outs/bench_learning/<name from the settings>): the datasets
table, statistics, language embeddings, checkpoints, eval metrics and videos, ``results.json`` and,
with ``--curve``, ``success_vs_steps.png``. The last line printed is
``expert <a>% policy <b>% (<task count> tasks, <n> trials)`` (policy = the first ``--horizons`` entry).
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from configs.errors import UserError, exit_cli
from configs.loader import load_config
from libero_eval.metrics import latest_rows, read_rows, wilson_interval
from utils.atomic import atomic_write_text

log = logging.getLogger("bench_learning")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TASKS = ("libero_goal/turn_on_the_stove",)
STAGE_TIMES = "stage_times.json"


@dataclass
class Task:
    suite: str
    name: str
    task_id: int
    plan_revision: int  # of the scripted expert's plan that records its demos
    demo_file: Path | None = None
    results: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.suite}/{self.name}"


def build_parser() -> argparse.ArgumentParser:
    from libero_eval.demos.recording import POST_SUCCESS_STEPS, ROBOT_INIT_NOISE

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS),
                    help="suite/task (task: id, name or instruction) with a scripted expert")
    ap.add_argument("--multitask", action="store_true", help="train one policy on all --tasks together")
    ap.add_argument("--swap", type=int, default=0, metavar="N", help="with --multitask: also the instruction-swap "
                    "diagnostic, N init states per (init task, instruction) pair (libero_eval/instruction_swap.py)")
    ap.add_argument("--config", default="configs/learn.yaml")
    ap.add_argument("--set", nargs="*", action="extend", default=[], metavar="KEY=VALUE",
                    help="config overrides (repeatable)")
    ap.add_argument("--mixed_precision", choices=("no", "bf16"), default="no",
                    help="training autocast (bf16 also evaluates in bfloat16)")
    ap.add_argument("--episodes", type=int, default=40, help="expert demos per task (cached)")
    ap.add_argument("--format", choices=("raw", "no_noops"), default="raw", help="layout of the demo files")
    ap.add_argument("--post_success_steps", type=int, default=POST_SUCCESS_STEPS,
                    help="demo steps recorded after the goal is reached (LIBERO's demos: 10; 0 = end at success, "
                         "the demos of runs before 2026-12-05)")
    ap.add_argument("--robot_init_noise", type=float, default=ROBOT_INIT_NOISE,
                    help="std (rad) of the noise on each arm joint at a demo's reset, as in LIBERO's init states "
                         "(0 = every demo from the nominal arm pose, the demos of runs before 2026-12-05)")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: train.max_train_steps)")
    ap.add_argument("--trials", type=int, default=20, help="init states per task and horizon (--full: 50)")
    ap.add_argument("--full", action="store_true", help="all 50 init states")
    ap.add_argument("--horizons", type=int, nargs="+", default=[8, 16], help="exec_horizon values evaluated")
    ap.add_argument("--diag_horizon", type=int, default=64, help="whole-chunk diagnostic horizon (0: skip)")
    ap.add_argument("--replay_trials", type=int, default=3, help="expert demos replayed through decode")
    ap.add_argument("--max_steps", type=int, default=None, help="policy steps per trial (default: the suite's)")
    ap.add_argument("--curve", action="store_true",
                    help="also evaluate the intermediate checkpoints (first horizon) and plot success vs steps")
    ap.add_argument("--baseline", action="store_true",
                    help="also evaluate the untrained policy (step 0) at the first horizon")
    ap.add_argument("--seed", type=int, default=0, help="demo seed and training seed")
    ap.add_argument("--train_seed", type=int, default=None,
                    help="training seed alone (default: --seed): other training runs on the same cached demos, "
                         "to measure the spread between runs")
    ap.add_argument("--num_envs", type=int, default=2,
                    help="simulator processes per evaluation, and tasks recorded at once")
    ap.add_argument("--cache", default="data/datasets/bench_learning", help="demo cache root")
    ap.add_argument("--out", default=None, help="run folder (default outs/bench_learning/<settings>)")
    return ap


# ---------------------------------------------------------------------------------------------- setup
def resolve_tasks(specs: Sequence[str]) -> list[Task]:
    from libero_eval import env as lenv
    from libero_eval.demos import expert as se

    tasks = []
    for spec in specs:
        suite, sep, task = spec.partition("/")
        if not sep or not task:
            raise UserError(f"--tasks: {spec!r} is not suite/task (e.g. libero_goal/put_the_bowl_on_the_stove)")
        suite_obj = lenv.get_suite(suite)
        try:
            task_id = se.resolve_task(suite_obj, task)
        except ValueError as e:
            raise UserError(f"--tasks {spec}: {e}") from None
        name = lenv.get_task(suite_obj, task_id).name
        if (suite, name) not in se.TASKS:
            raise UserError(f"--tasks {spec}: no scripted expert; supported: {sorted('/'.join(k) for k in se.TASKS)}")
        tasks.append(Task(suite, name, task_id, se.plan_revision(suite, name)))
    return tasks


def run_name(args, cfg: dict, steps: int, tasks: Sequence[Task]) -> str:
    """The run folder's name: what decides its checkpoints and results. It starts with the tasks
    (``goal1-6-7-8_``: suite and task ids, in order), so runs of other tasks never share language
    embeddings, statistics or checkpoints. The tasks' expert plan revisions appear (``_rev2-1-1-2``,
    in task order) once any plan is past its first revision, so a run trained on an older plan's
    demos is not resumed. A position loss weight other than 1 appears too, wherever it was set."""
    enc = cfg["dataset"]["action_encoding"]
    ids: dict[str, list[str]] = {}
    for t in tasks:
        ids.setdefault(t.suite.removeprefix("libero_"), []).append(str(t.task_id))
    which = "".join(f"{suite}{'-'.join(i)}_" for suite, i in ids.items())
    named = ("action_encoding", "position_loss_weight")  # in the name from the resolved config (below) or not at all
    # key=value -> _key-value, the key's last component (a value's own dots are kept: 0.002, not 002)
    sets = "".join(f"_{k.split('.')[-1]}-{v}" for k, _, v in (s.partition("=") for s in args.set)
                   if not any(n in k for n in named))
    # From the resolved config, so a preset's value (learn.yaml) names the run as a --set one does.
    weight = float(cfg["train"]["position_loss_weight"])
    posw = f"_position_loss_weight-{weight:g}" if weight != 1.0 else ""
    mt = "_multitask" if args.multitask else ""
    revs = [t.plan_revision for t in tasks]
    rev = "_rev" + "-".join(map(str, revs)) if any(r != 1 for r in revs) else ""
    tseed = f"_tseed{args.train_seed}" if train_seed(args) != args.seed else ""
    return (f"{which}{args.format}_{enc}_{args.mixed_precision}_n{args.episodes}_s{steps}_seed{args.seed}"
            f"{tseed}{demo_suffix(args)}{mt}{rev}{posw}{sets}")


def train_seed(args) -> int:
    return args.seed if args.train_seed is None else args.train_seed


def demo_suffix(args) -> str:
    """Names of demo caches and runs carry the post-success steps and the arm's reset noise (none
    for 0: the older caches, recorded before either option existed)."""
    post = f"_post{args.post_success_steps}" if args.post_success_steps else ""
    return post + (f"_qnoise{args.robot_init_noise:g}" if args.robot_init_noise else "")


def record_stage(run_dir: Path, what: str, seconds: float) -> None:
    """Wall time of a finished stage, kept in ``<run>/stage_times.json`` across resumed invocations
    and summed over them: an evaluation that resumes from its cached rows adds the time of the part
    it ran (replacing would report a resumed 200-trial evaluation as its last few seconds); a stage
    skipped because its output is cached records nothing and keeps the time it took when it ran."""
    path = run_dir / STAGE_TIMES
    times = json.loads(path.read_text()) if path.is_file() else {}
    times[what] = round(times.get(what, 0.0) + seconds, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(times, indent=2))


def stage_times(run_dir: Path) -> dict[str, float]:
    """Every stage time recorded under the run folder (per-task folders included)."""
    out: dict[str, float] = {}
    for f in sorted(run_dir.rglob(STAGE_TIMES)):
        prefix = "" if f.parent == run_dir else f"{f.parent.relative_to(run_dir)}: "
        out.update({prefix + k: v for k, v in json.loads(f.read_text()).items()})
    return out


def run(cmd: list[str], logfile: Path, what: str) -> None:
    """Run one stage as its own process (the user-facing entry point), its output in `logfile`;
    its wall time goes to the run's stage table (the run folder is the log folder's parent)."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"),
               PYOPENGL_PLATFORM=os.environ.get("PYOPENGL_PLATFORM", "egl"), TOKENIZERS_PARALLELISM="false")
    t0 = time.perf_counter()
    with open(logfile, "w") as f:
        rc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if rc != 0:
        tail = "".join(open(logfile).readlines()[-15:])
        raise RuntimeError(f"{what} failed (rc {rc}); log {logfile}:\n{tail}")
    log.info("%-44s %6.0f s  (%s)", what, time.perf_counter() - t0, logfile)
    record_stage(logfile.parent.parent, what, time.perf_counter() - t0)


def ensure_encoders(cfg: dict, logs: Path) -> None:
    """The config's tiny SigLIP/T5, built from its own dimensions when missing."""
    m = cfg["model"]
    vision, text = Path(m["vision_encoder"]), Path(m["text_encoder"])
    if (ROOT / vision / "config.json").is_file() and (ROOT / text / "config.json").is_file():
        return
    if vision.parent != text.parent or vision.name != "siglip" or text.name != "t5":
        raise UserError(f"{vision} / {text} missing; bench_learning builds tiny encoders only as <dir>/siglip, <dir>/t5")
    side = int(round(m["img_tokens_per_image"] ** 0.5))
    patch = 16
    run([sys.executable, "-m", "scripts.make_tiny_encoders", "--out", str(vision.parent),
         "--image_size", str(side * patch), "--patch_size", str(patch), "--vision_dim", str(m["img_token_dim"]),
         "--text_dim", str(m["lang_token_dim"])], logs / "encoders.log", "tiny encoders")


def ensure_demos(tasks: list[Task], args, cache: Path, logs: Path) -> None:
    """Expert demos of each task from randomised resets, recorded once per (format, count, seed);
    the missing ones of a suite in one call, ``--num_envs`` tasks at a time."""
    from libero_eval.demos.recording import output_path

    out = cache / f"{args.format}_n{args.episodes}_seed{args.seed}{demo_suffix(args)}"
    for t in tasks:
        t.demo_file = output_path(out, t.suite, t.name)
        if t.demo_file.is_file():
            check_cached_demos(t.demo_file, args.post_success_steps, args.robot_init_noise)
            set_aside_stale_demos(t.demo_file, t.plan_revision)
    for suite in dict.fromkeys(t.suite for t in tasks):
        missing = [t.name for t in tasks if t.suite == suite and not t.demo_file.is_file()]
        if missing:
            run([sys.executable, "-m", "scripts.make_expert_dataset", "--suite", suite, "--tasks", *missing,
                 "--episodes", str(args.episodes), "--format", args.format, "--seed", str(args.seed),
                 "--post_success_steps", str(args.post_success_steps), "--robot_init_noise", str(args.robot_init_noise),
                 "--out", str(out), "--workers", str(args.num_envs), "--no_progress"],
                logs / f"demos_{suite}.log", f"{args.episodes} expert demos each: {', '.join(missing)}")


def check_cached_demos(path: Path, post_success_steps: int, robot_init_noise: float) -> None:
    """A cached demo file must have been recorded with the requested post-success steps and arm
    reset noise (files written before either option existed: 0)."""
    from libero_eval.demos.recording import stored_generator_args

    stored = stored_generator_args(path)
    for flag, asked, recorded in (("post_success_steps", post_success_steps, int(stored.get("post_success_steps", 0))),
                                  ("robot_init_noise", robot_init_noise, float(stored.get("robot_init_noise", 0.0)))):
        if recorded != asked:
            raise UserError(f"{path}: recorded with {flag} {recorded:g}, asked for {asked:g}; "
                            f"move the file away or pass --{flag} {recorded:g}")


def set_aside_stale_demos(path: Path, current: int) -> None:
    """A cached demo file recorded by another revision than its task's plan's `current` one is
    renamed ``<name>.rev<N>.hdf5`` (kept, not deleted) and logged, so the task is recorded again."""
    from libero_eval.demos.expert_data import stored_plan_revision

    stored = stored_plan_revision(path)
    if stored != current:
        aside = path.with_name(f"{path.stem}.rev{stored}{path.suffix}")
        path.replace(aside)
        log.warning("%s: recorded by revision %d of the expert plan, now %d; moved to %s, recording again",
                    path, stored, current, aside.name)


def expert_success(task: Task, trials: int, cache: Path, run_dir: Path | None = None) -> dict:
    """The scripted expert on the same init states the policy is evaluated on (cached)."""
    from libero_eval.demos import expert as se

    f = cache / "expert_success" / f"{task.suite}__{task.name}__{trials}.json"
    revision = task.plan_revision
    if f.is_file():
        cached = json.loads(f.read_text())
        measured_with = cached.get("plan_revision", se.FIRST_REVISION)
        if measured_with == revision:
            return cached
        log.info("%s: measured with revision %d of the plan, now %d; measuring again", f, measured_with, revision)
    t0 = time.perf_counter()
    r = se.evaluate(task.suite, task.task_id, n_init=trials)
    res = {"successes": r["successes"], "n": r["episodes"], "plan_revision": revision}
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(res))
    log.info("%-44s %6.0f s", f"expert on {trials} init states: {task.name}", time.perf_counter() - t0)
    if run_dir is not None:
        record_stage(run_dir, f"expert on {trials} init states: {task.name}", time.perf_counter() - t0)
    return res


def write_datasets_table(tasks: list[Task], fmt: str, run_dir: Path) -> Path:
    """One suite folder per task (a link to the cached file), so each task is its own stats entry."""
    table = {}
    for t in tasks:
        folder = run_dir / "data" / t.name
        folder.mkdir(parents=True, exist_ok=True)
        link = folder / t.demo_file.name
        if not link.exists():
            link.symlink_to(t.demo_file.resolve())
        table[f"{t.suite}__{t.name}"] = {"path": str(folder), "sample_weight": 1.0, "layout": fmt}
    path = run_dir / "finetune_datasets.json"
    path.write_text(json.dumps(table, indent=2))
    return path


# --------------------------------------------------------------------------------------------- train
def train(tasks: list[Task], args, steps: int, run_dir: Path) -> Path:
    """Language embeddings, statistics, then main_sft.py -- the same commands a user runs."""
    logs = run_dir / "logs"
    table = write_datasets_table(tasks, args.format, run_dir)
    stats, lang, ckpts = run_dir / "dataset_stat.json", run_dir / "lang_embeddings", run_dir / "checkpoints"
    sets = [*args.set, f"dataset.datasets_config={table}", f"dataset.stats_path={stats}"]
    common = ["--config", args.config, "--set", *sets]
    if not (lang / "manifest.json").is_file():
        run([sys.executable, "-m", "scripts.preprocess_language_embeddings", *common, "--out", str(lang)],
            logs / "lang.log", "language embeddings")
    if not stats.is_file():
        run([sys.executable, "-m", "scripts.compute_dataset_stats", "--config", args.config,
             *[x for s in sets for x in ("--set", s)], "--out", str(stats)], logs / "stats.log", "statistics")
    final = ckpts / f"checkpoint-{steps}"
    if not (final / "train_config.json").is_file():
        run([sys.executable, "main_sft.py", "--config_path", args.config, "--set", *sets, "--output_dir", str(ckpts),
             "--precomp_lang_embed", str(lang), "--max_train_steps", str(steps), "--seed", str(train_seed(args)),
             "--mixed_precision", args.mixed_precision, "--resume_from_checkpoint", "latest"],  # after a crash
            logs / "train.log", f"train {steps} steps")
    if args.baseline and not (run_dir / "untrained" / "checkpoint-0" / "train_config.json").is_file():
        run([sys.executable, "main_sft.py", "--config_path", args.config, "--set", *sets,
             "--output_dir", str(run_dir / "untrained"), "--precomp_lang_embed", str(lang), "--max_train_steps", "0",
             "--seed", str(train_seed(args)), "--sample_period", "-1"], logs / "untrained.log", "untrained policy")
    return final


def heldout_mse(ckpt_root: Path) -> dict:
    """The last logged sampled-action MSE per suite and RMSE per quantity (held-out episodes: the val/ keys)."""
    out = {}
    mfile = ckpt_root / "metrics.jsonl"
    if mfile.is_file():
        for line in mfile.read_text().splitlines():
            rec = json.loads(line)
            out.update({k: v for k, v in rec.items() if k.endswith(("_sample_mse", "_rmse"))})
    return out


# ---------------------------------------------------------------------------------------------- eval
def evaluate(ckpt: Path, tasks: list[Task], args, horizon: int, trials: int, run_dir: Path, tag: str,
             policy: str = "rdt") -> dict[str, dict]:
    """One libero_eval run over `tasks` (one suite: a multi-task policy is scored as a user scores a
    suite, in one run with one report of per-task Wilson intervals and the mean,
    ``<run>/eval/metrics/<name>/report.md``). Returns {task key: {successes, n, video (a successful
    trial's mp4 or None)}}."""
    name = tag if len(tasks) > 1 else f"{tag}_{tasks[0].name}"
    out_root = run_dir / "eval"
    n_jobs = trials * len(tasks)
    cmd = [sys.executable, "-m", "libero_eval.eval_rdt_libero", "--suite", tasks[0].suite,
           "--task_ids", *[str(t.task_id) for t in tasks], "--num_trials", str(trials), "--exec_horizon", str(horizon),
           "--num_envs", str(min(args.num_envs, n_jobs)), "--run_name", name, "--out_root", str(out_root),
           "--video", "all", "--no_progress", "--seed", "0"]
    if policy == "replay":
        (task,) = tasks
        cmd += ["--policy", "replay", "--demo_file", str(task.demo_file), "--replay_encoding",
                load_config(args.config, args.set)["dataset"]["action_encoding"]]
    else:
        cmd += ["--checkpoint", str(ckpt), "--dtype", "bfloat16" if args.mixed_precision == "bf16" else "float32"]
    if args.max_steps:
        cmd += ["--max_steps", str(args.max_steps)]
    what = f"eval {tag}: " + (tasks[0].name if len(tasks) == 1 else f"{len(tasks)} tasks x {trials} trials")
    run(cmd, run_dir / "logs" / f"eval_{name}.log", what)
    mdir = out_root / "metrics" / name
    if policy == "replay":
        with open(mdir / "replay.csv") as f:
            rows = list(csv.DictReader(f))
        wins = [r for r in rows if str(r.get("env_success_any")).lower() in ("1", "true")]
        return {tasks[0].key: {"successes": len(wins), "n": len(rows), "video": None}}
    rows = latest_rows(read_rows(mdir / "trials.csv"))
    out = {}
    for t in tasks:
        mine = sorted((r for r in rows if r["suite"] == t.suite and int(r["task_id"]) == t.task_id),
                      key=lambda r: (str(r.get("eval_seed")), int(r["trial"])))
        wins = [r for r in mine if str(r["success"]) == "1"]
        video = next((r["video"] for r in wins if r.get("video")), None)
        out[t.key] = {"successes": len(wins), "n": len(mine), "video": video}
    if len(tasks) > 1:
        out["report"] = str(mdir / "report.md")
    return out


def instruction_swap(ckpt: Path, tasks: list[Task], args, run_dir: Path) -> Path:
    """``eval_rdt_libero --instruction_swap`` over the tasks of one policy; returns the matrix PNG."""
    cmd = [sys.executable, "-m", "libero_eval.eval_rdt_libero", "--instruction_swap", "--checkpoint", str(ckpt),
           "--suite", tasks[0].suite, "--task_ids", *[str(t.task_id) for t in tasks], "--num_trials", str(args.swap),
           "--exec_horizon", str(args.horizons[0]), "--num_envs", str(args.num_envs), "--run_name", "swap",
           "--out_root", str(run_dir / "eval"), "--video", "none", "--no_progress", "--seed", "0"]
    run(cmd + (["--max_steps", str(args.max_steps)] if args.max_steps else []), run_dir / "logs" / "eval_swap.log",
        "instruction swap")
    return run_dir / "eval" / "metrics" / "swap" / "swap_matrix.png"


def evaluate_group(group: list[Task], final: Path, args, trials: int, run_dir: Path, cache: Path) -> None:
    """The expert and the replay per task, then the policy: one evaluation run per horizon (and per
    checkpoint with ``--curve``) over the whole group, so a multi-task policy gets a suite report."""
    for t in group:
        t.results["expert"] = expert_success(t, trials, cache, run_dir)
        if args.replay_trials > 0:
            t.results["replay"] = evaluate(final, [t], args, args.horizons[0], args.replay_trials, run_dir, "replay",
                                           "replay")[t.key]
    h0 = args.horizons[0]
    runs = [("untrained", run_dir / "untrained" / "checkpoint-0", h0)] if args.baseline else []
    runs += [(f"h{h}", final, h) for h in args.horizons]
    if args.diag_horizon and args.diag_horizon not in args.horizons:
        runs.append((f"h{args.diag_horizon}", final, args.diag_horizon))
    if args.curve:
        for ck in sorted(final.parent.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])):
            if ck != final and (ck / "train_config.json").is_file():
                runs.append((f"step{ck.name.split('-')[1]}_h{h0}", ck, h0))
    suites = {suite: [t for t in group if t.suite == suite] for suite in dict.fromkeys(t.suite for t in group)}
    for tag, ck, h in runs:
        for tasks in suites.values():
            res = evaluate(ck, tasks, args, h, trials, run_dir, tag if len(suites) == 1 else f"{tag}_{tasks[0].suite}")
            for t in tasks:
                t.results[tag] = res[t.key]
                if "report" in res:
                    t.results.setdefault("reports", {})[tag] = res["report"]
    if args.curve:
        for t in group:
            t.results["curve"] = {int(k[4:].split("_")[0]): v for k, v in t.results.items() if k.startswith("step")}
            t.results["curve"][int(final.name.split("-")[1])] = t.results[f"h{h0}"]


def plot_curve(tasks: list[Task], path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [(t, t.results.get("curve")) for t in tasks if t.results.get("curve")]
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for t, c in curves:
        steps = sorted(int(s) for s in c)
        ax.plot(steps, [100 * c[s]["successes"] / max(c[s]["n"], 1) for s in steps], marker="o", label=t.name)
    ax.set_xlabel("training steps")
    ax.set_ylabel("success (%)")
    ax.set_ylim(-5, 105)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# -------------------------------------------------------------------------------------------- report
def pct(r: dict | None) -> str:
    """``s/n (p%) [lo-hi]``: the 95% Wilson interval, as the evaluation report gives it."""
    if not r:
        return "-"
    lo, hi = wilson_interval(r["successes"], r["n"])
    return f"{r['successes']}/{r['n']} ({100 * r['successes'] / max(r['n'], 1):.0f}%) [{100 * lo:.0f}-{100 * hi:.0f}]"


def report(tasks: list[Task], args, mse: dict) -> str:
    cols = ["expert", "replay", *(["untrained"] if args.baseline else []), *[f"h{h}" for h in args.horizons]]
    if args.diag_horizon and args.diag_horizon not in args.horizons:
        cols.append(f"h{args.diag_horizon}")
    lines = [f"{'task':44s} {'heldout mse':>11s} " + " ".join(f"{c:>21s}" for c in cols)]
    for t in tasks:
        key = f"val/{t.suite}__{t.name}_sample_mse"
        m = mse.get(key, mse.get(key.replace("val/", "")))
        lines.append(f"{t.key[:44]:44s} {('%.2e' % m) if m is not None else '-':>11s} "
                     + " ".join(f"{pct(t.results.get(c)):>21s}" for c in cols))
    return "\n".join(lines)


def summary_line(tasks: list[Task], args) -> str:
    main = f"h{args.horizons[0]}"
    e_s, e_n = sum(t.results["expert"]["successes"] for t in tasks), sum(t.results["expert"]["n"] for t in tasks)
    p_s, p_n = sum(t.results[main]["successes"] for t in tasks), sum(t.results[main]["n"] for t in tasks)
    return (f"expert {100 * e_s / max(e_n, 1):.0f}% policy {100 * p_s / max(p_n, 1):.0f}% "
            f"({len(tasks)} tasks, {p_n} trials)")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[bench_learning] %(message)s")
    args = build_parser().parse_args(argv)
    os.chdir(ROOT)
    try:
        cfg = load_config(args.config, args.set)
    except (FileNotFoundError, KeyError, ValueError) as e:
        raise UserError(f"--config {args.config}: {e}") from None
    if args.format == "no_noops" and cfg["dataset"].get("filter_noops"):
        log.info("note: no_noops files already exclude no-op steps")
    steps = int(args.steps or cfg["train"]["max_train_steps"])
    trials = 50 if args.full else args.trials
    if args.post_success_steps < 0:
        raise UserError(f"--post_success_steps {args.post_success_steps}: expected >= 0")
    if not args.robot_init_noise >= 0:
        raise UserError(f"--robot_init_noise {args.robot_init_noise}: expected >= 0 (rad)")
    tasks = resolve_tasks(args.tasks)
    if args.swap < 0 or args.swap and not (args.multitask and len(tasks) > 1 and len({t.suite for t in tasks}) == 1):
        raise UserError(f"--swap {args.swap}: needs --multitask and at least 2 --tasks of one suite, and N >= 0")
    run_dir = Path(args.out or f"outs/bench_learning/{run_name(args, cfg, steps, tasks)}")
    cache, logs = Path(args.cache), run_dir / "logs"
    t0 = time.perf_counter()
    ensure_encoders(cfg, logs)
    ensure_demos(tasks, args, cache, logs)
    groups = [tasks] if args.multitask else [[t] for t in tasks]
    mse = {}
    for group in groups:
        gdir = run_dir if args.multitask or len(tasks) == 1 else run_dir / group[0].name
        final = train(group, args, steps, gdir)
        mse.update(heldout_mse(final.parent))
        evaluate_group(group, final, args, trials, gdir, cache)
        if args.swap and args.multitask:
            print(f"instruction swap: {instruction_swap(final, group, args, gdir)}")
    stages = stage_times(run_dir)
    atomic_write_text(run_dir / "results.json", json.dumps(
        {"args": vars(args), "steps": steps, "heldout_mse": mse, "wall_s": round(time.perf_counter() - t0),
         "stage_wall_s": stages, "tasks": {t.key: t.results for t in tasks}}, indent=2))
    png = plot_curve(tasks, run_dir / "success_vs_steps.png") if args.curve else None
    print("stage wall times (each stage's own run; cached stages keep the time they took):")
    print("\n".join(f"  {what:60s} {sec:8.0f} s" for what, sec in stages.items()))
    print(report(tasks, args, mse))
    for rep in dict.fromkeys(r for t in tasks for r in t.results.get("reports", {}).values()):
        print(f"report: {rep}")
    for t in tasks:
        video = t.results[f"h{args.horizons[0]}"]["video"] or next(
            (t.results[k]["video"] for k in t.results if k.startswith("h") and t.results[k].get("video")), None)
        print(f"video {t.key}: {video or 'none (no successful trial)'}")
    if png:
        print(f"plot: {png}")
    print(f"results: {run_dir / 'results.json'} ({time.perf_counter() - t0:.0f} s)")
    print(summary_line(tasks, args))
    return 0


if __name__ == "__main__":
    exit_cli(main)
