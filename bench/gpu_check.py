r"""The GPU check: what a session with one GPU should measure, in one run of under 8 minutes,
written to one report (gpu_check.json and a readable gpu_check.md) in --out.

    python bench/gpu_check.py --out DIR                        # one H100/H200-class GPU
    python bench/gpu_check.py --device cpu --quick --out DIR   # the same phases, tiny, on a CPU

--out defaults to $OUT if set, else ./gpu-check. Nothing is downloaded: the generator is
`random-1024` (the FFHQ architecture, seeded random weights) and CLIP is `ViT-B-32:random` +
`ViT-B-16:random` (the real architectures, seeded random weights).

Sections of the report (run in the order 1, 3, 5, 4, 2: the figures the targets need first,
torch.compile -- the phase most likely to overrun -- last):
  1 correctness  fast ops vs reference ops on the device, values and gradients, float64
                 and float32, at 256 and 1024 px; the 1024-px generator on the device vs
                 the CPU (TF32 off); a few engine steps (losses finite, selected layers)
  2 generator    forward+backward at 1024 px, batch 2, 4, 8, eager and torch.compile
                 (first call, i.e. compile time, apart): ms per iteration, peak memory
  3 adaptation   300 steps at 1024 px, both CLIP models, W+ selection every step (the
                 engine's defaults); then shorter runs with CLIP in bf16 and with TF32 off
  4 original     bench/nada_original.py's step at the same size, a few steps; ours/original
  5 profile      torch.profiler's top ops of one training step, for the decision between a
                 fused kernel and torch.compile; the targets with PASS/MISS

Time: --budget-s (420 s; 180 s with --quick) runs from the process's start to the report.
Phase i must end by budget - (the shares of the phases after it) (PHASE_SHARES), so time a
phase leaves unused goes to the next ones. A phase past its deadline stops at its next step
and lists what it cut; a phase with no time left is skipped and says so; at the budget plus
GRACE_S a watchdog writes the report and ends the process (an uninterruptible compile).
The report is rewritten after every phase, so even a crash leaves what ran before it.
Every phase, and every part of one, catches its own failure, records it, and the run goes
on; the exit code is 0 whenever the report was written.
"""

from __future__ import annotations

import time

STARTED = time.monotonic()  # the budget counts the imports below

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import traceback  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402
from unittest import mock  # noqa: E402

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # the project, and the sibling benchmarks

import adapt_step  # noqa: E402
import generator as generator_bench  # noqa: E402
import nada_original  # noqa: E402
import open_clip  # noqa: E402

import stylegan2  # noqa: E402
from nada.params import AdaptParams, ClipSpec  # noqa: E402
from stylegan2.device import prepare  # noqa: E402
from worker import engine  # noqa: E402
from worker.engine import ModelCache, resolve_device, run_adaptation  # noqa: E402
from worker.events import Canceled  # noqa: E402
from worker.samples import noise_shapes, random_noise  # noqa: E402

GB = adapt_step.GB  # 2**30 bytes, as the other benchmarks report
SECTIONS = ("correctness", "generator", "adaptation", "original", "profile")  # report order
RUN_ORDER = ("correctness", "adaptation", "profile", "original", "generator")
PHASE_SHARES = {  # of --budget-s, summing to 1; estimates for one H100 in the comments
    "correctness": 0.18,  # 76 s: start-up, 4 generator comparisons, CLIP loading, 5 steps
    "adaptation": 0.38,  # 160 s: 300 steps (30-60 s), 2 x 50 steps
    "profile": 0.05,  # 21 s: 3 steps under the profiler
    "original": 0.12,  # 50 s: its own models' loading, 6 steps of about 1-2 s
    "generator": 0.27,  # 113 s plus what the others left: eager, then 1-2 compilations
}
GRACE_S = 35.0  # the watchdog fires this long after --budget-s
TARGET_STEPS = 300
TARGETS = {  # name -> (limit, unit, what)
    "adapt_300_steps_s": (30.0, "s", "300 training steps at 1024 px, both CLIP models"),
    "adapt_peak_gpu_gb": (10.0, "GB", "peak GPU memory allocated by that run"),
    "time_vs_original": (0.5, "x", "s/step ours / original, measured in the same run"),
}
# Max relative error (max |fast - ref| / max |ref|) of fast vs reference ops. float64 shows
# the ops compute the same function; float32 allows rounding (a 256-px CPU run: image 2e-6,
# parameter gradients 7e-4). Scalar gradients (noise strengths) sum a whole layer's
# products, which cancel: float32 only reports them.
OPS_TOLERANCE = {
    "float64": {"image": 1e-10, "grads": 1e-10},
    "float32": {"image": 1e-4, "grads": 1e-2},
}
DEVICE_VS_CPU_TOLERANCE = 1e-3  # relative, float32 forward with TF32 off
ENGINE_SWITCHES = {
    "tf32": "stylegan2.device.prepare, which every engine call makes: TF32 matmuls and "
    "convolutions plus cuDNN autotuning, no parameter. The tf32_off run patches "
    "worker.engine.prepare with one that then turns TF32 off, keeping the autotuning.",
    "bf16": "worker.clip_models.ClipModel.autocast: CLIP's towers under bf16 autocast (CUDA "
    "only; a no-op on a CPU). The clip_bf16 run sets it on the cached CLIP models. The "
    "generator has no bf16 switch and stays float32.",
}
PROFILE_CATEGORIES = (  # by op or kernel name, first match wins: a heuristic
    ("convolution", r"conv|cudnn|winograd|implicit_gemm|fprop|dgrad|wgrad"),
    ("matmul", r"gemm|matmul|\bmm\b|addmm|bmm|linear|cutlass|cublas"),
    ("attention", r"attention|flash|fmha|sdpa"),
)
OTHER_CATEGORY = "element-wise and other"  # what fusing (a kernel or torch.compile) can cut
TITLES = {
    "correctness": "Correctness on the device",
    "generator": "Generator forward+backward, eager and torch.compile",
    "adaptation": "Adaptation",
    "original": "The original step beside it",
    "profile": "Fused kernel vs torch.compile: profile of one training step",
}


