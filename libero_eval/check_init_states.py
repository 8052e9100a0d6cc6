"""Does every stored LIBERO init state keep its premise under the installed simulator?

LIBERO's stored init states are not all at rest: some hold objects in the air and rely on the first
physics steps to seat them (libero_spatial task 5 stores the bowl 11 cm above the ramekin). Whether
they land where the task's author meant depends on the MuJoCo version, and a task whose starting
scene is wrong scores a success rate nobody can compare with published ones. This check asks
LIBERO's own files, not a fixture we recorded:

* every stored init state of every task is run exactly as evaluation runs it -- ``env.seed(seed + i)``,
  reset, ``set_init_state``, ``NUM_STEPS_WAIT`` settle actions -- with the cameras off;
* every ``:init`` predicate of the task's BDDL is then evaluated with LIBERO's own predicate code
  (``parsed_problem["initial_state"]`` through the env's ``_eval_predicate``, the machinery ``done``
  uses for the goal), before and after the settle;
* each object's displacement and rotation during the settle, its final tilt and settled pose, and
  whether the goal already holds are recorded, so that settled poses can be compared across stacks
  (`compare`).

The reset is LIBERO's soft reset: with the RNG seeded per state it yields bitwise the same settled
state and fixture placement as the hard reset evaluation uses, at a quarter of the cost
(``tests/libero_eval/test_init_states.py`` checks the equality; ``--hard_reset`` runs the slow path).

One JSON per task under ``<out>/<stack tag>/<suite>/task_NN.json``, written atomically: a rerun skips
what is done (resume), and tasks run in parallel processes::

    python -m libero_eval.check_init_states --suites libero_spatial libero_object libero_goal libero_10 \\
        --out outs/init_states --workers 2
    python -m libero_eval.check_init_states --compare outs/init_states/mujoco-3.3.7 outs/init_states/mujoco-3.17.0
"""
from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from configs.errors import UserError, exit_cli, output_dir, output_file
from configs.suites import EVAL_SUITES, check_suite
from libero_eval import versions
from libero_eval import init_state_report as report
from utils.atomic import atomic_write_text

log = logging.getLogger(__name__)

STANDARD_SUITES = ("libero_spatial", "libero_object", "libero_goal", "libero_10")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class CheckSettings:
    """What one task's check ran with; a stored result is reused only under the same settings."""

    seed: int  # state i is reset under env seed `seed + i`, as evaluation trial i is
    settle_steps: int
    hard_reset: bool
    states: Optional[tuple[int, ...]] = None  # None: every stored state


def stack_tag(v: Optional[dict] = None) -> str:
    """Folder name of a simulator stack, e.g. ``mujoco-3.3.7`` (robosuite / LIBERO recorded inside)."""
    v = versions.sim_versions() if v is None else v
    return f"mujoco-{v.get('mujoco')}"


# ------------------------------------------------------------------------------------------------
# One state
# ------------------------------------------------------------------------------------------------
def predicate_text(pred: Sequence[str]) -> str:
    return "(" + " ".join(str(p) for p in pred) + ")"


def premise_kind(inner, pred: Sequence[str]) -> str:
    """What an ``:init`` predicate asserts.

    ``object``: a physical relation between two scene objects, the init state's physics must
    establish it (On(bowl, ramekin), On(bowl, cabinet_top_side), In(x, cabinet_top_region));
    ``state``: a unary state (Open, TurnOn); ``fixture``: a fixture's placement on the table;
    ``region``: a movable object inside a *table* region -- a placement directive of LIBERO's
    sampler, whose region box is smaller than the range the stored states were sampled from.
    """
    if len(pred) != 3:
        return "state"
    subject, other = pred[1], pred[2]
    scene = set(inner.objects_dict) | set(inner.fixtures_dict)
    if subject in inner.fixtures_dict:
        return "fixture"
    if other in scene:
        return "object"
    site = getattr(inner, "object_sites_dict", {}).get(other)
    return "object" if getattr(site, "parent_name", None) in scene else "region"


def eval_predicates(inner, preds: Sequence[Sequence[str]]) -> list[Optional[bool]]:
    """LIBERO's own truth value of each predicate (None when LIBERO cannot evaluate it)."""
    out: list[Optional[bool]] = []
    for pred in preds:
        try:
            out.append(bool(inner._eval_predicate(list(pred))))
        except Exception as exc:  # an unevaluable predicate is reported, never guessed
            log.debug("cannot evaluate %s: %s", predicate_text(pred), exc)
            out.append(None)
    return out


