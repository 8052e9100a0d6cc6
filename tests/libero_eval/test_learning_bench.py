"""The learning bench scores a multi-task policy as a user scores a suite: one libero_eval run over
all its tasks (one report with per-task Wilson intervals and the mean), split back per task, and
every stage's wall time kept in the run folder."""
import csv
import json

import pytest

from libero_eval import learning_bench as lb
from scripts.bench_eval import make_tiny_checkpoint

BOWL_ON_STOVE, TURN_ON_STOVE = 1, 7


def test_stage_times_survive_a_resumed_run_and_include_per_task_folders(tmp_path):
    lb.record_stage(tmp_path, "train 10 steps", 12.34)
    lb.record_stage(tmp_path, "eval h8: 2 tasks x 1 trials", 5.0)
    lb.record_stage(tmp_path / "turn_on_the_stove", "train 10 steps", 7.0)
    lb.record_stage(tmp_path, "eval h8: 2 tasks x 1 trials", 0.5)  # resumed from its cached rows: adds
    assert lb.stage_times(tmp_path) == {"train 10 steps": 12.3, "eval h8: 2 tasks x 1 trials": 5.5,
                                        "turn_on_the_stove: train 10 steps": 7.0}


@pytest.mark.sim
@pytest.mark.slow
def test_a_multitask_policy_is_scored_in_one_suite_run(tmp_path, tiny_encoders_dir):
    ck = make_tiny_checkpoint(tmp_path / "run" / "checkpoint-1", tiny_encoders_dir)
    args = lb.build_parser().parse_args(["--num_envs", "1", "--max_steps", "4"])
    tasks = lb.resolve_tasks([f"libero_goal/{BOWL_ON_STOVE}", f"libero_goal/{TURN_ON_STOVE}"])
    res = lb.evaluate(ck, tasks, args, horizon=8, trials=2, run_dir=tmp_path, tag="h8")

    assert set(res) == {t.key for t in tasks} | {"report"}
    assert [res[t.key]["n"] for t in tasks] == [2, 2]
    mdir = tmp_path / "eval" / "metrics" / "h8"  # one run, named by the tag alone
    rows = list(csv.DictReader(open(mdir / "trials.csv")))
    assert sorted((r["task_id"], r["trial"]) for r in rows) == [("1", "0"), ("1", "1"), ("7", "0"), ("7", "1")]
    for t in tasks:  # the split follows the rows' task ids
        assert res[t.key]["successes"] == sum(r["success"] == "1" for r in rows if r["task_id"] == str(t.task_id))
    report = (mdir / "report.md").read_text()
    assert res["report"] == str(mdir / "report.md") and (mdir / "report.png").stat().st_size > 0
    assert "| libero_goal | 1 |" in report and "| libero_goal | 7 |" in report and "| mean |" in report
    assert json.loads((tmp_path / lb.STAGE_TIMES).read_text())["eval h8: 2 tasks x 2 trials"] > 0


def test_demo_caches_and_runs_are_named_by_the_post_success_steps_and_arm_noise(tmp_path):
    """Demos recorded with another post-success count or arm reset noise are never reused silently:
    the cache and run names carry both (none for 0, the caches made before the options), and a
    cached file recorded otherwise is refused with its path."""
    import h5py

    from configs.errors import UserError
    from libero_eval.demos.recording import POST_SUCCESS_STEPS, ROBOT_INIT_NOISE

    cfg = {"dataset": {"action_encoding": "abs_goal"}, "train": {"position_loss_weight": 1.0}}
    args = lb.build_parser().parse_args([])
    assert args.post_success_steps == POST_SUCCESS_STEPS == 10
    assert args.robot_init_noise == ROBOT_INIT_NOISE == 0.02
    assert lb.run_name(args, cfg, 100, []).endswith("_seed0_post10_qnoise0.02")
    old = lb.build_parser().parse_args(["--post_success_steps", "0", "--robot_init_noise", "0", "--multitask"])
    assert lb.run_name(old, cfg, 100, []) == "raw_abs_goal_no_n40_s100_seed0_multitask"  # no tasks: no prefix
    path = tmp_path / "demo.hdf5"
    with h5py.File(path, "w") as f:
        f.create_group("data").attrs["generator_args"] = json.dumps({"seed": 0})  # written before the option
    lb.check_cached_demos(path, 0, 0.0)
    with pytest.raises(UserError, match=f"{path}: recorded with post_success_steps 0, asked for 10"):
        lb.check_cached_demos(path, 10, 0.0)
    with pytest.raises(UserError, match=f"{path}: recorded with robot_init_noise 0, asked for 0.02; .*"
                                        f"--robot_init_noise 0$"):
        lb.check_cached_demos(path, 0, 0.02)


