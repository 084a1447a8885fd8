"""bench/nada_original.py computes what the original StyleGAN-NADA step computes (on tiny
models), and bench/adapt_step.py runs both sides and compares them."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def load_bench(name: str) -> ModuleType:
    """bench/ holds scripts, not a package: load one by path."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def original() -> ModuleType:
    return load_bench("nada_original")


def changed_parameters(nada) -> set[str]:
    frozen = dict(nada.frozen.named_parameters())
    return {n for n, p in nada.trainable.named_parameters() if not torch.equal(p, frozen[n])}


def test_original_step_selects_k_layers_and_trains_only_those(original) -> None:
    torch.manual_seed(0)
    nada = original.OriginalNada("random-8", ["nada-tiny:random"], auto_layer_k=2)
    result = nada.step()
    assert len(result.layers) == 2
    assert set(result.layers) <= {"conv1", "to_rgb1", "convs.0", "convs.1"}  # its index map
    changed = changed_parameters(nada)
    assert changed and all(name.split(".")[0] in {"conv1", "to_rgb1", "convs"} for name in changed)
    assert all(any(name.startswith(f"{layer}.") for layer in result.layers) for name in changed)
    # CLIP is frozen, as in the original since mid-2022: no parameter gradients anywhere.
    clip = nada.losses[0].model
    assert all(not p.requires_grad and p.grad is None for p in clip.parameters())
    assert torch.isfinite(torch.tensor(result.loss))


def test_original_with_trainable_clip_computes_clip_gradients(original) -> None:
    """The earlier original left CLIP trainable: both towers get parameter gradients (the
    probe's global loss runs the text tower too)."""
    torch.manual_seed(0)
    nada = original.OriginalNada(
        "random-8", ["nada-tiny:random"], auto_layer_k=2, clip_trainable=True
    )
    nada.step()
    clip = nada.losses[0].model
    assert clip.visual.conv1.weight.grad is not None
    assert clip.token_embedding.weight.grad is not None


def test_original_without_selection_trains_its_default_layers(original) -> None:
    torch.manual_seed(0)
    nada = original.OriginalNada("random-8", ["nada-tiny:random"], auto_layer_k=0)
    assert nada.step().layers == ("input", "conv1", "convs")
    changed = {name.split(".")[0] for name in changed_parameters(nada)}
    assert changed <= {"input", "conv1", "convs"} and "conv1" in changed
    # No probe ran, so the text tower saw no backward.
    assert nada.losses[0].model.token_embedding.weight.grad is None


def test_ratios_are_ours_over_the_original_and_bound_memory_when_it_was_stopped() -> None:
    bench = load_bench("adapt_step")
    results = [
        {"config": "latent", "side": "ours", "s_per_step": 2.0, "cpu_s_per_step": 3.0,
         "peak_rss_gb": 3.0},
        {"config": "latent", "side": "original", "s_per_step": 8.0, "cpu_s_per_step": 12.0,
         "peak_rss_gb": 10.0},
        {"config": "none", "side": "ours", "s_per_step": 1.0, "cpu_s_per_step": 1.0,
         "peak_rss_gb": 3.0},
        {"config": "none", "side": "original", "stopped": "memory guard", "peak_rss_gb": 12.0},
    ]  # fmt: skip
    table = bench.ratios(results, ["latent", "none"])
    assert table["latent"]["time"] == 0.25 and table["latent"]["memory"] == 0.3
    assert table["latent"]["memory_bound"] is None and table["latent"]["meets_targets"]
    assert table["none"]["time"] is None and table["none"]["memory"] == 0.25
    assert table["none"]["memory_bound"] == "upper" and not table["none"]["meets_targets"]
    assert bench.layers_k(256) == 10 and bench.layers_k(16) == 4


@pytest.mark.slow
def test_bench_runs_both_sides_on_tiny_models() -> None:
    # One configuration (the paper's latent probe): each side is a fresh process, and the
    # other configurations run the same code paths between them.
    cmd = [sys.executable, "bench/adapt_step.py", "--size", "16", "--clip", "nada-tiny:random"]
    cmd += ["--steps", "2", "--threads", "1", "--configs", "latent", "--json"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    sides = {(r["config"], r["side"]) for r in report["results"]}
    assert sides == {("latent", "ours"), ("latent", "original")}
    assert all(r["s_per_step"] > 0 and r["peak_rss_gb"] > 0 for r in report["results"])
    assert report["ratios"]["latent"]["time"] > 0 and report["ratios"]["latent"]["memory"] > 0


def test_generator_bench_measures_stylegan3_paths_each_in_its_own_process() -> None:
    bench = load_bench("generator")
    argv = ["--family", "stylegan3", "--size", "16", "--cbase", "256", "--batch", "1"]
    report = bench.main([*argv, "--threads", "1", "--repeats", "1"])
    assert report["family"] == "stylegan3" and report["config"] == "t"
    assert set(report["paths"]) == {"fast", "reference"}
    for entry in report["paths"].values():
        assert entry["forward_s"] > 0 and entry["forward_backward_s"] > 0
        assert 0 < entry["gflop_forward"] < entry["gflop_forward_backward"]
        assert 0 < entry["built_memory_gb"] <= entry["peak_memory_forward_gb"]
        assert entry["peak_memory_forward_gb"] <= entry["peak_memory_forward_backward_gb"]
        assert entry["time_vs_reference"] > 0 and entry["memory_vs_reference"] > 0
        assert entry["cpu_vs_reference"] > 0
    assert report["paths"]["reference"]["time_vs_reference"] == 1.0
    assert "anchor" not in report  # the anchor is for config T at 256 px, batch 1, CPU
    # Config R as NVIDIA's train.py builds it: 1x1 convs, radial filters, doubled widths.
    r = bench.stylegan3_init_kwargs(256, "r", 16384)
    assert (r["conv_kernel"], r["use_radial_filters"]) == (1, True)
    assert (r["channel_base"], r["channel_max"]) == (32768, 1024)


def test_adapt_bench_smoke_compares_a_modulation_step_with_a_weights_step() -> None:
    """`bench/adapt_step.py --smoke`: ours in both parametrizations, each in its own process,
    with the modulation / weights ratios and the domain file's size."""
    cmd = [sys.executable, "bench/adapt_step.py", "--smoke"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    runs = {r["parametrization"]: r for r in report["results"]}
    assert set(runs) == {"weights", "modulation"} and report["ratios"] == {}
    assert 0 < runs["modulation"]["domain_kb"] < 100 and "domain_kb" not in runs["weights"]
    entry = report["modulation_vs_weights"]["latent"]
    assert entry["domain_kb"] == runs["modulation"]["domain_kb"]
    time_ratio = runs["modulation"]["s_per_step"] / runs["weights"]["s_per_step"]
    assert entry["time"] == round(time_ratio, 3)
    assert entry["memory"] > 0 and entry["cpu_time"] > 0
