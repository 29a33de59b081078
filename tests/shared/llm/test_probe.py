"""The start-up probe of native models: a crash, a hang or a broken file in the child process
ends in a reason, never in the caller; a model that works passes."""

import sys
from pathlib import Path

import pytest

from shared.llm.embedded import default_model_path, embedded_available, pool_threads
from shared.llm.probe import probe_embedded, run_probe


def test_a_segfault_in_the_probe_is_reported_not_suffered() -> None:
    crash = [sys.executable, "-c", "import ctypes; ctypes.string_at(0)"]  # a real SIGSEGV
    result = run_probe(crash, timeout=30)
    assert not result.ok and "SIGSEGV" in result.detail


def test_a_hang_in_the_probe_is_cut_off_at_its_time_limit() -> None:
    hang = [sys.executable, "-c", "import time; time.sleep(600)"]
    result = run_probe(hang, timeout=1)
    assert not result.ok and "within 1 s" in result.detail
    assert result.seconds < 10


def test_an_error_in_the_probe_reports_its_last_line() -> None:
    fail = [sys.executable, "-c", "raise SystemExit('ValueError: Failed to load model')"]
    result = run_probe(fail, timeout=30)
    assert not result.ok and "Failed to load model" in result.detail


needs_llama = pytest.mark.skipif(not embedded_available(), reason="llama-cpp-python is missing")


@needs_llama
@pytest.mark.slow
def test_the_embedded_model_passes_its_probe_on_this_cpu() -> None:
    result = probe_embedded(model_path=default_model_path(), threads=pool_threads(2), timeout=120)
    assert result.ok, result.detail
    assert "gemma-3-270m-q4_k_m generated" in result.detail


@needs_llama
def test_a_corrupt_model_file_fails_its_probe(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    result = probe_embedded(model_path=corrupt, threads=1, timeout=60)
    assert not result.ok and "failed to load" in result.detail