@dataclass(frozen=True)
class Settings:
    """What one check runs: FULL on a GPU, QUICK for the CPU smoke run."""

    size: int  # resolution of sections 2-5 (random-<size>)
    ops_sizes: tuple[int, ...]  # resolutions of the fast-vs-reference comparison
    compare_size: int  # resolution of the device-vs-CPU comparison
    clip: tuple[str, ...]  # CLIP models, weight 1 each
    batch: int  # training batch (the engine's default, 2)
    engine_steps: int  # section 1: engine steps on the device
    steps: int  # section 3: steps of the main run
    variant_steps: int  # section 3: steps of the clip_bf16 and tf32_off runs (0: none)
    original_steps: int  # section 4: steps of the original (the first is warm-up)
    batches: tuple[int, ...]  # section 2: batch sizes, eager
    compile_batches: tuple[int, ...]  # section 2: batch sizes, compiled (()): no compile
    iters: int  # section 2: timed iterations per batch
    warmup: int  # section 2: untimed iterations per batch, the first call included
    compile_backend: str  # torch.compile backend
    budget_s: float  # the whole run, process start to report


FULL = Settings(
    size=1024, ops_sizes=(256, 1024), compare_size=1024,
    clip=("ViT-B-32:random", "ViT-B-16:random"), batch=2, engine_steps=5, steps=TARGET_STEPS,
    variant_steps=50, original_steps=6, batches=(2, 4, 8), compile_batches=(2, 4, 8), iters=10,
    warmup=3, compile_backend="inductor", budget_s=420.0,
)  # fmt: skip
QUICK = Settings(  # every phase in seconds on a CPU; aot_eager traces without generating code
    size=8, ops_sizes=(8,), compare_size=8, clip=("nada-tiny:random",), batch=2,
    engine_steps=2, steps=3, variant_steps=2, original_steps=2, batches=(2, 4),
    compile_batches=(2,), iters=2, warmup=1, compile_backend="aot_eager", budget_s=180.0,
)  # fmt: skip


# -- time and failures -------------------------------------------------------------------


@dataclass
class Phase:
    """One section while it runs: its deadline, its figures, what failed and what was cut."""

    name: str
    deadline: float  # time.monotonic() by which it must stop
    out: dict[str, Any] = field(default_factory=dict)  # the section's figures
    errors: list[str] = field(default_factory=list)  # parts that failed (the phase went on)
    cut: list[str] = field(default_factory=list)  # parts cut short or skipped for time

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def attempt(self, what: str, fn: Callable[[], Any]) -> Any:
        """fn(), or None with its failure recorded: one part's failure does not end a phase."""
        try:
            return fn()
        except Exception as exc:  # a failure is a finding: record it and go on
            self.errors.append(f"{what}: {describe_error(exc)}")
            return None
        finally:
            free_memory()

    def skip_if_late(self, what: str) -> bool:
        if self.expired():
            self.cut.append(f"{what}: skipped, phase deadline")
            return True
        return False


def describe_error(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = "; ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames)
    return f"{type(exc).__name__}: {str(exc)[:1500]} (at {where})"


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def reset_peak(device: torch.device) -> None:
    free_memory()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def memory_figures(device: torch.device) -> dict[str, Any]:
    """Peak GPU memory since the last reset_peak; on a CPU the process's peak RSS so far."""
    if device.type == "cuda":
        return {
            "peak_gpu_allocated_gb": round(torch.cuda.max_memory_allocated(device) / GB, 3),
            "peak_gpu_reserved_gb": round(torch.cuda.max_memory_reserved(device) / GB, 3),
        }
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return {"process_peak_rss_gb": round(rss_kb * 1024 / GB, 3)}


@contextlib.contextmanager
def math_flags(tf32: bool | None = None, benchmark: bool | None = None) -> Iterator[None]:
    """Set TF32 and cuDNN autotuning for a block (None: leave as is); restore them after."""
    saved = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
    )
    if tf32 is not None:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    if benchmark is not None:
        torch.backends.cudnn.benchmark = benchmark
    try:
        yield
    finally:
        (
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32,
            torch.backends.cudnn.benchmark,
        ) = saved


def current_math_flags() -> dict[str, bool]:
    return {
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
    }


def _tf32_off(*, threads: int | None = None) -> None:
    """stylegan2.device.prepare without TF32: the tf32_off run's stand-in."""
    prepare(threads=threads)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False


@contextlib.contextmanager
def clip_autocast(check: Check, dtype: torch.dtype) -> Iterator[None]:
    """The cached CLIP models (the ones the engine will use) under `dtype` autocast."""
    clips = [check.models.clip(name, check.device, seed=0) for name in check.settings.clip]
    saved = [clip.autocast for clip in clips]
    for clip in clips:
        clip.autocast = dtype
    try:
        yield
    finally:
        for clip, before in zip(clips, saved, strict=True):
            clip.autocast = before


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)


def _median_after_first(values: list[float]) -> float | None:
    """adapt_step's per-step figure (the first step is warm-up); None without steps."""
    return _round(adapt_step._median_after_first(values)) if values else None


def _sig(x: float) -> float:
    """Three significant digits: errors span 1e-16 .. 1."""
    return float(f"{x:.3g}")


# -- section 1: correctness --------------------------------------------------------------


def _error(a: torch.Tensor, b: torch.Tensor) -> dict[str, float | None]:
    diff = float((a - b).abs().max())
    scale = float(b.abs().max())
    rel = diff / scale if scale else (0.0 if diff == 0 else None)
    return {"max_abs": _sig(diff), "rel": None if rel is None else _sig(rel)}


