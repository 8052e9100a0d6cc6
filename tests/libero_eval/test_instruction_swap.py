"""The instruction-swap diagnostic (libero_eval.instruction_swap, libero_eval.goals): another task's
goal evaluated by LIBERO's predicates in a shared scene, trials that end on the prompted task's goal,
and the matrix that tells a policy following the words from one following the scene."""
import numpy as np
import pytest

from libero_eval.instruction_swap import SwapPlan, format_matrix, swap_matrix, swap_summary

BOWL_ON_STOVE, TURN_ON_STOVE = 1, 7  # libero_goal: one scene, two goals


def _row(init, instr, achieved):
    return {"suite": "libero_goal", "init_task": str(init), "instruction_task": str(instr), "trial": "0",
            "seed": "7", "achieved": ";".join(str(a) for a in achieved), "followed": str(int(instr in achieved))}


def test_matrix_tells_a_policy_that_follows_the_words_from_one_that_follows_the_scene():
    tasks = (1, 7)
    words = [_row(x, y, [y]) for x in tasks for y in tasks]  # does what it is told
    scene = [_row(x, y, [x]) for x in tasks for y in tasks]  # does the init state's task
    m_words, m_scene = swap_matrix(words, tasks), swap_matrix(scene, tasks)
    np.testing.assert_array_equal(m_words, [[2, 0, 0], [0, 2, 0]])  # a strong diagonal
    np.testing.assert_array_equal(m_scene, [[1, 1, 0], [1, 1, 0]])  # identical rows
    assert swap_summary(words)["swapped"] == {"trials": 2, "evaluable": 2, "instruction_goal": 2,
                                              "init_task_goal": 0, "errors": 0}
    assert swap_summary(scene)["swapped"] == {"trials": 2, "evaluable": 2, "instruction_goal": 0,
                                              "init_task_goal": 2, "errors": 0}
    # nothing achieved -> "none"; two goals at once count in both columns
    m = swap_matrix([_row(1, 7, []), _row(7, 1, [1, 7])], tasks)
    np.testing.assert_array_equal(m, [[1, 1, 0], [0, 0, 1]])
    text = format_matrix(m, tasks, ["put_the_bowl_on_the_stove", "turn_on_the_stove"])
    assert text.splitlines()[1].split() == ["T1", "T7", "none"]


def test_errored_trials_count_nowhere_and_absent_objects_are_not_scored_as_failures():
    """libero_object's scenes differ: a prompt naming an object the scene lacks leaves ``followed``
    empty; an errored trial is neither "none" nor a failure, and a rerun replaces it."""
    tasks = (0, 3)
    absent = dict(_row(0, 3, [0]), followed="")  # told to take the bbq sauce in a scene without one
    failed = dict(_row(0, 3, []), error="simulator error: boom")
    rows = [_row(3, 0, [0]), absent, failed]
    np.testing.assert_array_equal(swap_matrix(rows, tasks), [[1, 0, 0], [1, 0, 0]])
    assert swap_summary(rows)["swapped"] == {"trials": 2, "evaluable": 1, "instruction_goal": 1,
                                             "init_task_goal": 1, "errors": 1}


def test_a_swap_needs_two_tasks():
    with pytest.raises(ValueError, match="at least 2 tasks"):
        SwapPlan("libero_goal", (1,), 1, (7,), 300, 10)


@pytest.mark.sim
@pytest.mark.slow
def test_another_tasks_goal_is_evaluated_in_the_shared_scene_and_ends_the_trial():
    """Task 1's init state (bowl on the stove), the scripted expert of task 7 (turn on the stove) driving
    the simulator worker's env one step at a time: the worker reports task 7's goal, not task 1's, and
    the trial is done when task 7's goal holds (the env's own ``done`` is task 1's)."""
    from libero_eval import env as lenv
    from libero_eval.demos.expert import make_expert
    from libero_eval.goals import suite_goals, task_goal
    from libero_eval.sim_worker import _Sim
    from policy.libero_mapping import encode_actions

    suite = lenv.get_suite("libero_goal")
    goals = suite_goals(suite, [BOWL_ON_STOVE, TURN_ON_STOVE])
    assert task_goal(suite, TURN_ON_STOVE) == [["turnon", "flat_stove_1"]]
    bowl, stove = lenv.get_task(suite, BOWL_ON_STOVE).name, lenv.get_task(suite, TURN_ON_STOVE).name
    sim = _Sim()
    try:
        sim.start({"suite": "libero_goal", "task_id": BOWL_ON_STOVE, "seed": 7, "resolution": 32,
                   "init_state": lenv.get_task_init_states(suite, BOWL_ON_STOVE)[0], "settle_steps": 10,
                   "max_steps": 300, "goals": goals, "stop_goal": stove})
        expert = make_expert(sim.env, sim.obs, "libero_goal", stove, np.random.default_rng(0))
        reply = {"done": False}
        while not reply["done"] and sim.steps < 300:
            vec = encode_actions(np.asarray(expert(sim.obs), np.float64), None, "delta")
            reply = sim.execute({"chunk": vec[None], "encoding": "delta"})
        assert reply["done"] and reply["achieved"] == [stove], (sim.steps, reply["achieved"])
        # the swapped goal ended the trial: a further segment executes nothing
        assert sim.execute({"chunk": vec[None], "encoding": "delta"})["dones"] == []
    finally:
        sim.close_env()
    with pytest.raises(ValueError, match="not one of the tracked goals"):
        other = _Sim()
        try:
            other.start({"suite": "libero_goal", "task_id": BOWL_ON_STOVE, "seed": 7, "resolution": 32,
                         "init_state": lenv.get_task_init_states(suite, BOWL_ON_STOVE)[0], "settle_steps": 0,
                         "max_steps": 5, "goals": {bowl: goals[bowl]}, "stop_goal": stove})
        finally:
            other.close_env()


