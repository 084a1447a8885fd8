"""The API process must never import torch, open_clip or the worker package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_api_imports_no_torch_and_no_worker(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "import backend.main, cli.serve, backend.sse, jobs.queue\n"
        "app = backend.main.create_app()\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'open_clip', 'worker'))\n"
        "print(heavy)\n"
        "assert 'torch' not in sys.modules and not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "NADA_DATA_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