def compare_ops(size: int, dtype: torch.dtype, device: torch.device, batch: int) -> dict:
    """Fast ops vs reference ops (set_reference_ops) on the same weights, W+ codes and noise:
    the image, the gradient of the codes and of every parameter the synthesis reaches."""
    g = stylegan2.load_generator(f"random-{size}", device=device).generator
    g = g.to(dtype).requires_grad_(True)
    rng = torch.Generator().manual_seed(0)
    z = torch.randn(batch, g.style_dim, generator=rng).to(device, dtype)
    noise = [n.to(device, dtype) for n in random_noise(noise_shapes(g), batch, rng)]
    with torch.no_grad():
        wplus = g.style(z).unsqueeze(1).repeat(1, g.n_latent, 1)  # [N, n_latent, style_dim]

    def run(reference: bool) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        g.set_reference_ops(reference)
        g.zero_grad(set_to_none=True)
        codes = wplus.clone().requires_grad_(True)
        image, _ = g([codes], input_is_latent=True, noise=noise)  # [N, 3, size, size]
        weights = torch.linspace(-1, 1, image.numel(), device=device, dtype=dtype)
        (image * weights.view_as(image)).sum().backward()  # a different gradient per pixel
        grads = {n: p.grad.clone() for n, p in g.named_parameters() if p.grad is not None}
        return image.detach(), codes.grad, grads

    fast, ref = run(False), run(True)
    g.set_reference_ops(False)
    dtype_name = str(dtype).removeprefix("torch.")
    params = {n: _error(fast[2][n], ref[2][n]) for n in ref[2] if n in fast[2]}

    def worst(names: list[str]) -> dict:
        if not names:
            return {}
        name = max(names, key=lambda n: params[n]["rel"] if params[n]["rel"] is not None else 1)
        return {"name": name, **params[name]}

    scalar = [n for n in params if ref[2][n].numel() == 1]
    row = {
        "size": size,
        "dtype": dtype_name,
        "batch": batch,
        "image": _error(fast[0], ref[0]),
        "codes_grad": _error(fast[1], ref[1]),
        "param_grads_worst": worst([n for n in params if n not in scalar]),
        "noise_strength_grads_worst": worst(scalar),
        "grads_missing": sorted(set(ref[2]) ^ set(fast[2])),
        "tolerance": OPS_TOLERANCE[dtype_name],
    }
    tol = OPS_TOLERANCE[dtype_name]
    judged = [(row["image"], tol["image"]), (row["codes_grad"], tol["grads"])]
    judged.append((row["param_grads_worst"], tol["grads"]))
    if dtype == torch.float64:
        judged.append((row["noise_strength_grads_worst"], tol["grads"]))
    ok = not row["grads_missing"] and all(
        not e or (e["rel"] is not None and e["rel"] <= limit) for e, limit in judged
    )
    row["verdict"] = "PASS" if ok else "MISS"
    return row


def compare_devices(size: int, device: torch.device) -> dict:
    """The generator (seeded weights, fast ops, z through the mapping network) on `device`
    against the CPU, float32 with TF32 off, same z and noise."""
    g = stylegan2.load_generator(f"random-{size}").generator
    rng = torch.Generator().manual_seed(1)
    z = torch.randn(1, g.style_dim, generator=rng)
    noise = random_noise(noise_shapes(g), 1, rng)
    with torch.no_grad(), math_flags(tf32=False):
        t0 = time.perf_counter()
        cpu_image, _ = g([z], noise=noise)
        cpu_s = time.perf_counter() - t0
        g = g.to(device)
        device_image, _ = g([z.to(device)], noise=[n.to(device) for n in noise])
    error = _error(device_image.cpu(), cpu_image)
    passed = error["rel"] is not None and error["rel"] <= DEVICE_VS_CPU_TOLERANCE
    row = {
        "size": size,
        "device": str(device),
        **error,
        "image_max_abs": _round(float(cpu_image.abs().max())),
        "cpu_forward_s": _round(cpu_s, 3),
        "tolerance_rel": DEVICE_VS_CPU_TOLERANCE,
        "verdict": "PASS" if passed else "MISS",
    }
    if device.type == "cpu":
        row["note"] = "the device is the CPU: both sides ran there (a smoke run of the code)"
    return row


def phase_correctness(check: Check, phase: Phase) -> None:
    s = check.settings
    ops: list[dict] = phase.out.setdefault("ops", [])
    for size in s.ops_sizes:
        for dtype in (torch.float64, torch.float32):
            what = f"ops {size} px {str(dtype).removeprefix('torch.')}"
            if phase.skip_if_late(what):
                continue
            with math_flags(tf32=False):
                row = phase.attempt(
                    what, lambda n=size, d=dtype: compare_ops(n, d, check.device, s.batch)
                )
            if row:
                ops.append(row)
    if not phase.skip_if_late("device vs CPU"):
        phase.out["device_vs_cpu"] = phase.attempt(
            "device vs CPU", lambda: compare_devices(s.compare_size, check.device)
        )
    if not phase.skip_if_late("engine steps"):
        run = phase.attempt("engine steps", lambda: run_engine(check, s.engine_steps, phase))
        if run:  # judged: finite losses; whether they fell is reported only
            finite = run["losses_finite"] and run["steps_done"] > 0
            run["verdict"] = "PASS" if finite else "n/a" if run.get("cut") else "MISS"
        phase.out["engine"] = run


# -- the engine (sections 1, 3, 5) -------------------------------------------------------