def _body_poses(inner) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """World position (m) and quaternion (w, x, y, z) of every movable object's root body."""
    poses = {}
    for name, obj in inner.objects_dict.items():
        bid = inner.sim.model.body_name2id(obj.root_body)
        poses[name] = (np.array(inner.sim.data.body_xpos[bid]), np.array(inner.sim.data.body_xquat[bid]))
    return poses


def tilt_deg(q: np.ndarray) -> float:
    """Angle (deg) between the body's z axis and the world's up axis."""
    w, x, y, z = q / np.linalg.norm(q)
    r22 = 1.0 - 2.0 * (x * x + y * y)
    return float(np.degrees(np.arccos(np.clip(r22, -1.0, 1.0))))


def check_state(env, state: np.ndarray, seed: int, settle_steps: int) -> dict:
    """Reset into one stored state as evaluation does, settle, and measure what LIBERO says of it."""
    from libero_eval import env as lenv

    inner = lenv.inner_env(env)
    env.seed(int(seed))
    env.reset()
    lenv.reset_to_state(env, state)
    preds = inner.parsed_problem["initial_state"]
    before, goal_before, start = eval_predicates(inner, preds), bool(inner._check_success()), _body_poses(inner)
    lenv.settle(env, settle_steps)
    after, goal_after, end = eval_predicates(inner, preds), bool(inner._check_success()), _body_poses(inner)
    objects = {}
    for name, (p1, q1) in end.items():
        p0, q0 = start[name]
        objects[name] = {
            "disp_mm": round(float(np.linalg.norm(p1 - p0)) * 1000.0, 3),
            "rot_deg": round(report.quat_angle_deg(q0, q1), 3),
            "tilt_deg": round(tilt_deg(q1), 3),
            "pos": [round(float(v), 6) for v in p1],
            "quat": [round(float(v), 6) for v in q1],
        }
    return {"seed": int(seed), "premise_before": before, "premise_after": after,
            "goal_before": goal_before, "goal_after": goal_after, "objects": objects,
            "sim_state_sha": _digest(lenv.sim_state(env))}


def _digest(a: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.float64).tobytes()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------
# One task
# ------------------------------------------------------------------------------------------------
def task_path(out: Path, tag: str, suite: str, task_id: int) -> Path:
    return Path(out) / tag / suite / f"task_{task_id:02d}.json"


def check_task(suite: str, task_id: int, settings: CheckSettings) -> dict:
    """Every (selected) stored init state of one task, in one cameras-off env."""
    from libero_eval import env as lenv

    suite_obj = lenv.get_suite(suite)
    task = lenv.get_task(suite_obj, task_id)
    init_states = lenv.get_task_init_states(suite_obj, task_id)
    if settings.states is not None and max(settings.states) >= len(init_states):
        raise UserError(f"--states: {suite} task {task_id} stores {len(init_states)} init states (0.."
                        f"{len(init_states) - 1}); got {max(settings.states)}")
    idx = range(len(init_states)) if settings.states is None else settings.states
    t0 = time.perf_counter()
    env = lenv.make_physics_env(suite_obj, task_id, hard_reset=settings.hard_reset)
    try:
        inner = lenv.inner_env(env)
        preds = [list(p) for p in inner.parsed_problem["initial_state"]]
        kinds = [premise_kind(inner, p) for p in preds]
        states = []
        for i in idx:
            row = check_state(env, init_states[i], settings.seed + i, settings.settle_steps)
            states.append({"state": int(i), **row})
        goal = [predicate_text(p) for p in inner.parsed_problem["goal_state"]]
    finally:
        lenv.close_env(env)
    return {"format": FORMAT_VERSION, "stack": versions.sim_versions(), "settings": _settings_dict(settings),
            "suite": suite, "task_id": int(task_id), "task": task.name, "n_stored": int(len(init_states)),
            "premises": [predicate_text(p) for p in preds], "kinds": kinds, "goal": goal,
            "seconds": round(time.perf_counter() - t0, 2), "states": states}


def _settings_dict(settings: CheckSettings) -> dict:
    d = asdict(settings)
    d["states"] = None if settings.states is None else list(settings.states)
    return d


