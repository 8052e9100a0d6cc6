"""Closed-loop check of the abs_goal action encoding in the simulator (libero_eval/action_tracking.py, `python -m scripts.check_action_tracking`).

From a demo's first state (controller refreshed), executing abs_goal targets decoded against the
LIVE pose at every step must follow the recorded end-effector path as closely as replaying the
recorded 7-d actions does: the encoding loses nothing at execution time.
"""
import pytest

from libero_eval import action_tracking as cat

pytestmark = pytest.mark.sim

# Simulator-made demos replay bit-exactly open loop; closed loop only accumulates floating-point
# round-off of the encode/decode, amplified by contacts (measured 0.3-1.4 mm).
SIM_TOL_MM = 3.0
# The LIBERO-made fixture cannot be restarted exactly (contact warm-start is not in `states`);
# measured: open loop <= 9.1 mm, closed loop <= 2.9 mm.
FIXTURE_TOL_MM = 5.0


def test_tracking_on_simulator_demos(sim_demo_dir, sim_demo_no_noops_dir):
    for root in (sim_demo_dir, sim_demo_no_noops_dir):
        results = cat.check_file(root / "libero_goal" / "put_the_bowl_on_the_stove_demo.hdf5")
        assert len(results) == 2
        for r in results:
            assert r.open_loop_mm < 0.5, r  # controller refresh + synced gripper: exact restart
            assert r.closed_loop_mm < SIM_TOL_MM, r


@pytest.mark.slow
def test_tracking_on_libero_fixture(libero_fixture_file, capsys):
    results = cat.check_file(libero_fixture_file)
    assert len(results) == 3
    for r in results:
        assert r.closed_loop_mm < FIXTURE_TOL_MM, r
        assert r.closed_loop_mm <= r.open_loop_mm + 0.5, r  # feedback never tracks worse than replay
    cat.print_table(results)
    assert "abs_goal closed-loop mm" in capsys.readouterr().out
