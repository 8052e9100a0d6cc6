"""utils.allocator: the glibc calls the benchmarks and the memory checks rely on do run here (the CI
machine is glibc Linux), and a missing C library degrades to False, never an exception."""
import subprocess
import sys

from utils import allocator


def test_trim_and_steady_run_on_glibc():
    assert allocator.libc() is not None
    assert allocator.trim() is True
    # steady() changes the process's allocator for good: in a child process
    out = subprocess.run([sys.executable, "-c", "from utils import allocator; print(allocator.steady())"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


def test_without_a_c_library_both_say_false(monkeypatch):
    monkeypatch.setattr(allocator, "libc", lambda: None)
    assert allocator.trim() is False and allocator.steady() is False