def run_engine(
    check: Check,
    steps: int,
    phase: Phase,
    *,
    tf32: bool = True,
    clip_bf16: bool = False,
    on_progress: Callable[[Any], None] | None = None,
) -> dict:
    """`steps` steps of run_adaptation with the engine's defaults (W+ probe every step, probe
    batch 8, k layers) on the shared ModelCache; stops at the phase deadline, keeping the
    figures of the steps done."""
    s = check.settings
    params = AdaptParams(
        source_text="photo",
        target_text="sketch",
        generator=f"random-{s.size}",
        clip_models=tuple(ClipSpec(name, 1.0) for name in s.clip),
        steps=steps,
        layers=adapt_step.layers_k(s.size),
        batch_size=s.batch,
        sample_every=5000,  # only the step-0 and the final sample
        n_samples=1,
        seed=0,
        **adapt_step.CONFIGS["latent"],
    )
    reset_peak(check.device)
    canceled = False
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as out:
        stack.enter_context(math_flags())  # run_adaptation sets them; put them back after
        if not tf32:
            stack.enter_context(mock.patch.object(engine, "prepare", _tf32_off))
        if clip_bf16:
            stack.enter_context(clip_autocast(check, torch.bfloat16))
        started = time.perf_counter()
        try:
            run_adaptation(
                params,
                Path(out),
                device=str(check.device),
                models=check.models,
                should_cancel=phase.expired,
                on_progress=on_progress,
            )
        except Canceled:
            canceled = True
        run_s = time.perf_counter() - started
        flags = current_math_flags() if check.device.type == "cuda" else {}
        metrics = Path(out, "metrics.jsonl")
        lines = (
            [json.loads(x) for x in metrics.read_text().splitlines()] if metrics.exists() else []
        )
    seconds = [line["seconds"] for line in lines]
    selection_s = [line["selection_seconds"] for line in lines]
    losses = [line["losses"]["total"] for line in lines]
    selected = [line["selected_layers"] for line in lines]
    counts = Counter(name for names in selected for name in names)
    figures: dict[str, Any] = {
        "steps": steps,
        "steps_done": len(lines),
        "layers": params.layers,
        "probe_batch": params.probe_batch,
        "batch": params.batch_size,
        "clip": list(s.clip),
        "math": {**flags, "clip_autocast": "bfloat16" if clip_bf16 else None},
        "run_s": _round(run_s, 2),
        "train_s": _round(sum(seconds), 3),
        "first_step_s": _round(seconds[0]) if seconds else None,
        "s_per_step": _median_after_first(seconds),
        "selection_s_per_step": _median_after_first(selection_s),
        "loss_first": _round(losses[0], 5) if losses else None,
        "loss_last": _round(losses[-1], 5) if losses else None,
        "loss_falling": losses[-1] < losses[0] if len(losses) > 1 else None,
        "losses_finite": all(math.isfinite(x) for x in losses),
        "selected_layers_last": selected[-1] if selected else [],
        "selection_counts": dict(counts.most_common()),
        **memory_figures(check.device),
    }
    if steps <= 20:  # short runs: every step
        figures["losses"] = [_round(x, 5) for x in losses]
        figures["selected_layers"] = selected
    if canceled and len(lines) < steps:
        figures["cut"] = f"phase deadline after {len(lines)} of {steps} steps"
        phase.cut.append(f"engine run of {steps} steps: {figures['cut']}")
    return figures


# -- section 3: adaptation ---------------------------------------------------------------


def phase_adaptation(check: Check, phase: Phase) -> None:
    s = check.settings
    phase.out["switches"] = ENGINE_SWITCHES
    runs: dict[str, Any] = phase.out.setdefault("runs", {})
    variants = [
        ("default", s.steps, {}),  # what a job does: TF32 on, CLIP float32
        ("clip_bf16", s.variant_steps, {"clip_bf16": True}),
        ("tf32_off", s.variant_steps, {"tf32": False}),
    ]
    for name, steps, switches in variants:
        if steps <= 0 or phase.skip_if_late(f"run {name}"):
            continue
        runs[name] = phase.attempt(
            f"run {name}", lambda n=steps, k=switches: run_engine(check, n, phase, **k)
        )


# -- section 5: profile ------------------------------------------------------------------


def _category(name: str) -> str:
    for category, pattern in PROFILE_CATEGORIES:
        if re.search(pattern, name, re.IGNORECASE):
            return category
    return OTHER_CATEGORY


def top_ops(events: Any, on_cuda: bool, n: int = 25) -> dict[str, Any]:
    """The profiler's ops by self device time (CPU time on a CPU), CUDA kernels apart, and
    the share of each category (PROFILE_CATEGORIES, by name: a heuristic)."""
    from torch.autograd import DeviceType

    def own_us(e: Any) -> float:
        return float(e.self_device_time_total if on_cuda else e.self_cpu_time_total)

    ops = [e for e in events if e.device_type == DeviceType.CPU]
    ops = [e for e in ops if not e.key.startswith("ProfilerStep")]  # the step's own span
    kernels = [e for e in events if e.device_type == DeviceType.CUDA]
    pool = kernels if on_cuda and kernels else ops
    total = sum(own_us(e) for e in pool) or 1.0
    shares: Counter[str] = Counter()
    for e in pool:
        shares[_category(e.key)] += own_us(e) / total

    def rows(items: list[Any]) -> list[dict]:
        items = sorted(items, key=own_us, reverse=True)[:n]
        return [
            {
                "name": e.key[:160],
                "self_ms": round(own_us(e) / 1e3, 3),
                "share": round(own_us(e) / total, 4),
                "calls": e.count,
                "category": _category(e.key),
            }
            for e in items
            if own_us(e) > 0
        ]

    return {
        "time_measured": "self CUDA time" if on_cuda else "self CPU time",
        "total_ms": round(total / 1e3, 3),
        "category_shares": {k: round(v, 4) for k, v in shares.most_common()},
        "top_ops": rows(ops),
        "top_kernels": rows(kernels) if on_cuda else [],
    }


def phase_profile(check: Check, phase: Phase) -> None:
    """One training step (selection included) of the engine under torch.profiler: the third
    of three steps, after a warm-up step."""
    from torch.profiler import ProfilerActivity, profile, schedule

    on_cuda = check.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_cuda else [])
    trace = check.out_dir / "profile_trace.json"

    def ready(prof: Any) -> None:
        if check.trace:
            prof.export_chrome_trace(str(trace))

    with profile(
        activities=activities,
        schedule=schedule(wait=1, warmup=1, active=1, repeat=1),
        on_trace_ready=ready,
    ) as prof:

        def on_progress(event: Any) -> None:
            if event.kind == "step":
                prof.step()

        run = run_engine(check, 3, phase, on_progress=on_progress)
    phase.out["step"] = {k: run[k] for k in ("steps_done", "s_per_step", "layers", "probe_batch")}
    if run["steps_done"] < 3:
        phase.cut.append("the profiled step did not run")
        return
    phase.out.update(top_ops(prof.key_averages(), on_cuda))
    if not phase.out["top_ops"]:
        phase.errors.append(f"the profiler recorded no {phase.out['time_measured']} (CUPTI?)")
    if check.trace:
        phase.out["chrome_trace"] = trace.name


