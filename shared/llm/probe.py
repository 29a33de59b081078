"""Try a native model in a child process before a worker relies on it.

llama.cpp is native code: on a CPU it was not tested on it can crash the process (a segfault) or
hang in its thread pool. A worker therefore never loads the embedded model before a child process
has loaded it with the same parameters and generated a few tokens within a time limit. Whatever
happens there — a signal, an error, a hang — ends in a `ProbeResult` with the reason.

    python -m shared.llm.probe [--model PATH] [--threads N]     # what the child runs
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from shared.core.processes import die_with_parent

PROBE_PROMPT = "Article: Our shop is open from 9 AM to 5 PM.\nCustomer: when are you open?\nAgent:"
PROBE_TOKENS = 8


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str
    seconds: float


def run_probe(command: list[str], *, timeout: float) -> ProbeResult:
    """Run a probe command in its own process group; its last stdout line is a JSON report."""
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return ProbeResult(
            ok=False,
            detail=f"the model did not load and answer within {timeout:.0f} s (hung; killed)",
            seconds=time.monotonic() - started,
        )
    seconds = time.monotonic() - started
    if process.returncode < 0:
        name = signal.Signals(-process.returncode).name
        return ProbeResult(
            ok=False, detail=f"the model crashed the probe process ({name})", seconds=seconds
        )
    if process.returncode != 0:
        lines = stderr.decode(errors="replace").strip().splitlines()
        reason = lines[-1] if lines else f"exit code {process.returncode}"
        return ProbeResult(ok=False, detail=f"the model failed to load: {reason}", seconds=seconds)
    try:
        report = json.loads(stdout.decode().strip().splitlines()[-1])
        detail = f"{report['model']} generated {report['tokens']} tokens in {seconds:.1f} s"
    except (ValueError, IndexError, KeyError):
        return ProbeResult(ok=False, detail="the probe printed no report", seconds=seconds)
    return ProbeResult(ok=True, detail=detail, seconds=seconds)


def probe_embedded(*, model_path: Path, threads: int, timeout: float) -> ProbeResult:
    """Load `model_path` as the embedded provider does and generate a few tokens, in a child."""
    command = [sys.executable, "-m", "shared.llm.probe", "--model", str(model_path),
               "--threads", str(threads)]  # fmt: skip
    return run_probe(command, timeout=timeout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from shared.llm.embedded import EmbeddedProvider

    try:
        provider = EmbeddedProvider(model_path=args.model, threads=args.threads)
        generation = provider.complete(PROBE_PROMPT, max_tokens=PROBE_TOKENS)
    except Exception as exc:  # reported to the parent, which decides
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"model": provider.model, "tokens": generation.tokens}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
