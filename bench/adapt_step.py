r"""Adaptation step benchmark: our engine's training step against the original StyleGAN-NADA
step (bench/nada_original.py), measured side by side in one run, each in a fresh process.

    # CPU, 256 px, batch 2, ViT-B-32 with random weights (what docs/performance.md reports)
    .venv/bin/python bench/adapt_step.py --size 256 --clip ViT-B-32:random --steps 3

    # GPU: 1024 px, both CLIP models; ratios from 20 steps a side, then ours alone for the
    # 300-step target
    .venv/bin/python bench/adapt_step.py --size 1024 --clip ViT-B-32:random,ViT-B-16:random \
        --device cuda --steps 20
    .venv/bin/python bench/adapt_step.py --size 1024 --clip ViT-B-32:random,ViT-B-16:random \
        --device cuda --steps 300 --configs latent --sides ours

Both sides use the same settings: a random generator of the given size (style_dim 512,
channel_multiplier 2: the FFHQ architecture), the given CLIP models with seeded random
weights, the training batch, and per configuration:
  latent    the paper's W+ probe every step (probe batch 8, one SGD step, k layers)
  gradient  ours only: the gradient probe every step (compared with the original's latent)
  none      no selection: ours trains every candidate layer, the original its default
            layers (constant input, conv1, convs)
k is 10, or one less than the candidate layers for generators too small for that.

"ours" runs `worker.engine.run_adaptation` and reads each step's wall time (selection
included) from metrics.jsonl; "original" runs `nada_original.OriginalNada.step()`. The first
step is warm-up (allocator, the original's text direction); s/step is the median of the
others. "cpu s/step" is the process's CPU time per step (all threads): on shared cores it
moves less with the load than wall time. Peak RSS is the child's ru_maxrss, read by this
process when the child ends (everything it held: models, text encoding, ours' samples);
on CUDA also torch.cuda.max_memory_allocated/reserved. Configurations and sides are
interleaved (with --repeats, the side that goes first alternates), so a load change on a
shared machine hits both. Ratios are ours / original for each configuration.

Parametrizations (`--parametrizations weights,modulation`): ours trains the layers' weights
(StyleGAN-NADA) or one style vector per layer on the frozen weights (HyperDomainNet's domain
modulation, worker/modulation.py); each is its own child, and "modulation / weights" gives
the ratios of a modulation step to a weights step (time, CPU time, peak RSS; on CUDA peak
allocated memory) with the domain file's size:

    .venv/bin/python bench/adapt_step.py --size 256 --steps 3 --sides ours \
        --parametrizations weights,modulation
    .venv/bin/python bench/adapt_step.py --smoke     # seconds: 16 px, the tiny random CLIP

Memory guard: while a child runs, this process watches MemAvailable; below --min-free-gb it
kills the child (its own child, nothing else) instead of letting the kernel's OOM killer pick
a process. The child's figures then say "stopped" with the peak RSS it had reached, a lower
bound of what it needs, and the memory ratio becomes an upper bound ("<=").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "latent": {"selection": "latent", "probe_batch": 8, "reselect_every": 1},
    "gradient": {"selection": "gradient", "probe_batch": 8, "reselect_every": 1},
    "none": {"layers": 0},
}
BASELINE_OF = {"latent": "latent", "gradient": "latent", "none": "none"}
SIDES = ("ours", "original")
PARAMETRIZATIONS = ("weights", "modulation")
# --smoke: the smallest run of every path of the parametrization comparison (tests)
SMOKE = {
    "size": 8, "clip": "nada-tiny:random", "steps": 2, "threads": 1, "configs": "latent",
    "sides": "ours", "parametrizations": "weights,modulation", "json": True,
}  # fmt: skip
TARGETS = {"time": 0.6, "memory": 0.5}  # ours / original, at most
GB = 2**30


def layers_k(size: int) -> int:
    """k for the selecting configurations: 10 (the paper's), or candidates - 1 when the
    generator has no more than 10 candidate layers (conv1 + two convs per resolution)."""
    candidates = 1 + 2 * (int(math.log2(size)) - 2)
    return min(10, candidates - 1)


def _median_after_first(values: list[float]) -> float:
    return statistics.median(values[1:] or values)


def _cuda_figures(torch, device) -> dict:
    return {
        "gpu": torch.cuda.get_device_name(device),
        "peak_gpu_allocated_gb": round(torch.cuda.max_memory_allocated(device) / GB, 2),
        "peak_gpu_reserved_gb": round(torch.cuda.max_memory_reserved(device) / GB, 2),
    }


def child_ours(args: argparse.Namespace) -> dict:
    """Run one configuration of our engine in this process and return its figures."""
    import torch

    from nada.params import AdaptParams, ClipSpec
    from worker.engine import ModelCache, resolve_device, run_adaptation

    device = resolve_device(args.device)
    clips = tuple(ClipSpec(name.strip(), 1.0) for name in args.clip.split(","))
    config = dict(CONFIGS[args.child])
    config.setdefault("layers", layers_k(args.size))
    if args.parametrization != "weights":  # (a field older engines do not have)
        config["parametrization"] = args.parametrization
    if "score_latents" in {f.name for f in dataclasses.fields(AdaptParams)}:
        # Objective scores are evaluation at sample steps, not training: the original has
        # none, and ours would add their renders to the last step's CPU time and to the peak.
        config["score_latents"] = 0
    params = AdaptParams(
        source_text="photo",
        target_text="sketch",
        generator=f"random-{args.size}",
        clip_models=clips,
        steps=args.steps,
        batch_size=args.batch_size,
        sample_every=5000,  # only the step-0 and the final sample
        n_samples=1,
        seed=0,
        **config,
    )
    models = ModelCache()
    if args.clip_bf16:
        for spec in clips:
            models.clip(spec.name, device, seed=params.seed).autocast = torch.bfloat16
    cpu_marks: list[float] = []  # process CPU time (all threads) at each step boundary

    def on_progress(event) -> None:
        if event.kind == "step" or (event.kind == "stage" and event.stage == "training"):
            cpu_marks.append(time.process_time())

    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = run_adaptation(
            params, Path(out), device=str(device), models=models, on_progress=on_progress
        )
        total = time.perf_counter() - started
        lines = [json.loads(line) for line in result.metrics.read_text().splitlines()]
        domain = getattr(result, "domain", None)
        domain_kb = round(domain.stat().st_size / 1024, 1) if domain is not None else None
    seconds = [line["seconds"] for line in lines]
    cpu = [b - a for a, b in zip(cpu_marks, cpu_marks[1:], strict=False)]
    figures = {
        "layers": params.layers,
        "first_step_s": round(seconds[0], 3),
        "s_per_step": round(_median_after_first(seconds), 3),
        "selection_s_per_step": round(
            _median_after_first([line["selection_seconds"] for line in lines]), 3
        ),
        "cpu_s_per_step": round(_median_after_first(cpu), 3) if cpu else None,
        "step_s": [round(s, 3) for s in seconds],
        "run_s": round(total, 1),
    }
    if domain_kb is not None:
        figures["domain_kb"] = domain_kb
    if device.type == "cuda":
        figures.update(_cuda_figures(torch, device))
    return figures


def child_original(args: argparse.Namespace) -> dict:
    """Run one configuration of the original step in this process and return its figures."""
    import torch
    from nada_original import OriginalNada, timed_steps  # bench/ is the script's directory

    from worker.engine import resolve_device

    device = resolve_device(args.device)
    torch.manual_seed(0)  # the latents and noise; the weights are seeded on their own
    k = layers_k(args.size) if CONFIGS[args.child].get("layers") != 0 else 0
    started = time.perf_counter()
    nada = OriginalNada(
        generator=f"random-{args.size}",
        clip_models=[name.strip() for name in args.clip.split(",")],
        batch_size=args.batch_size,
        auto_layer_k=k,
        auto_layer_batch=CONFIGS[args.child].get("probe_batch", 8),
        device=device,
        texture_clip=args.texture_clip,
        clip_trainable=args.clip_trainable,
    )
    wall, cpu = timed_steps(nada, args.steps)
    figures = {
        "layers": k,
        "first_step_s": round(wall[0], 3),
        "s_per_step": round(_median_after_first(wall), 3),
        "cpu_s_per_step": round(_median_after_first(cpu), 3),
        "step_s": [round(s, 3) for s in wall],
        "run_s": round(time.perf_counter() - started, 1),
    }
    if device.type == "cuda":
        figures.update(_cuda_figures(torch, device))
    return figures


def child(args: argparse.Namespace) -> dict:
    import torch

    sys.path.insert(0, str(ROOT))
    if args.threads:
        torch.set_num_threads(args.threads)
    figures = {
        "config": args.child,
        "side": args.side,
        "size": args.size,
        "batch_size": args.batch_size,
        "clip": args.clip + (" (bf16)" if args.clip_bf16 and args.side == "ours" else ""),
        "device": args.device,
        "threads": torch.get_num_threads(),
        "steps": args.steps,
    }
    if args.side == "ours":
        figures["parametrization"] = args.parametrization
    figures.update(child_ours(args) if args.side == "ours" else child_original(args))
    return figures


# -- the parent: runs the children and compares ------------------------------------------


def _meminfo_gb(field: str) -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * 1024 / GB
    except OSError:
        return None
    return None


def _peak_rss_gb(pid: int) -> float | None:
    """VmHWM (peak resident set so far) of a running process, from /proc."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / GB
    except OSError:
        return None
    return None


def run_child(
    args: argparse.Namespace, config: str, side: str, parametrization: str = "weights"
) -> dict:
    """One configuration of one side in a fresh process; its figures plus the peak RSS the
    kernel recorded for it (ru_maxrss from wait4)."""
    cmd = [sys.executable, __file__, "--child", config, "--side", side]
    cmd += ["--parametrization", parametrization]
    for flag in ("size", "clip", "device", "steps", "batch_size", "threads"):
        cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    if args.clip_bf16:
        cmd.append("--clip-bf16")
    if args.texture_clip:
        cmd.append("--texture-clip")
    if args.clip_trainable:
        cmd.append("--clip-trainable")
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, text=True)
        stopped_at = None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            free = _meminfo_gb("MemAvailable")
            if stopped_at is None and free is not None and free < args.min_free_gb:
                stopped_at = _peak_rss_gb(proc.pid)
                os.kill(proc.pid, signal.SIGKILL)  # our own child
            time.sleep(0.1)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    rss = usage.ru_maxrss * 1024 / GB  # kilobytes on Linux
    base = {"config": config, "side": side, "load_start": round(load_start, 2)}
    if side == "ours":
        base["parametrization"] = parametrization
    base["load_end"] = round(os.getloadavg()[0], 2)
    if stopped_at is not None:
        return {
            **base,
            "stopped": f"memory guard: MemAvailable fell below {args.min_free_gb} GB",
            "peak_rss_gb": round(max(rss, stopped_at or 0.0), 2),
        }
    if proc.returncode:
        sys.stderr.write(stderr[-4000:])
        raise SystemExit(f"{side} {config} failed (exit {proc.returncode})")
    figures = json.loads(stdout.strip().splitlines()[-1])
    return {**figures, **base, "peak_rss_gb": round(rss, 2)}