# -- section 4: the original -------------------------------------------------------------


def phase_original(check: Check, phase: Phase) -> None:
    """bench/nada_original.py's step (reference ops, frozen CLIP: the baseline's default, see
    docs/performance.md; probe of 8 in one forward) at the same size and CLIP models, under
    the math flags of ours' default run."""
    s = check.settings
    check.models.clear()  # ours' models: the original loads its own; its peak is its own
    reset_peak(check.device)
    on_cuda = check.device.type == "cuda"
    with math_flags(tf32=True, benchmark=True) if on_cuda else contextlib.nullcontext():
        torch.manual_seed(0)
        t0 = time.perf_counter()
        nada = nada_original.OriginalNada(
            generator=f"random-{s.size}",
            clip_models=list(s.clip),
            batch_size=s.batch,
            auto_layer_k=adapt_step.layers_k(s.size),
            auto_layer_batch=adapt_step.CONFIGS["latent"]["probe_batch"],
            device=check.device,
        )
        phase.out["load_s"] = _round(time.perf_counter() - t0, 2)
        phase.out["math"] = current_math_flags() if on_cuda else {}
        wall: list[float] = []
        for i in range(s.original_steps):
            if phase.skip_if_late(f"original steps {i + 1}..{s.original_steps}"):
                break
            seconds = phase.attempt(
                f"original step {i + 1}", lambda: nada_original.timed_steps(nada, 1)[0]
            )
            if seconds is None:  # recorded; an out-of-memory step would fail again
                break
            wall += seconds
    phase.out.update(
        steps=s.original_steps,
        steps_done=len(wall),
        layers=adapt_step.layers_k(s.size),
        probe_batch=adapt_step.CONFIGS["latent"]["probe_batch"],
        first_step_s=_round(wall[0]) if wall else None,
        s_per_step=_round(adapt_step._median_after_first(wall)) if wall else None,
        step_s=[_round(x) for x in wall],
        **memory_figures(check.device),
    )
    ours = (check.report.section("adaptation").get("runs") or {}).get("default") or {}
    if ours.get("s_per_step") and phase.out["s_per_step"]:
        phase.out["ours_s_per_step"] = ours["s_per_step"]
        ratio = ours["s_per_step"] / phase.out["s_per_step"]
        phase.out["ratio_ours_over_original"] = round(ratio, 3)
    phase.out["caveat"] = (
        "on CUDA the baseline runs the generator's plain reference ops, not the port's compiled "
        "upfirdn2d/fused_bias_act kernels, and CLIP in float32, not the original's fp16: the "
        "ratio flatters ours (docs/performance.md)"
    )


# -- section 2: generator ----------------------------------------------------------------


def time_generator(
    model: Callable[..., Any], g: Any, batch: int, check: Check, phase: Phase
) -> dict[str, Any]:
    """Forward+backward of `model` (g or its compiled form): the first call apart (compile
    time for a compiled model), CUDA-synchronised ms per iteration after the warm-up."""
    s, device = check.settings, check.device
    rng = torch.Generator().manual_seed(0)
    z = torch.randn(batch, g.style_dim, generator=rng).to(device)
    noise = [n.to(device) for n in random_noise(noise_shapes(g), batch, rng)]

    def step() -> None:
        g.zero_grad(set_to_none=True)
        image, _ = model([z], noise=noise)
        image.square().mean().backward()

    reset_peak(device)
    first_s = generator_bench._timed(step, device)
    for _ in range(s.warmup - 1):
        step()
    times: list[float] = []
    for _ in range(s.iters):
        if times and phase.expired():
            phase.cut.append(f"batch {batch}: {len(times)} of {s.iters} timed iterations")
            break
        times.append(generator_bench._timed(step, device))
    return {
        "batch": batch,
        "first_call_s": _round(first_s, 3),
        "ms_per_iter": _round(statistics.median(times) * 1e3, 2),
        "ms_min": _round(min(times) * 1e3, 2),
        "iters": len(times),
        **memory_figures(device),
    }


def phase_generator(check: Check, phase: Phase) -> None:
    s, device = check.settings, check.device
    g = stylegan2.load_generator(f"random-{s.size}", device=device).generator.requires_grad_(True)
    on_cuda = device.type == "cuda"
    with math_flags(tf32=True, benchmark=True) if on_cuda else contextlib.nullcontext():
        phase.out.update(size=s.size, math=current_math_flags() if on_cuda else {})
        eager: list[dict] = phase.out.setdefault("eager", [])
        for batch in s.batches:
            if phase.skip_if_late(f"eager batch {batch}"):
                break
            row = phase.attempt(
                f"eager batch {batch}", lambda b=batch: time_generator(g, g, b, check, phase)
            )
            if row:
                eager.append(row)
        if not s.compile_batches:
            return
        phase.out["compile_backend"] = s.compile_backend
        compiled_rows: list[dict] = phase.out.setdefault("compiled", [])
        compiled = torch.compile(g, backend=s.compile_backend)
        eager_ms = {row["batch"]: row["ms_per_iter"] for row in eager}
        for batch in s.compile_batches:
            if phase.skip_if_late(f"compiled batch {batch}"):
                break
            row = phase.attempt(
                f"torch.compile batch {batch}",
                lambda b=batch: time_generator(compiled, g, b, check, phase),
            )
            if row is None:  # the error is recorded; the next batches would fail alike
                break
            if batch in eager_ms and row["ms_per_iter"]:
                row["speedup_vs_eager"] = round(eager_ms[batch] / row["ms_per_iter"], 3)
            compiled_rows.append(row)
        phase.out["compile_note"] = (
            "first_call_s is compilation plus one iteration; a new batch size recompiles "
            "(from the second, with a dynamic batch dimension)"
        )


