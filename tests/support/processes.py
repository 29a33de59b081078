"""Child processes of the test run: each in a process group of its own, all killed when the run
ends — and, should pytest itself die (a segfault in native code), killed by the kernel, which
sends SIGKILL to a child whose parent died (PR_SET_PDEATHSIG). Celery's pool processes and the
launcher's children carry the same signal, so nothing of a test run outlives it."""

import atexit
import contextlib
import os
import signal
import subprocess
from typing import Any

from shared.core.processes import die_with_parent

_started: list[subprocess.Popen[bytes]] = []


def spawn(command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start `command` in its own process group, tied to this process's life.

    The parent-death signal fires when the spawning *thread* ends: spawn from the main thread."""
    process = subprocess.Popen(
        command, start_new_session=True, preexec_fn=die_with_parent, **kwargs
    )
    _started.append(process)
    return process


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and everything in its group, and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def stop(process: subprocess.Popen[bytes], *, grace: float = 20) -> None:
    """SIGTERM, then the whole group SIGKILLed after `grace` seconds (or at once if it ended)."""
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    kill_group(process)  # also whatever it left behind in its group


@atexit.register
def kill_all() -> None:
    """End every process the run started that is still there."""
    for process in _started:
        kill_group(process)
    _started.clear()
