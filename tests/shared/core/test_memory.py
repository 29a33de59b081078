"""Freed memory given back: glibc's malloc thresholds fixed in a worker process."""

import platform
import subprocess
import sys

import pytest

from shared.core import memory
from shared.core.memory import give_back_freed_memory

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="mallopt's thresholds are glibc's")
def test_the_thresholds_are_fixed_on_glibc() -> None:
    # In a child: the setting lasts for the whole process, which must not be the test runner.
    code = "from shared.core.memory import give_back_freed_memory as g; print(g())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_without_glibc_nothing_is_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory.platform, "libc_ver", lambda: ("musl", ""))
    assert give_back_freed_memory() is False