@pytest.mark.sim
def test_a_goal_naming_an_object_the_scene_lacks_is_reported_not_raised():
    """libero_object task 0's scene has no bbq sauce (task 3's object): the worker tracks task 0's goal,
    reports task 3's as unavailable and keeps stepping (the trial would run its whole budget)."""
    from libero_eval import env as lenv
    from libero_eval.goals import suite_goals
    from libero_eval.sim_worker import _Sim
    from policy.libero_mapping import encode_actions

    suite = lenv.get_suite("libero_object")
    goals = suite_goals(suite, [0, 3])
    soup, bbq = lenv.get_task(suite, 0).name, lenv.get_task(suite, 3).name
    sim = _Sim()
    try:
        sim.start({"suite": "libero_object", "task_id": 0, "seed": 7, "resolution": 32, "settle_steps": 0,
                   "init_state": lenv.get_task_init_states(suite, 0)[0], "max_steps": 50, "goals": goals,
                   "stop_goal": bbq})
        still = encode_actions(np.zeros((2, 7)), None, "delta")
        reply = sim.execute({"chunk": still, "encoding": "delta"})
        assert reply["unavailable"] == [bbq] and list(sim.goals) == [soup]
        assert not reply["done"] and len(reply["dones"]) == 2 and reply["achieved"] == []
    finally:
        sim.close_env()


@pytest.mark.sim
@pytest.mark.slow
def test_cli_writes_every_pair_once_and_resumes(tmp_path, tiny_encoders_dir, capsys):
    """``eval_rdt_libero --instruction_swap`` on a random tiny checkpoint: one row per (init task,
    instruction task, trial), the matrix CSV and PNG, and a rerun that finds nothing left to do."""
    import csv

    from libero_eval import eval_rdt_libero as ev
    from scripts.bench_eval import make_tiny_checkpoint

    ck = make_tiny_checkpoint(tmp_path / "run" / "checkpoint-1", tiny_encoders_dir)
    argv = ["--checkpoint", str(ck), "--suite", "libero_goal", "--task_ids", str(BOWL_ON_STOVE), str(TURN_ON_STOVE),
            "--num_trials", "1", "--max_steps", "4", "--instruction_swap", "--out_root", str(tmp_path / "outs"),
            "--video", "none", "--no_progress", "--run_name", "swap"]
    assert ev.main(argv) == 0
    mdir = tmp_path / "outs" / "metrics" / "swap"
    rows = list(csv.DictReader(open(mdir / "swap_trials.csv")))
    assert sorted((r["init_task"], r["instruction_task"]) for r in rows) == [("1", "1"), ("1", "7"), ("7", "1"),
                                                                            ("7", "7")]
    assert {r["instruction"] for r in rows if r["instruction_task"] == "7"} == {"turn on the stove"}
    assert all(r["steps"] == "4" and r["error"] == "" for r in rows)
    assert (mdir / "swap_matrix.png").stat().st_size > 0
    matrix = list(csv.DictReader(open(mdir / "swap_matrix.csv")))
    assert [sum(int(r[c]) for c in ("T1", "T7", "none")) for r in matrix] == [2, 2]
    capsys.readouterr()
    assert ev.main(argv) == 0  # resumed: every pair is already there
    assert len(list(csv.DictReader(open(mdir / "swap_trials.csv")))) == 4
    rc = ev.main([*argv[:-2], "--run_name", "swap2", "--suites", "libero_goal", "libero_object"])
    assert rc == 2 and "--instruction_swap takes one suite" in capsys.readouterr().err