def ratios(results: list[dict], configs: list[str]) -> dict[str, dict]:
    """ours / original per configuration: wall time, CPU time, peak RSS (None where the
    original did not finish; memory then an upper bound, flagged 'memory_bound')."""

    def pooled(side: str, config: str) -> list[dict]:
        return [
            r
            for r in results
            if r["side"] == side
            and r["config"] == config
            and r.get("parametrization", "weights") == "weights"
        ]

    out: dict[str, dict] = {}
    for config in configs:
        ours, base = pooled("ours", config), pooled("original", BASELINE_OF[config])
        finished = [r for r in base if "stopped" not in r]
        entry: dict = {"baseline": f"original {BASELINE_OF[config]}"}
        for key, name in (("s_per_step", "time"), ("cpu_s_per_step", "cpu_time")):
            a = [r[key] for r in ours if r.get(key) is not None]
            b = [r[key] for r in finished if r.get(key) is not None]
            ratio = statistics.median(a) / statistics.median(b) if a and b else None
            entry[name] = round(ratio, 3) if ratio is not None else None
        ours_rss = max(r["peak_rss_gb"] for r in ours)
        base_rss = max(r["peak_rss_gb"] for r in base)
        entry["memory"] = round(ours_rss / base_rss, 3)
        entry["memory_bound"] = "upper" if len(finished) < len(base) else None
        entry["meets_targets"] = (
            entry["time"] is not None
            and entry["time"] <= TARGETS["time"]
            and entry["memory"] <= TARGETS["memory"]
        )
        out[config] = entry
    return out


