"""Freed memory given back: glibc's malloc thresholds fixed in a worker process."""

import subprocess
import sys

import pytest

from shared.core import memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux's")
def test_the_thresholds_are_fixed_on_glibc() -> None:
    # In a child: the setting lasts for the whole process, which must not be the test runner.
    code = "from shared.core.memory import give_back_freed_memory as g; print(g())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_elsewhere_it_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory.sys, "platform", "darwin")
    assert memory.give_back_freed_memory() is False