def load_done(path: Path, settings: CheckSettings) -> Optional[dict]:
    """The stored result of a task when it was made under this stack and these settings."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    same_stack = data.get("stack") == versions.sim_versions()
    stored = data.get("settings", {})
    stored = {**stored, "states": stored.get("states")}
    if data.get("format") == FORMAT_VERSION and same_stack and stored == _settings_dict(settings):
        return data
    return None


def _run_one(job: tuple[str, int, CheckSettings, str]) -> tuple[str, int, float]:
    suite, task_id, settings, path = job
    result = check_task(suite, task_id, settings)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result, indent=1))
    return suite, task_id, result["seconds"]


def run_checks(suites: Sequence[str], out: Path, settings: CheckSettings, tasks: Optional[Sequence[int]] = None,
               workers: int = 1) -> Path:
    """Check every task of `suites` (or only `tasks`), in `workers` processes; returns the stack folder."""
    from libero_eval import env as lenv

    tag = stack_tag()
    jobs = []
    for suite in suites:
        n = lenv.get_suite(suite).n_tasks
        if tasks is not None and max(tasks) >= n:
            raise UserError(f"--tasks: suite {suite} has tasks 0..{n - 1}; got {max(tasks)}")
        for task_id in (range(n) if tasks is None else tasks):
            path = task_path(out, tag, suite, task_id)
            if load_done(path, settings) is None:
                jobs.append((suite, int(task_id), settings, str(path)))
    log.info("%s: %d task(s) to check under %s", out, len(jobs), versions.format_versions())
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            _log_done(*_run_one(job))
    else:
        with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            for done in pool.imap_unordered(_run_one, jobs):
                _log_done(*done)
    return Path(out) / tag


def _log_done(suite: str, task_id: int, seconds: float) -> None:
    log.info("checked %s task %d (%.0f s)", suite, task_id, seconds)


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m libero_eval.check_init_states", description=__doc__.split("\n\n")[0])
    p.add_argument("--suites", nargs="+", default=list(STANDARD_SUITES),
                   help="suites to check (default: the four standard ones; any evaluable suite, libero_90 too)")
    p.add_argument("--tasks", nargs="+", type=int, default=None, help="task ids (default: every task)")
    p.add_argument("--states", nargs="+", type=int, default=None, help="init-state indices (default: all stored)")
    p.add_argument("--out", default="outs/init_states", help="results root; one folder per simulator stack")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (one task each)")
    p.add_argument("--hard_reset", action="store_true", help="rebuild the model at every reset, as evaluation does "
                   "(same states as the default soft reset, 4x slower)")
    p.add_argument("--config", default=None, help="preset whose eval.seed / eval.num_steps_wait apply (default base.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="eval.KEY=VALUE", help="override the preset")
    p.add_argument("--compare", nargs="+", default=None, metavar="STACK_DIR",
                   help="compare finished stack folders (no simulator): the first is the reference")
    p.add_argument("--threshold_mm", type=float, default=None,
                   help="settled-pose difference that counts as moved (default: derived from the data)")
    p.add_argument("--md", default=None, help="also write the markdown table here")
    return p


def _settings(args) -> CheckSettings:
    from configs.loader import BASE_PRESET, load_typed
    from libero_eval import env as lenv

    ecfg = load_typed(args.config or BASE_PRESET, args.set).eval
    settle = lenv.NUM_STEPS_WAIT if ecfg.num_steps_wait is None else int(ecfg.num_steps_wait)
    states = None if args.states is None else tuple(sorted(set(args.states)))
    return CheckSettings(seed=int(ecfg.seed), settle_steps=settle, hard_reset=bool(args.hard_reset), states=states)


def _validate(args) -> None:
    for s in args.suites:
        check_suite(s, where="--suites", allowed=EVAL_SUITES)
    if args.workers < 1:
        raise UserError(f"--workers is {args.workers}; expected at least 1")
    for flag, values in (("--tasks", args.tasks), ("--states", args.states)):
        if values is not None and min(values) < 0:
            raise UserError(f"{flag}: indices start at 0, got {min(values)}")
    if args.threshold_mm is not None and not args.threshold_mm > 0:
        raise UserError(f"--threshold_mm is {args.threshold_mm}; expected a positive number of millimetres")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    _validate(args)
    out = None if args.compare else output_dir(args.out, "--out")
    md = None if args.md is None else output_file(args.md, "--md")
    if args.compare:
        stacks = {Path(d).name: report.load_stack(Path(d)) for d in args.compare}
        text, _ = report.compare_markdown(stacks, reference=Path(args.compare[0]).name, threshold_mm=args.threshold_mm)
    else:
        folder = run_checks(args.suites, out, _settings(args), tasks=args.tasks, workers=args.workers)
        text = report.stack_markdown(report.load_stack(folder))
        atomic_write_text(folder / "summary.md", text)
    print(text)
    if md is not None:
        atomic_write_text(md, text)
    return 0


if __name__ == "__main__":
    exit_cli(main)