PHASES: dict[str, Callable[[Check, Phase], None]] = {
    "correctness": phase_correctness,
    "generator": phase_generator,
    "adaptation": phase_adaptation,
    "original": phase_original,
    "profile": phase_profile,
}


# -- the report --------------------------------------------------------------------------


def target_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """PASS/MISS of each target against the figures in the report (n/a: not measured)."""
    ours = (report["sections"]["adaptation"].get("runs") or {}).get("default") or {}
    done = ours.get("steps_done") or 0
    if done >= TARGET_STEPS:
        steps_s = (ours["train_s"], f"sum of {done} steps' seconds")
    elif done >= 2:
        estimate = ours["first_step_s"] + ours["s_per_step"] * (TARGET_STEPS - 1)
        steps_s = (round(estimate, 2), f"estimated from {done} steps")
    else:
        steps_s = (None, "the default run did not run 2 steps")
    memory = ours.get("peak_gpu_allocated_gb")
    ratio = report["sections"]["original"].get("ratio_ours_over_original")
    measured = {
        "adapt_300_steps_s": steps_s,
        "adapt_peak_gpu_gb": (memory, "" if memory is not None else "no GPU figure"),
        "time_vs_original": (ratio, "" if ratio is not None else "a side is missing"),
    }
    rows = []
    for name, (limit, unit, what) in TARGETS.items():
        value, note = measured[name]
        verdict = "n/a" if value is None else "PASS" if value <= limit else "MISS"
        row = {"name": name, "what": what, "limit": f"<= {limit} {unit}", "measured": value}
        rows.append({**row, "verdict": verdict, "note": note})
    return rows


def decision_data(report: dict[str, Any]) -> dict[str, Any]:
    """The figures the fused-kernel-vs-torch.compile decision needs, side by side."""
    profile, generator = report["sections"]["profile"], report["sections"]["generator"]
    compiled = generator.get("compiled") or []
    shares = profile.get("category_shares") or {}
    return {
        "question": "the generator's element-wise work: a fused CUDA kernel, or torch.compile?",
        "element_wise_share": shares.get(OTHER_CATEGORY),
        "compile_speedup_vs_eager": {r["batch"]: r.get("speedup_vs_eager") for r in compiled},
        "compile_first_call_s": compiled[0]["first_call_s"] if compiled else None,
        "decision": None,  # the team's, from these figures; recorded in docs/performance.md
    }


class Report:
    """The report being built: sections fill in as phases end; written after each one."""

    def __init__(self, out_dir: Path, meta: dict[str, Any]):
        self.out_dir = out_dir
        self.lock = threading.Lock()  # the main thread and the watchdog both write
        self.data: dict[str, Any] = {
            "meta": meta,
            "sections": {name: {"status": "pending"} for name in SECTIONS},
        }

    def section(self, name: str) -> dict[str, Any]:
        return self.data["sections"][name]

    def write(self) -> None:
        with self.lock:
            data = json.loads(json.dumps(self.data))  # a snapshot
            data["meta"]["elapsed_s"] = round(time.monotonic() - STARTED, 1)
            data["targets"] = target_rows(data)
            data["decision"] = decision_data(data)
            try:
                summary = render_markdown(data)
            except Exception as exc:  # the JSON is the report; the summary must not lose it
                summary = f"# GPU check\n\nNo summary ({describe_error(exc)}): see the JSON.\n"
            for name, text in (
                ("gpu_check.json", json.dumps(data, indent=2) + "\n"),
                ("gpu_check.md", summary),
            ):
                tmp = self.out_dir / f".{name}.tmp"
                tmp.write_text(text, encoding="utf-8")
                os.replace(tmp, self.out_dir / name)  # a reader never sees half a report


# Markdown tables: (header, path into each row's dict)
TARGET_COLUMNS = [
    ("target", "name"),
    ("what", "what"),
    ("limit", "limit"),
    ("measured", "measured"),
    ("verdict", "verdict"),
    ("note", "note"),
]
OPS_COLUMNS = [
    ("size", "size"),
    ("dtype", "dtype"),
    ("image", "image.rel"),
    ("codes grad", "codes_grad.rel"),
    ("worst param grad", "param_grads_worst.rel"),
    ("which", "param_grads_worst.name"),
    ("worst noise-strength grad", "noise_strength_grads_worst.rel"),
    ("verdict", "verdict"),
]
GENERATOR_COLUMNS = [
    ("batch", "batch"),
    ("eager ms/iter", "eager.ms_per_iter"),
    ("eager peak GB", "eager.peak_gpu_allocated_gb"),
    ("compiled ms/iter", "compiled.ms_per_iter"),
    ("compile (1st call) s", "compiled.first_call_s"),
    ("compiled peak GB", "compiled.peak_gpu_allocated_gb"),
    ("speed-up", "compiled.speedup_vs_eager"),
]
RUN_COLUMNS = [
    ("run", "run"),
    ("steps", "steps_done"),
    ("train s", "train_s"),
    ("s/step", "s_per_step"),
    ("1st step s", "first_step_s"),
    ("selection s/step", "selection_s_per_step"),
    ("peak GB", "peak_gpu_allocated_gb"),
    ("reserved GB", "peak_gpu_reserved_gb"),
    ("loss first", "loss_first"),
    ("loss last", "loss_last"),
    ("last selection", "selected_layers_last"),
]
ORIGINAL_COLUMNS = [
    ("steps", "steps_done"),
    ("s/step", "s_per_step"),
    ("1st step s", "first_step_s"),
    ("peak GB", "peak_gpu_allocated_gb"),
    ("ours s/step", "ours_s_per_step"),
    ("ours / original", "ratio_ours_over_original"),
]
OP_COLUMNS = [("op", "name"), ("ms", "self_ms"), ("share", "share"), ("calls", "calls")]
PHASE_COLUMNS = [
    ("phase (run order)", "phase"),
    ("status", "status"),
    ("seconds", "seconds"),
    ("allowed s", "allowed_s"),
]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, float):
        return f"{value:.3g}" if value and abs(value) < 1e-3 else f"{value:g}"
    return str(value).replace("|", "\\|")