def test_demos_and_runs_of_an_older_expert_plan_are_not_reused(tmp_path, monkeypatch, caplog):
    """A plan's revision (libero_eval.demos.expert.plan_revision) names the run once past 1, a cached
    demo file of an older revision is set aside (kept) so the task is recorded again, and a cached
    expert figure of an older revision is measured again."""
    import h5py

    from libero_eval.demos import expert as se

    cfg = {"dataset": {"action_encoding": "abs_goal"}, "train": {"position_loss_weight": 1.0}}
    args = lb.build_parser().parse_args(["--multitask"])
    plate, stove = (lb.Task("libero_goal", "put_the_bowl_on_the_plate", 8, 2),
                    lb.Task("libero_goal", "turn_on_the_stove", 7, 1))
    assert lb.run_name(args, cfg, 100, [plate, stove]).endswith("_seed0_post10_qnoise0.02_multitask_rev2-1")
    assert lb.run_name(args, cfg, 100, [stove]).endswith("_seed0_post10_qnoise0.02_multitask")
    # A position loss weight names the run whether a preset or --set gave it (once), so a run trained
    # with another weight is not resumed.
    weighted = {**cfg, "train": {"position_loss_weight": 100.0}}
    assert lb.run_name(args, weighted, 100, [stove]).endswith("_multitask_position_loss_weight-100")
    given = lb.build_parser().parse_args(["--multitask", "--set", "train.position_loss_weight=100", "--set",
                                          "train.learning_rate=0.002"])
    assert lb.run_name(given, weighted, 100, [stove]).endswith(
        "_multitask_position_loss_weight-100_learning_rate-0.002")
    assert lb.resolve_tasks(["libero_goal/8"])[0].plan_revision == se.plan_revision("libero_goal", plate.name) == 2

    def demo_file(name, generator_args):
        path = tmp_path / name
        with h5py.File(path, "w") as f:
            f.create_group("data").attrs["generator_args"] = json.dumps(generator_args)
        return path

    old = demo_file("put_the_bowl_on_the_plate_demo.hdf5", {"seed": 0})  # before revisions: 1
    with caplog.at_level("WARNING"):
        lb.set_aside_stale_demos(old, plate.plan_revision)
    assert not old.exists() and (tmp_path / "put_the_bowl_on_the_plate_demo.rev1.hdf5").is_file()
    assert "revision 1 of the expert plan, now 2" in caplog.text
    current = demo_file("turn_on_the_stove_demo.hdf5", {"plan_revision": 1})
    lb.set_aside_stale_demos(current, stove.plan_revision)
    assert current.is_file()

    calls = []
    monkeypatch.setattr(se, "evaluate", lambda suite, task_id, n_init: calls.append(task_id) or
                        {"successes": n_init, "episodes": n_init})
    cached = tmp_path / "expert_success" / "libero_goal__put_the_bowl_on_the_plate__4.json"
    cached.parent.mkdir()
    cached.write_text(json.dumps({"successes": 1, "n": 4}))  # measured before revisions
    assert lb.expert_success(plate, 4, tmp_path) == {"successes": 4, "n": 4, "plan_revision": 2}
    assert lb.expert_success(plate, 4, tmp_path)["successes"] == 4 and calls == [8]


def test_runs_of_other_tasks_never_share_a_folder():
    """A run folder holds the language embeddings, statistics and checkpoints of its tasks: a run of
    the cream cheese after one of the stove (same settings) must not find the stove's there."""
    cfg = {"dataset": {"action_encoding": "abs_goal"}, "train": {"position_loss_weight": 1.0}}
    args = lb.build_parser().parse_args([])
    stove, cream = (lb.Task("libero_goal", "turn_on_the_stove", 7, 1),
                    lb.Task("libero_goal", "put_the_cream_cheese_in_the_bowl", 6, 1))
    soup = lb.Task("libero_object", "pick_up_the_alphabet_soup_and_place_it_in_the_basket", 0, 1)
    names = [lb.run_name(args, cfg, 100, ts) for ts in ([stove], [cream], [stove, cream], [cream, stove])]
    assert len(set(names)) == 4, names
    assert names[2].startswith("goal7-6_raw_abs_goal_no_n40_s100_seed0")
    assert lb.run_name(args, cfg, 100, [cream, soup]).startswith("goal6_object0_raw_")


def test_a_training_seed_of_its_own_keeps_the_demos_and_names_the_run():
    """--train_seed trains again on the same cached demos (named by --seed) in a run folder of its own."""
    cfg = {"dataset": {"action_encoding": "abs_goal"}, "train": {"position_loss_weight": 1.0}}
    stove = lb.Task("libero_goal", "turn_on_the_stove", 7, 1)
    base = lb.build_parser().parse_args([])
    other = lb.build_parser().parse_args(["--train_seed", "1"])
    same = lb.build_parser().parse_args(["--train_seed", "0"])
    assert (lb.train_seed(base), lb.train_seed(other), lb.train_seed(same)) == (0, 1, 0)
    assert lb.run_name(other, cfg, 100, [stove]) == lb.run_name(base, cfg, 100, [stove]).replace(
        "_seed0_", "_seed0_tseed1_")
    assert lb.run_name(same, cfg, 100, [stove]) == lb.run_name(base, cfg, 100, [stove])
    assert lb.demo_suffix(other) == lb.demo_suffix(base)


def test_training_runs_with_the_training_seed(tmp_path, monkeypatch):
    cmds = []
    monkeypatch.setattr(lb, "run", lambda cmd, logfile, what: cmds.append(cmd))
    monkeypatch.setattr(lb, "write_datasets_table", lambda tasks, fmt, run_dir: run_dir / "table.json")
    args = lb.build_parser().parse_args(["--train_seed", "3", "--baseline"])
    lb.train([lb.Task("libero_goal", "turn_on_the_stove", 7, 1)], args, 10, tmp_path)
    sft = [c for c in cmds if "main_sft.py" in c]
    assert len(sft) == 2 and all(c[c.index("--seed") + 1] == "3" for c in sft)


def test_heldout_mse_keeps_the_last_mse_and_per_quantity_rmse(tmp_path):
    """results.json's held-out figures: the last logged sampled MSE and each quantity's RMSE, not the
    training loss."""
    lines = [{"step": 1, "loss": 0.5}, {"step": 2, "val/overall_avg_sample_mse": 0.3, "val/overall_avg_eef_position_rmse": 0.04},
             {"step": 3, "val/overall_avg_sample_mse": 0.2, "val/overall_avg_eef_position_rmse": 0.01,
              "val/overall_avg_sample_l2err": 0.9}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert lb.heldout_mse(tmp_path) == {"val/overall_avg_sample_mse": 0.2, "val/overall_avg_eef_position_rmse": 0.01}
