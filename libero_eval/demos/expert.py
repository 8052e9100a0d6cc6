"""The scripted expert that solves LIBERO tasks from privileged simulator state: which tasks it
has a plan for, the expert of one episode, and its success rate under the evaluation protocol.

The machinery is `libero_eval.demos.waypoints`; the plans are per suite (`goal_plans`,
`object_plans`: ``PLANS`` keyed by task name). Extending the expert to a task means adding its plan
to its suite's ``PLANS`` (a new suite: a new plans module in ``PLAN_MODULES``).

`evaluate` measures the success rate on a task's standard init states (the evaluation protocol:
reset, ``reset_to_state``, ``NUM_STEPS_WAIT`` settle steps, at most the suite's step budget,
success = the env's ``done``), or on ``env.reset()`` placements with ``random_resets`` (what the
expert datasets are made from). The figures are in the plans modules' docstrings.
"""
from __future__ import annotations

import time

import numpy as np

from libero_eval import env as lenv
from libero_eval.demos import goal_plans, object_plans
from libero_eval.demos.recording import start_episode
from libero_eval.demos.waypoints import Context, Expert, PlanBuilder, Scene, Variation

PLAN_MODULES = {"libero_goal": goal_plans, "libero_object": object_plans}
# (suite, task name) -> plan builder
TASKS: dict[tuple[str, str], PlanBuilder] = {
    (suite, name): build for suite, module in PLAN_MODULES.items() for name, build in module.PLANS.items()
}


# A plan absent from its module's ``REVISIONS``, and demos or figures from before revisions existed.
FIRST_REVISION = 1


def plan_revision(suite: str, task_name: str) -> int:
    """The revision of a task's plan (its module's ``REVISIONS``, `FIRST_REVISION` when absent): demos
    and expert figures carry it, so that caches made by an older plan are recognised as stale."""
    check_supported(suite, task_name)
    return int(getattr(PLAN_MODULES[suite], "REVISIONS", {}).get(task_name, FIRST_REVISION))


def supported_tasks(suite: str) -> list[str]:
    return [name for (s, name) in TASKS if s == suite]


def check_supported(suite: str, task_name: str) -> None:
    if (suite, task_name) not in TASKS:
        raise ValueError(f"no scripted expert for {suite}/{task_name}; supported: {supported_tasks(suite)}")


def make_expert(env, obs: dict, suite: str, task_name: str, rng: np.random.Generator,
                variation: Variation | None = None, max_steps: int | None = None) -> Expert:
    """The expert for one episode, built from the current (settled) scene."""
    key = (suite, task_name)
    check_supported(suite, task_name)
    var = variation if variation is not None else Variation.sample(rng)
    ctx = Context(Scene(env), obs, rng, var)
    plan = TASKS[key](ctx)
    return Expert(plan, ctx, max_steps if max_steps is not None else lenv.max_steps(suite))


# ------------------------------------------------------------------------------------------------
# Evaluation
# ------------------------------------------------------------------------------------------------
def resolve_task(suite_obj, task: str | int) -> int:
    """Task id from an id, a task name or an instruction."""
    s = str(task).strip()
    if s.isdigit():
        lenv.get_task(suite_obj, int(s))
        return int(s)
    key = s.replace(" ", "_").lower()
    for i in range(suite_obj.n_tasks):
        if suite_obj.get_task(i).name.lower() == key:
            return i
    raise ValueError(f"unknown task {task!r} in {suite_obj.name}")


def run_episode(env, suite: str, task_name: str, rng: np.random.Generator, init_state: np.ndarray | None,
                variation: Variation | None = None) -> dict:
    """One closed-loop expert episode (no recording). ``init_state`` None = keep env.reset()'s."""
    obs = start_episode(env, init_state)  # reset (+ init state), NUM_STEPS_WAIT settle steps
    expert = make_expert(env, obs, suite, task_name, rng, variation)
    done, t = False, 0
    for t in range(1, expert.length + 1):
        obs, _, done, _ = env.step(expert(obs))
        if done:
            break
    return {"success": bool(done), "steps": t, "phase": expert.phase, "phases": expert.phase_log}


def evaluate(suite: str, task: str | int, n_init: int = 50, random_resets: int = 0, seed: int = 0,
             verbose: bool = False) -> dict:
    suite_obj = lenv.get_suite(suite)
    task_id = resolve_task(suite_obj, task)
    name = suite_obj.get_task(task_id).name
    env = lenv.make_env(suite_obj, task_id, seed=seed, use_camera_obs=False)
    results = []
    t0 = time.perf_counter()
    try:
        if random_resets:
            for ep in range(random_resets):
                env.seed(int(np.random.SeedSequence([seed, task_id, ep, 1]).generate_state(1)[0]))
                rng = np.random.default_rng([seed, task_id, ep])
                results.append(run_episode(env, suite, name, rng, None))
                if verbose:
                    print(ep, results[-1], flush=True)
        else:
            init_states = lenv.get_task_init_states(suite_obj, task_id)
            for k in range(min(n_init, len(init_states))):
                rng = np.random.default_rng([seed, task_id, k])
                results.append(run_episode(env, suite, name, rng, init_states[k]))
                if verbose:
                    print(k, results[-1], flush=True)
    finally:
        lenv.close_env(env)
    dt = time.perf_counter() - t0
    succ = [r["success"] for r in results]
    steps = [r["steps"] for r in results if r["success"]]
    return {
        "suite": suite, "task_id": task_id, "task": name, "episodes": len(results),
        "successes": int(sum(succ)), "success_rate": float(np.mean(succ)) if succ else 0.0,
        "mean_steps_success": float(np.mean(steps)) if steps else float("nan"),
        "max_steps_success": int(max(steps)) if steps else 0,
        "failures": [i for i, s in enumerate(succ) if not s],
        "fail_phases": [results[i]["phase"] for i, s in enumerate(succ) if not s],
        "wall_s": dt,
    }
