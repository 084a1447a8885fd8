"""bench/api.py runs, and 50 concurrent clients get no errors (a pool-exhaustion guard)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_with_50_clients_has_no_errors() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "bench/api.py",
            "--clients",
            "50",
            "--submits",
            "2",
            "--polls",
            "4",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["submit"]["requests"] == 100 and report["submit"]["errors"] == 0
    assert report["poll"]["requests"] == 200 and report["poll"]["errors"] == 0
    assert report["poll"]["p50_ms"] <= report["poll"]["p99_ms"]
