"""bench/gpu_check.py, the prepared GPU check, runs every phase in its quick CPU mode and writes
a report with every section; with no time left, or no GPU, it still writes one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = {"correctness", "generator", "adaptation", "original", "profile"}
TARGETS = {"adapt_300_steps_s", "adapt_peak_gpu_gb", "time_vs_original"}


def run_check(out: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    cmd = [sys.executable, "bench/gpu_check.py", *args]
    result = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=240, env=env or os.environ.copy()
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    assert set(report["sections"]) == SECTIONS
    assert {t["name"] for t in report["targets"]} == TARGETS
    assert (out / "gpu_check.md").read_text().startswith("# GPU check")
    return report


def test_quick_cpu_run_fills_every_section(tmp_path: Path) -> None:
    report = run_check(tmp_path, "--device", "cpu", "--quick", "--threads", "1", "--out", str(tmp_path))  # fmt: skip
    sections = report["sections"]
    for name, section in sections.items():
        assert section["status"] == "ok", (name, section.get("errors"), section.get("reason"))

    correctness = sections["correctness"]
    assert {(r["size"], r["dtype"]) for r in correctness["ops"]} == {
        (8, dtype) for dtype in ("float64", "float32")
    }
    assert all(r["verdict"] == "PASS" for r in correctness["ops"])
    assert all(r["image"]["rel"] < 1e-12 for r in correctness["ops"] if r["dtype"] == "float64")
    assert correctness["device_vs_cpu"]["max_abs"] == 0  # both sides on the CPU
    engine = correctness["engine"]
    assert engine["steps_done"] == 2 and engine["losses_finite"] and engine["verdict"] == "PASS"
    assert all(len(layers) == engine["layers"] for layers in engine["selected_layers"])

    generator = sections["generator"]
    assert [r["batch"] for r in generator["eager"]] == [2, 4]
    assert [r["batch"] for r in generator["compiled"]] == [2]  # aot_eager: traced, not built
    assert all(r["ms_per_iter"] > 0 for r in generator["eager"] + generator["compiled"])

    runs = sections["adaptation"]["runs"]
    assert set(runs) == {"default", "clip_bf16", "tf32_off"}
    for run in runs.values():
        assert run["steps_done"] == run["steps"] and run["s_per_step"] > 0
        assert run["losses_finite"] and len(run["selected_layers_last"]) == run["layers"]
    assert (
        runs["default"]["steps"] == 3 and runs["clip_bf16"]["math"]["clip_autocast"] == "bfloat16"
    )

    original = sections["original"]
    assert original["steps_done"] == 2 and original["s_per_step"] > 0
    assert original["ratio_ours_over_original"] == pytest.approx(
        runs["default"]["s_per_step"] / original["s_per_step"], rel=1e-2
    )

    profile = sections["profile"]
    assert profile["top_ops"] and profile["top_ops"][0]["self_ms"] > 0
    assert sum(profile["category_shares"].values()) == pytest.approx(1.0, abs=1e-3)

    targets = {t["name"]: t for t in report["targets"]}
    assert targets["adapt_300_steps_s"]["measured"] > 0  # estimated from the quick steps
    assert targets["adapt_300_steps_s"]["verdict"] in {"PASS", "MISS"}
    assert targets["adapt_peak_gpu_gb"]["verdict"] == "n/a"  # no GPU
    assert targets["time_vs_original"]["measured"] == original["ratio_ours_over_original"]
    assert report["decision"]["decision"] is None and report["decision"]["element_wise_share"]
    assert report["meta"]["targets_apply"] is False


def test_without_time_every_phase_is_skipped_and_the_report_written_to_out(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "OUT": str(tmp_path)}  # --out's default
    report = run_check(tmp_path, "--device", "cpu", "--quick", "--budget-s", "1", env=env)
    assert {s["status"] for s in report["sections"].values()} == {"skipped"}
    assert {t["verdict"] for t in report["targets"]} == {"n/a"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="would run the whole check")
def test_without_cuda_the_report_says_so(tmp_path: Path) -> None:
    report = run_check(tmp_path, "--out", str(tmp_path))
    assert "CUDA is not available" in report["meta"]["error"]
    assert {s["status"] for s in report["sections"].values()} == {"skipped"}
