"""Shared test fixtures: locations of the read-only reference fixtures and tiny assets."""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RDT_SHARED_DIR", REPO_ROOT.parent / "shared"))

os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        raise FileNotFoundError(f"shared fixtures folder not found at {SHARED} (set RDT_SHARED_DIR)")
    return SHARED


@pytest.fixture(scope="session")
def libero_fixture_file(shared_dir) -> Path:
    return shared_dir / "fixtures" / "libero_format" / "put_the_bowl_on_the_stove_demo.hdf5"


@pytest.fixture(scope="session")
def tiny_encoders_dir(tmp_path_factory) -> Path:
    """Tiny random SigLIP + T5 (+ tokenizer) saved with save_pretrained, built once per session."""
    from scripts.make_tiny_encoders import main as make_tiny_encoders

    out = tmp_path_factory.mktemp("tiny_encoders")
    make_tiny_encoders(["--out", str(out)])
    return out
