"""Which tasks' goals hold in a scene, by LIBERO's own predicates.

A LIBERO env's ``done`` is its own task's ``(:goal ...)``: every predicate of
``parsed_problem["goal_state"]`` through the env's ``_eval_predicate``. In libero_goal the ten
tasks share one scene, so any task's goal can be evaluated the same way in any task's env; that is
how the instruction-swap diagnostic (``libero_eval.instruction_swap``) tells which task a policy
actually did. The goals are parsed from each task's BDDL file by LIBERO's parser.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

from libero_eval import env as lenv

Goal = list[list[str]]  # the conjunction of one task's goal predicates, e.g. [["on", "bowl_1", "plate_1"]]


def task_goal(suite, task_id: int) -> Goal:
    """The ``(:goal ...)`` predicates of a task's BDDL file, parsed by LIBERO's ``robosuite_parse_problem``."""
    lenv.libero_api()  # LIBERO's config and GL settings first
    from libero.libero.envs.bddl_utils import robosuite_parse_problem

    problem = robosuite_parse_problem(str(lenv.task_bddl_path(suite, task_id)))
    return [[str(term) for term in pred] for pred in problem["goal_state"]]


def goal_holds(inner, goal: Goal) -> Optional[bool]:
    """Every predicate of ``goal`` holds in ``inner`` (the robosuite env under LIBERO's wrapper);
    None when the scene lacks one of its objects (then it is not this scene's task)."""
    try:
        return all(bool(inner._eval_predicate(list(pred))) for pred in goal)
    except KeyError:
        return None


def goals_holding(inner, goals: Mapping[str, Goal]) -> list[str]:
    """The labels of ``goals`` whose goal holds now, in ``goals``' order."""
    return [label for label, goal in goals.items() if goal_holds(inner, goal)]


def missing_objects(inner, goals: Mapping[str, Goal]) -> dict[str, list[str]]:
    """{label: objects its goal names that the scene lacks}, for the goals that cannot be evaluated."""
    known = set(inner.object_states_dict)
    out = {}
    for label, goal in goals.items():
        missing = sorted({term for pred in goal for term in pred[1:] if term not in known})
        if missing:
            out[label] = missing
    return out


def suite_goals(suite, task_ids: Sequence[int]) -> dict[str, Goal]:
    """{task name: goal} of the given tasks of a suite."""
    return {lenv.get_task(suite, t).name: task_goal(suite, t) for t in task_ids}