def _get(row: Any, path: str) -> Any:
    for key in path.split("."):
        row = row.get(key) if isinstance(row, dict) else None
    return row


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> list[str]:
    if not rows:
        return []
    lines = ["| " + " | ".join(header for header, _ in columns) + " |"]
    lines.append("|" + " --- |" * len(columns))
    lines += ["| " + " | ".join(_cell(_get(r, path)) for _, path in columns) + " |" for r in rows]
    return [*lines, ""]


def _md_correctness(c: dict[str, Any]) -> list[str]:
    md = _table(c.get("ops") or [], OPS_COLUMNS)
    if md:
        md = ["Fast vs reference ops, max relative error (TF32 off):", "", *md]
    if d := c.get("device_vs_cpu"):
        md += [
            f"Generator {d['size']} px, {d['device']} vs CPU: max abs {_cell(d['max_abs'])}, "
            f"relative {_cell(d['rel'])} (tolerance {d['tolerance_rel']}): {d['verdict']}",
            "",
        ]
    if e := c.get("engine"):
        md += [
            f"Engine, {e['steps_done']} steps: losses {_cell(e.get('losses'))}, finite "
            f"{e['losses_finite']}, falling {e['loss_falling']}: {e['verdict']}. Selected layers "
            f"per step: {'; '.join(_cell(x) for x in e.get('selected_layers') or [])}",
            "",
        ]
    return md


def _md_generator(g: dict[str, Any]) -> list[str]:
    compiled = {r["batch"]: r for r in g.get("compiled") or []}
    rows = [
        {"batch": r["batch"], "eager": r, "compiled": compiled.get(r["batch"])}
        for r in g.get("eager") or []
    ]
    md = _table(rows, GENERATOR_COLUMNS)
    if md:
        md = [f"{g.get('size')} px, torch.compile backend {g.get('compile_backend')}.", "", *md]
    return md


def _md_adaptation(a: dict[str, Any]) -> list[str]:
    rows = [{"run": name, **run} for name, run in (a.get("runs") or {}).items() if run]
    md = _table(rows, RUN_COLUMNS)
    return md + [f"- {name}: {text}" for name, text in (a.get("switches") or {}).items()] + [""]


def _md_original(o: dict[str, Any]) -> list[str]:
    if not o.get("steps_done"):
        return []
    return [*_table([o], ORIGINAL_COLUMNS), f"Caveat: {o['caveat']}.", ""]


def _md_profile(p: dict[str, Any], decision: dict[str, Any]) -> list[str]:
    md = [
        f"Decision: **{decision['decision'] or 'pending'}**. Element-wise and other: "
        f"{_cell(decision['element_wise_share'])} of {p.get('time_measured', 'the time')}; "
        f"torch.compile speed-up by batch {decision['compile_speedup_vs_eager']}, first call "
        f"{_cell(decision['compile_first_call_s'])} s (section 2).",
        "",
    ]
    shares = [{"name": k, "share": v} for k, v in (p.get("category_shares") or {}).items()]
    md += _table(shares, [("category", "name"), ("share", "share")])
    if p.get("top_ops"):
        md += [f"Top ops of one step ({_cell(p['total_ms'])} ms of {p['time_measured']}):", ""]
        md += _table(p["top_ops"], [*OP_COLUMNS, ("category", "category")])
    if p.get("top_kernels"):
        md += ["Top CUDA kernels:", "", *_table(p["top_kernels"], OP_COLUMNS)]
    return md


def render_markdown(data: dict[str, Any]) -> str:
    meta, sec = data["meta"], data["sections"]
    env = meta.get("environment") or {}
    md = [
        "# GPU check",
        "",
        f"{meta['started']}: {meta['device']} ({env.get('gpu') or 'no GPU'}), torch "
        f"{env.get('torch')}, CUDA {env.get('cuda')}, open_clip {env.get('open_clip')}, git "
        f"{env.get('git')}; {'quick' if meta['quick'] else 'full'} settings; "
        f"{meta['elapsed_s']} s of a {meta['budget_s']} s budget.",
        "",
    ]
    if meta.get("error"):
        md += [f"**Not run:** {meta['error']}", ""]
    md += ["## Targets", "", *_table(data["targets"], TARGET_COLUMNS)]
    if not meta.get("targets_apply"):
        md += [
            "Not the targets' settings (1024 px, both CLIP models, CUDA): verdicts for show.",
            "",
        ]
    bodies = {
        "correctness": _md_correctness(sec["correctness"]),
        "generator": _md_generator(sec["generator"]),
        "adaptation": _md_adaptation(sec["adaptation"]),
        "original": _md_original(sec["original"]),
        "profile": _md_profile(sec["profile"], data["decision"]),
    }
    for number, name in enumerate(SECTIONS, 1):
        s = sec[name]
        md += [f"## {number}. {TITLES[name]}", "", f"Status: **{s['status']}**"]
        md += [f"- {key}: {text}" for key in ("reason",) if (text := s.get(key))]
        md += [f"- failed: {e}" for e in s.get("errors") or []]
        md += [f"- cut: {c}" for c in s.get("cut") or []]
        md += ["", *bodies[name]]
    md += ["## Phases", "", *_table([{"phase": n, **sec[n]} for n in RUN_ORDER], PHASE_COLUMNS)]
    return "\n".join(md)


# -- the run -----------------------------------------------------------------------------


