"""Generator speed: forward and forward+backward time, achieved GFLOP/s, and the ratio to
the reference ops (the straightforward port's computation) measured side by side.

    python bench/generator.py                       # 256 px, batch 2, CPU
    python bench/generator.py --size 1024 --device cuda --compile

Reports (one JSON object on the last line, a table above it):
  * time per forward and per forward+backward, fast ops and reference ops, interleaved so that
    a busy machine slows both alike; the ratio fast/reference is the figure that counts;
  * FLOPs per forward+backward counted with torch.utils.flop_counter, and GFLOP/s;
  * this machine's dense conv2d throughput (a 3x3, 256->256 channel convolution at 64x64,
    forward+backward, measured the same way) and each path's GFLOP/s as a share of it.
The reference path does more FLOPs (zero insertion, one-channel convolutions), so compare
speed by time; GFLOP/s says how well each path uses the hardware.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stylegan2 import Generator  # noqa: E402
from worker.engine import retain_freed_memory  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device) -> float:
    return _timed_cpu(fn, device)[0]


def _timed_cpu(fn, device: torch.device) -> tuple[float, float]:
    """Wall seconds and process CPU seconds (all threads, user + system) of one call."""
    _sync(device)
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    _sync(device)
    return time.perf_counter() - start, time.process_time() - cpu


def _count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def conv_throughput(device: torch.device, dtype: torch.dtype, repeats: int) -> tuple[float, int]:
    """Seconds and FLOPs of one dense conv2d forward+backward of a generator-like shape."""
    x = torch.randn(2, 256, 64, 64, device=device, dtype=dtype, requires_grad=True)
    w = torch.randn(256, 256, 3, 3, device=device, dtype=dtype, requires_grad=True)

    def step():
        F.conv2d(x, w, padding=1).sum().backward()

    step()
    flops = _count_flops(step)
    return min(_timed(step, device) for _ in range(repeats)), flops


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs per path (median reported)"
    )
    parser.add_argument(
        "--no-reference", action="store_true", help="skip the reference ops baseline"
    )
    parser.add_argument(
        "--compile", action="store_true", help="also time torch.compile of the fast path"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    parser.add_argument(
        "--retain-freed-memory",
        action="store_true",
        help="glibc keeps freed blocks for reuse, as the engine sets it (both paths)",
    )
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.retain_freed_memory and not retain_freed_memory():
        parser.error("--retain-freed-memory: glibc's mallopt is not available here")
    device = torch.device(args.device)
    torch.manual_seed(0)
    g = Generator(args.size).to(device)
    z = torch.randn(args.batch, 512, device=device)
    noise = g.make_noise()

    def forward(model):
        with torch.no_grad():
            model([z], noise=noise)

    def forward_backward(model):
        g.zero_grad(set_to_none=True)
        img, _ = model([z], noise=noise)
        img.square().mean().backward()

    paths = {"fast": lambda: g.set_reference_ops(False)}
    if not args.no_reference:
        paths["reference"] = lambda: g.set_reference_ops(True)
    compiled = None
    if args.compile:
        g.set_reference_ops(False)
        compiled = torch.compile(g)
        paths["compiled"] = lambda: g.set_reference_ops(False)

    def model_for(name):
        return compiled if name == "compiled" else g

    flops, times_fb, times_f = {}, {name: [] for name in paths}, {name: [] for name in paths}
    cpu_fb: dict[str, list[float]] = {name: [] for name in paths}
    load_start = os.getloadavg()
    for name, select in paths.items():
        select()
        forward_backward(model_for(name))  # warm-up (and compilation)
        flops[name] = (
            _count_flops(lambda n=name: forward_backward(model_for(n)))
            if name != "compiled"
            else flops["fast"]
        )
    for _ in range(args.repeats):  # interleaved, so background load hits every path alike
        for name, select in paths.items():
            select()
            wall, cpu = _timed_cpu(lambda n=name: forward_backward(model_for(n)), device)
            times_fb[name].append(wall)
            cpu_fb[name].append(cpu)
            times_f[name].append(_timed(lambda n=name: forward(model_for(n)), device))
    g.set_reference_ops(False)
    load_end = os.getloadavg()

    conv_s, conv_flops = conv_throughput(device, torch.float32, args.repeats)
    conv_gflops = conv_flops / conv_s / 1e9

    result = {
        "size": args.size,
        "batch": args.batch,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu x{torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "conv2d_gflops_per_s": round(conv_gflops, 1),
        "retain_freed_memory": args.retain_freed_memory,
        "load_start": [round(x, 2) for x in load_start],
        "load_end": [round(x, 2) for x in load_end],
        "paths": {},
    }
    for name in paths:
        fb = statistics.median(times_fb[name])
        gf = flops[name] / fb / 1e9
        result["paths"][name] = {
            "forward_s": round(statistics.median(times_f[name]), 4),
            "forward_backward_s": round(fb, 4),
            "forward_backward_cpu_s": round(statistics.median(cpu_fb[name]), 4),
            "gflop_per_forward_backward": round(flops[name] / 1e9, 1),
            "gflops_per_s": round(gf, 1),
            "share_of_conv2d": round(gf / conv_gflops, 3),
        }
    if "reference" in result["paths"]:
        ref = result["paths"]["reference"]
        for entry in result["paths"].values():
            entry["time_vs_reference"] = round(
                entry["forward_backward_s"] / ref["forward_backward_s"], 3
            )
            entry["cpu_vs_reference"] = round(
                entry["forward_backward_cpu_s"] / ref["forward_backward_cpu_s"], 3
            )

    print(
        f"generator {args.size}px batch {args.batch} on {result['device_name']}, torch {torch.__version__}"
    )
    print(f"dense conv2d: {conv_gflops:.1f} GFLOP/s")
    print(
        f"load average {load_start[0]:.2f} -> {load_end[0]:.2f} (1 min); "
        f"retain freed memory: {args.retain_freed_memory}"
    )
    print(
        f"{'path':<10} {'fwd s':>8} {'fwd+bwd s':>10} {'cpu s':>8} {'GFLOP':>8} {'GFLOP/s':>8}"
        f" {'% conv':>7} {'x ref':>6} {'cpu x ref':>9}"
    )
    nan = float("nan")
    for name, e in result["paths"].items():
        print(
            f"{name:<10} {e['forward_s']:>8.3f} {e['forward_backward_s']:>10.3f}"
            f" {e['forward_backward_cpu_s']:>8.2f} {e['gflop_per_forward_backward']:>8.1f}"
            f" {e['gflops_per_s']:>8.1f} {100 * e['share_of_conv2d']:>6.1f}%"
            f" {e.get('time_vs_reference', nan):>6.2f} {e.get('cpu_vs_reference', nan):>9.2f}"
        )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