def modulation_ratios(results: list[dict], configs: list[str]) -> dict[str, dict]:
    """A modulation step / a weights step of ours per configuration (medians over the
    repeats; peak memory the largest), and the domain file's size in KB."""

    def pooled(config: str, parametrization: str) -> list[dict]:
        return [
            r
            for r in results
            if r["side"] == "ours"
            and r["config"] == config
            and r.get("parametrization", "weights") == parametrization
            and "stopped" not in r
        ]

    out: dict[str, dict] = {}
    for config in configs:
        mod, weights = pooled(config, "modulation"), pooled(config, "weights")
        if not mod or not weights:
            continue
        entry: dict = {"domain_kb": max(r.get("domain_kb") or 0.0 for r in mod)}
        keys = [("s_per_step", "time"), ("cpu_s_per_step", "cpu_time"),
                ("peak_rss_gb", "memory"), ("peak_gpu_allocated_gb", "gpu_memory")]  # fmt: skip
        for key, name in keys:
            a = [r[key] for r in mod if r.get(key)]
            b = [r[key] for r in weights if r.get(key)]
            if a and b:
                pick = max if name.endswith("memory") else statistics.median
                entry[name] = round(pick(a) / pick(b), 3)
        out[config] = entry
    return out


def print_report(results: list[dict], table: dict[str, dict]) -> None:
    print(
        f"{'config':<9} {'side':<9} {'s/step':>8} {'cpu s/step':>11} {'1st step':>9} "
        f"{'peak RSS GB':>12} {'load':>11}"
    )
    for r in results:
        load = f"{r['load_start']:.1f}-{r['load_end']:.1f}"
        if r.get("parametrization") == "modulation":
            r = {**r, "side": "ours mod"}
        if "stopped" in r:
            print(
                f"{r['config']:<9} {r['side']:<9} {'stopped':>8} {'':>11} {'':>9} "
                f"{'>=':>4}{r['peak_rss_gb']:>8.2f} {load:>11}"
            )
            continue
        cpu = f"{r['cpu_s_per_step']:.2f}" if r.get("cpu_s_per_step") is not None else "-"
        print(
            f"{r['config']:<9} {r['side']:<9} {r['s_per_step']:>8.2f} {cpu:>11} "
            f"{r['first_step_s']:>9.2f} {r['peak_rss_gb']:>12.2f} {load:>11}"
        )

    if not table:
        return

    def fmt(value: float | None) -> str:
        return f"{value:.2f}x" if value is not None else "n/a"

    print(f"ours / original (targets: time <= {TARGETS['time']}x, memory <= {TARGETS['memory']}x)")
    for config, entry in table.items():
        bound = "<= " if entry["memory_bound"] else ""
        print(
            f"  {config:<9} vs {entry['baseline']:<16} time {fmt(entry['time']):>6}  "
            f"cpu time {fmt(entry['cpu_time']):>6}  memory {bound}{fmt(entry['memory'])}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", type=int, default=256, help="generator resolution (random weights)")
    p.add_argument("--clip", default="ViT-B-32:random", help="comma-separated CLIP models")
    p.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    p.add_argument("--steps", type=int, default=3, help="steps per child (the first: warm-up)")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--configs", default="latent,none", help=f"of {', '.join(CONFIGS)}")
    p.add_argument("--repeats", type=int, default=1, help="rounds of all children, interleaved")
    p.add_argument("--sides", default=",".join(SIDES), help="ours,original (one side: no ratios)")
    p.add_argument("--clip-bf16", action="store_true", help="ours: CLIP under bf16 autocast (CUDA)")
    p.add_argument(
        "--texture-clip", action="store_true", help="original: also hold its unused RN50 CLIP"
    )
    p.add_argument(
        "--clip-trainable",
        action="store_true",
        help="original: CLIP's parameters left trainable (its code before mid-2022)",
    )
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument(
        "--min-free-gb", type=float, default=1.5, help="memory guard: stop a child below this"
    )
    p.add_argument(
        "--parametrizations", default="weights",
        help=f"ours: of {', '.join(PARAMETRIZATIONS)} (both: the modulation / weights ratios)",
    )  # fmt: skip
    p.add_argument("--smoke", action="store_true", help=f"a seconds-long run: {SMOKE}")
    p.add_argument("--json", action="store_true", help="print only the final JSON line")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument(
        "--parametrization", default="weights", choices=PARAMETRIZATIONS, help=argparse.SUPPRESS
    )
    p.add_argument("--side", default="ours", choices=SIDES, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    if args.steps < 2:
        p.error(f"--steps must be at least 2: the first is warm-up (got {args.steps})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise SystemExit(f"--configs: unknown {', '.join(unknown)}; known: {', '.join(CONFIGS)}")
    say = (lambda *a, **k: None) if args.json else print
    load_before = os.getloadavg()
    free = _meminfo_gb("MemAvailable")
    say(
        f"load average before: {load_before[0]:.2f} (1 min), {load_before[1]:.2f} (5 min) "
        f"on {os.cpu_count()} CPUs; memory available: "
        f"{'unknown' if free is None else f'{free:.1f} GB'}",
        flush=True,
    )
    sides = [side.strip() for side in args.sides.split(",") if side.strip()]
    if not sides or any(side not in SIDES for side in sides):
        raise SystemExit(f"--sides: got {args.sides!r}; known: {', '.join(SIDES)}")
    kinds = [k.strip() for k in args.parametrizations.split(",") if k.strip()]
    if not kinds or any(k not in PARAMETRIZATIONS for k in kinds):
        raise SystemExit(
            f"--parametrizations: got {args.parametrizations!r}; known: {', '.join(PARAMETRIZATIONS)}"
        )
    plan: list[tuple[str, str, str]] = []  # (config, side, parametrization), interleaved
    for config in configs:
        for side in sides:
            run = config if side == "ours" else BASELINE_OF[config]
            for kind in kinds if side == "ours" else ["weights"]:
                if (run, side, kind) not in plan:
                    plan.append((run, side, kind))
    results = []
    for repeat in range(args.repeats):
        for config, side, kind in plan if repeat % 2 == 0 else _swap_sides(plan):
            figures = run_child(args, config, side, kind)
            figures["repeat"] = repeat
            results.append(figures)
            say(json.dumps(figures), flush=True)
    load_after = os.getloadavg()
    say(f"load average after: {load_after[0]:.2f} (1 min), {load_after[1]:.2f} (5 min)")
    table = ratios(results, configs) if len(sides) == len(SIDES) else {}
    modulation = modulation_ratios(results, configs)
    if not args.json:
        print_report(results, table)
        for config, entry in modulation.items():
            figures = "  ".join(f"{k} {v}" for k, v in entry.items())
            print(f"  {config:<9} modulation / weights: {figures}")
    summary = {
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
        "ratios": table,
        "modulation_vs_weights": modulation,
        "results": results,
    }
    print(json.dumps(summary))
    return 0


def _swap_sides(plan: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The same children with the original first within each configuration."""
    swapped = list(plan)
    for i in range(0, len(swapped) - 1, 2):
        swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    return swapped


if __name__ == "__main__":
    sys.exit(main())
