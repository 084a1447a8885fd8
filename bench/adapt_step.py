"""Adaptation step benchmark: seconds per training step (layer selection included) and peak
memory, one fresh process per configuration.

    # CPU, 256 px, batch 2, ViT-B-32 with random weights (what docs/performance.md reports)
    .venv/bin/python bench/adapt_step.py --size 256 --clip ViT-B-32:random --steps 3

    # GPU target: 1024 px, both CLIP models, the paper's 300 steps
    .venv/bin/python bench/adapt_step.py --size 1024 --clip ViT-B-32:random,ViT-B-16:random \
        --device cuda --steps 300 --configs latent

Each configuration runs `worker.engine.run_adaptation` on a random generator of the given
size (style_dim 512, channel_multiplier 2: the FFHQ architecture) in a child process, and
reads the per-step wall time (selection + training step) from its metrics.jsonl. The first
step is reported apart (allocator warm-up); "s/step" is the mean of the others. Peak memory
is the child's ru_maxrss (everything the process ever held: models, text encoding, samples)
and, on CUDA, torch.cuda.max_memory_allocated/reserved. "cpu s/step" is the process's CPU
time per step (all threads): on a shared machine it moves less with the load than wall time. Configurations:
  latent    the paper's W+ probe every step (probe batch 8, k 10)
  gradient  the gradient probe every step (probe batch 8, k 10)
  none      no selection: every candidate layer trained (k 0)
Ratios against a reference (seconds per step, GB) are printed when given.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "latent": {"selection": "latent", "layers": 10, "probe_batch": 8, "reselect_every": 1},
    "gradient": {"selection": "gradient", "layers": 10, "probe_batch": 8, "reselect_every": 1},
    "none": {"layers": 0},
}


def child(args: argparse.Namespace) -> dict:
    """Run one configuration in this process and return its figures."""
    import torch

    sys.path.insert(0, str(ROOT))
    from nada.params import AdaptParams, ClipSpec
    from worker.engine import ModelCache, resolve_device, run_adaptation

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    clips = tuple(ClipSpec(name.strip(), 1.0) for name in args.clip.split(","))
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
        **CONFIGS[args.child],
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
    seconds = [line["seconds"] for line in lines]
    selection = [line["selection_seconds"] for line in lines]
    later = seconds[1:] or seconds
    cpu = [b - a for a, b in zip(cpu_marks, cpu_marks[1:], strict=False)]
    cpu_later = cpu[1:] or cpu
    figures = {
        "config": args.child,
        "size": args.size,
        "batch_size": args.batch_size,
        "clip": args.clip + (" (bf16)" if args.clip_bf16 else ""),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "steps": len(seconds),
        "first_step_s": round(seconds[0], 3),
        "s_per_step": round(sum(later) / len(later), 3),
        "selection_s_per_step": round(sum(selection[1:] or selection) / len(later), 3),
        "cpu_s_per_step": round(sum(cpu_later) / len(cpu_later), 3),
        "run_s": round(total, 1),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }
    if device.type == "cuda":
        figures["gpu"] = torch.cuda.get_device_name(device)
        figures["peak_gpu_allocated_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        figures["peak_gpu_reserved_gb"] = round(torch.cuda.max_memory_reserved(device) / 2**30, 2)
    return figures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", type=int, default=256, help="generator resolution (random weights)")
    p.add_argument("--clip", default="ViT-B-32:random", help="comma-separated CLIP models")
    p.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    p.add_argument("--steps", type=int, default=3, help="training steps per configuration")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--configs", default="latent,none", help=f"of {', '.join(CONFIGS)}")
    p.add_argument("--clip-bf16", action="store_true", help="CLIP under bf16 autocast (CUDA only)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--reference-seconds", type=float, default=None, help="s/step to compare to")
    p.add_argument("--reference-gb", type=float, default=None, help="peak GB to compare to")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise SystemExit(f"--configs: unknown {', '.join(unknown)}; known: {', '.join(CONFIGS)}")
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    results = []
    for config in configs:
        cmd = [sys.executable, __file__, "--child", config]
        for flag in ("size", "clip", "device", "steps", "batch_size", "threads"):
            cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
        if args.clip_bf16:
            cmd.append("--clip-bf16")
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode:
            sys.stderr.write(proc.stderr[-4000:])
            raise SystemExit(f"configuration {config} failed (exit {proc.returncode})")
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
        if args.reference_seconds:
            figures["time_ratio"] = round(figures["s_per_step"] / args.reference_seconds, 3)
        if args.reference_gb:
            figures["memory_ratio"] = round(figures["peak_rss_gb"] / args.reference_gb, 3)
        results.append(figures)
        print(json.dumps(figures), flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    header = (
        f"{'config':<9} {'s/step':>8} {'select s':>9} {'cpu s/step':>11} {'1st step':>9} "
        f"{'peak RSS GB':>12}"
    )
    print(header)
    for r in results:
        print(
            f"{r['config']:<9} {r['s_per_step']:>8.2f} {r['selection_s_per_step']:>9.2f} "
            f"{r['cpu_s_per_step']:>11.2f} {r['first_step_s']:>9.2f} {r['peak_rss_gb']:>12.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
