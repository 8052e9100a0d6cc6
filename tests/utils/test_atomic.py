"""utils.atomic: the one atomic-write helper every module uses."""
import os

import pytest

from utils.atomic import atomic_path, atomic_write_bytes, atomic_write_text


def test_write_text_and_bytes(tmp_path):
    atomic_write_text(tmp_path / "a.json", "{}\n")
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01", fsync=True)
    assert (tmp_path / "a.json").read_bytes() == b"{}\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.bin"]


def test_failure_keeps_old_file_and_removes_temp(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_body_that_writes_nothing_leaves_target(tmp_path):
    target = tmp_path / "f.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("discarded")
        tmp.unlink()
    assert not target.exists() and not list(tmp_path.iterdir())


def test_temp_is_hidden_next_to_target_and_umask_permissions(tmp_path):
    target = tmp_path / "x.hdf5"
    with atomic_path(target, fsync=True) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".x.hdf5.") and tmp.suffix == ".tmp"
        tmp.write_text("data")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