@dataclass
class Check:
    """What every phase shares."""

    settings: Settings
    device: torch.device
    report: Report
    out_dir: Path
    trace: bool  # also write profile_trace.json (Chrome trace of the profiled step)
    models: ModelCache = field(default_factory=ModelCache)


def run_phase(check: Check, name: str) -> None:
    budget = check.settings.budget_s
    later = RUN_ORDER[RUN_ORDER.index(name) + 1 :]
    deadline = STARTED + budget * (1 - sum(PHASE_SHARES[n] for n in later))
    allowed = deadline - time.monotonic()
    entry = check.report.section(name)
    if allowed < max(2.0, 0.01 * budget):
        entry.update(
            status="skipped", reason=f"no time left: {max(allowed, 0):.0f} s to its deadline"
        )
        check.report.write()
        print(f"[{time.monotonic() - STARTED:6.1f} s] {name}: skipped (no time left)", flush=True)
        return
    phase = Phase(name, deadline)
    phase.out.update(status="running", allowed_s=round(allowed, 1))
    check.report.data["sections"][name] = phase.out  # the watchdog sees the figures so far
    check.report.write()
    started = time.monotonic()
    failure = None
    try:
        PHASES[name](check, phase)
    except Exception as exc:  # record, free, go on with the next phase
        failure = describe_error(exc)
    free_memory()
    status = "ok"
    if failure or phase.errors or phase.cut:
        status = "failed" if failure else "errors" if phase.errors else "partial"
    head = {"status": status, "seconds": round(time.monotonic() - started, 1)}
    head.update(allowed_s=phase.out.pop("allowed_s"), reason=failure)
    head.update(errors=phase.errors, cut=phase.cut)
    phase.out.pop("status")
    check.report.data["sections"][name] = {**head, **phase.out}
    check.report.write()
    print(
        f"[{time.monotonic() - STARTED:6.1f} s] {name}: {status} ({head['seconds']} s)", flush=True
    )


def start_watchdog(report: Report, at: float) -> None:
    """At `at`, write the report with the running phase marked killed and end the process:
    a phase stuck where no deadline is polled (a compile, a hung kernel) must not lose it."""

    def fire() -> None:
        for section in report.data["sections"].values():
            if section.get("status") == "running":
                section["status"] = "killed"
                section["reason"] = f"watchdog: --budget-s + {GRACE_S:.0f} s passed"
        report.data["meta"]["killed_by_watchdog"] = True
        for _ in range(3):  # the main thread may be changing a section: try again
            try:
                report.write()
                break
            except RuntimeError:
                time.sleep(0.2)
        sys.stderr.write("gpu_check: the watchdog ended the run; the report is written\n")
        os._exit(0)

    timer = threading.Timer(max(0.0, at - time.monotonic()), fire)
    timer.daemon = True
    timer.start()


def _git(*args: str) -> str:
    run = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=5)
    return run.stdout.strip()


def environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "open_clip": open_clip.__version__,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "git": None,
    }
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
        env["git"] = (head + ("+changes" if dirty else "")) or None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(
            gpu=props.name,
            gpu_memory_gb=round(props.total_memory / GB, 1),
            capability=f"{props.major}.{props.minor}",
        )
    return env


def _comma_list(kind: type) -> Callable[[str], tuple]:
    return lambda text: tuple(kind(x.strip()) for x in text.split(",") if x.strip())


_SETTING_TYPES = {
    "int": int,
    "float": float,
    "str": str,
    "tuple[int, ...]": _comma_list(int),
    "tuple[str, ...]": _comma_list(str),
}


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Settings]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default=None, help="report directory (default: $OUT, else ./gpu-check)")
    p.add_argument("--device", default="cuda", help="cuda, cuda:N, cpu (default cuda)")
    p.add_argument("--quick", action="store_true", help="every phase at a tiny scale (QUICK)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument(
        "--trace", action="store_true", help="also write the profiled step's Chrome trace"
    )
    for f in dataclasses.fields(Settings):  # one flag per setting, overriding the preset
        full, quick = getattr(FULL, f.name), getattr(QUICK, f.name)
        p.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=_SETTING_TYPES[str(f.type)],
            default=None,
            help=f"default {_cell(list(full))} ({_cell(list(quick))} with --quick)"
            if isinstance(full, tuple)
            else f"default {full} ({quick} with --quick)",
        )
    args = p.parse_args(argv)
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Settings)}
    settings = dataclasses.replace(
        QUICK if args.quick else FULL, **{k: v for k, v in given.items() if v is not None}
    )
    if settings.steps < 2 or settings.original_steps < 2:
        p.error("--steps and --original-steps must be at least 2: the first step is warm-up")
    return args, settings


def main(argv: list[str] | None = None) -> int:
    args, settings = parse_args(argv)
    out_dir = Path(args.out or os.environ.get("OUT") or "gpu-check")
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    meta: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "argv": sys.argv[1:] if argv is None else list(argv),
        "device": args.device,
        "quick": args.quick,
        "budget_s": settings.budget_s,
        "settings": dataclasses.asdict(settings),
    }
    report = Report(out_dir, meta)
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        meta["error"] = f"{exc}; for the CPU smoke run: --device cpu --quick"
        for name in SECTIONS:
            report.section(name).update(status="skipped", reason="no device")
        report.write()
        print(f"gpu_check: {meta['error']}; report in {out_dir}", file=sys.stderr)
        return 0
    meta["device"] = str(device)
    meta["environment"] = environment(device)
    meta["targets_apply"] = (
        device.type == "cuda"
        and settings.size == 1024
        and {c.split(":")[0] for c in settings.clip} == {"ViT-B-32", "ViT-B-16"}
    )
    start_watchdog(report, STARTED + settings.budget_s + GRACE_S)
    check = Check(settings, device, report, out_dir, trace=args.trace)
    for name in RUN_ORDER:
        run_phase(check, name)
    report.write()
    print((out_dir / "gpu_check.md").read_text(encoding="utf-8"))
    print(f"report: {out_dir / 'gpu_check.json'} and {out_dir / 'gpu_check.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
