"""Shared test fixtures: the reference data in tests/fixtures/ (see its README) and tiny assets.

Everything the tests read lives inside the repository, so a clone anywhere tests itself.
"""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "fixtures"

os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def libero_fixture_file() -> Path:
    return FIXTURES / "libero_format" / "put_the_bowl_on_the_stove_demo.hdf5"


@pytest.fixture(scope="session")
def tiny_encoders_dir(tmp_path_factory) -> Path:
    """Tiny random SigLIP + T5 (+ tokenizer) saved with save_pretrained, built once per session."""
    from scripts.make_tiny_encoders import main as make_tiny_encoders

    out = tmp_path_factory.mktemp("tiny_encoders")
    make_tiny_encoders(["--out", str(out)])
    return out


@pytest.fixture(scope="session")
def fixture_suite(tmp_path_factory, libero_fixture_file) -> dict:
    """A one-suite datasets table over the LIBERO-made fixture file, with its statistics."""
    import json

    from scripts.compute_dataset_stats import main as compute_stats

    root = tmp_path_factory.mktemp("fixture_suite")
    (root / "fix").mkdir()
    (root / "fix" / libero_fixture_file.name).symlink_to(libero_fixture_file)
    suites = root / "suites.json"
    suites.write_text(json.dumps({"fix": {"path": str(root / "fix"), "sample_weight": 1.0, "layout": "raw"}}))
    stats = root / "stats.json"
    compute_stats(["--datasets_config", str(suites), "--out", str(stats), "--config", "configs/tiny.yaml",
                   "--cache_dir", str(root / "cache")])
    return {"suites": suites, "stats": stats, "root": root}


# Simulator-made demo files (libero_eval.demos.motion), built once per session and shared.
SIM_DEMO_SUITE = "libero_goal"
SIM_DEMO_TASK = 1  # put_the_bowl_on_the_stove: the same task as the LIBERO-made fixture file
SIM_DEMO_EPISODES = 2
SIM_DEMO_LENGTH_SCALE = 0.7  # ~35 recorded steps per demo keeps the simulator time small


@pytest.fixture(scope="session")
def sim_demo_dir(tmp_path_factory) -> Path:
    """Root with ``libero_goal/put_the_bowl_on_the_stove_demo.hdf5``: 2 raw-layout demos (128x128)
    rolled out in the LIBERO simulator, written in LIBERO's create_dataset layout."""
    from libero_eval.demos.motion import make_dataset

    root = tmp_path_factory.mktemp("sim_demos")
    make_dataset(SIM_DEMO_SUITE, [SIM_DEMO_TASK], SIM_DEMO_EPISODES, root, fmt="raw", seed=0,
                 length_scale=SIM_DEMO_LENGTH_SCALE, progress=False)
    return root


@pytest.fixture(scope="session")
def sim_demo_no_noops_dir(tmp_path_factory) -> Path:
    """Same task and episodes in the OpenVLA-style no-noops layout (256x256, obs before action)."""
    from libero_eval.demos.motion import make_dataset

    root = tmp_path_factory.mktemp("sim_demos_no_noops")
    make_dataset(SIM_DEMO_SUITE, [SIM_DEMO_TASK], SIM_DEMO_EPISODES, root, fmt="no_noops", seed=0,
                 length_scale=SIM_DEMO_LENGTH_SCALE, progress=False)
    return root


def fake_observation(res: int = 32, seed: int = 0) -> dict:
    """A LIBERO env observation with random camera images and a fixed robot state (no simulator)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return {
        "agentview_image": rng.integers(0, 255, (res, res, 3), dtype=np.uint8),
        "robot0_eye_in_hand_image": rng.integers(0, 255, (res, res, 3), dtype=np.uint8),
        "robot0_eef_pos": np.array([-0.1, 0.0, 1.0]), "robot0_eef_quat": np.array([1.0, 0.0, 0.0, 0.0]),
        "robot0_gripper_qpos": np.array([0.03, -0.03]), "robot0_joint_pos": np.zeros(7),
    }
