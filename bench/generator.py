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

StyleGAN3 (configs T and R, built from NVIDIA's init_kwargs with random weights):

    python bench/generator.py --family stylegan3 --batch 1 --threads 2          # config T
    python bench/generator.py --family stylegan3 --config r --cbase 32768

Each path (fast ops, reference ops) runs in a fresh process of its own, so that its peak
memory is its own: on the CPU the process's peak resident set (VmHWM), which only grows, on
CUDA torch.cuda.max_memory_allocated. Per path: forward and forward+backward seconds (the
synthesis network from fixed W+, the mapping frozen, as in adaptation), FLOPs of each, peak
memory after the forwards and after the forward+backwards, and the ratios fast/reference.
On the CPU for config T at 256 px, batch 1, the ratios to the anchor of issue 21 (NVIDIA's
own code, measured once on this machine kind; a stated constant, not measured here).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
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
    parser.add_argument(
        "--family", choices=("stylegan2", "stylegan3"), default="stylegan2", help="generator"
    )
    parser.add_argument(
        "--config", choices=("t", "r"), default="t", help="StyleGAN3 config (T or R)"
    )
    parser.add_argument(
        "--cbase",
        type=int,
        default=16384,
        help="StyleGAN3 channel_base of config T: 16384 is the published ffhqu-256 file, "
        "32768 NVIDIA's training default; config R doubles it and channel_max, as NVIDIA's "
        "train.py does",
    )
    parser.add_argument("--worker", choices=PATHS_SG3, help=argparse.SUPPRESS)
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
    if args.family == "stylegan3":
        if args.compile:
            parser.error("--compile is for --family stylegan2")
        if args.worker:
            result = measure_stylegan3(args)
            print(json.dumps(result))
            return result
        return bench_stylegan3(args)

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

    flops: dict[str, int] = {}
    times_fb: dict[str, list[float]] = {name: [] for name in paths}
    times_f: dict[str, list[float]] = {name: [] for name in paths}
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


# --- StyleGAN3 ----------------------------------------------------------------------------

PATHS_SG3 = ("fast", "reference")

# Issue 21's anchor: NVIDIA's own StyleGAN3 code (its CPU path, 2 threads, the ffhqu-256
# configuration of config T), one image's forward+backward at 256 px, measured once on this
# machine kind. A stated constant: it is not measured here.
ANCHOR = {"forward_backward_s": 56.9, "peak_memory_gb": 12.1, "size": 256, "batch": 1}


def stylegan3_init_kwargs(size: int, config: str, cbase: int) -> dict:
    """NVIDIA's init_kwargs of a StyleGAN3 generator as their train.py builds them
    (`--cfg stylegan3-t|r --cbase CBASE`, mapping of 2 layers, unconditional)."""
    kwargs = {
        "z_dim": 512, "w_dim": 512, "c_dim": 0, "img_resolution": size, "img_channels": 3,
        "mapping_kwargs": {"num_layers": 2}, "channel_base": cbase, "channel_max": 512,
        "num_fp16_res": 4, "conv_clamp": 256, "magnitude_ema_beta": 0.5 ** (32 / 20000),
    }  # fmt: skip
    if config == "r":
        kwargs.update(conv_kernel=1, use_radial_filters=True)
        kwargs["channel_base"] *= 2
        kwargs["channel_max"] *= 2
    return kwargs


def _peak_memory_gb(device: torch.device) -> float:
    """The process's peak resident set (CPU: VmHWM, it only grows) or the peak of
    torch.cuda.max_memory_allocated since its last reset, in GB (1e9 bytes)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e9  # kB there are KiB
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure_stylegan3(args: argparse.Namespace) -> dict:
    """One path in this process (the --worker side): times, FLOPs, peak memory."""
    from stylegan2.stylegan3 import build

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.retain_freed_memory and not retain_freed_memory():
        raise SystemExit("--retain-freed-memory: glibc's mallopt is not available here")
    device = torch.device(args.device)
    kwargs = stylegan3_init_kwargs(args.size, args.config, args.cbase)
    g = build(kwargs, seed=0).to(device).set_reference_ops(args.worker == "reference")
    g.mapping.requires_grad_(False)  # frozen, as in adaptation
    z = torch.randn(args.batch, g.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ws = g.mapping(z.to(device))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    built_gb = _peak_memory_gb(device)

    def forward():
        with torch.no_grad():
            g.synthesis(ws)

    def forward_backward():
        g.zero_grad(set_to_none=True)
        g.synthesis(ws).square().mean().backward()

    # Each FLOP count is also its mode's warm-up (filters prepared, allocator primed); the
    # forward's peak is read before any backward has run.
    flops_f = _count_flops(forward)
    times_f = [_timed_cpu(forward, device) for _ in range(args.repeats)]
    peak_f = _peak_memory_gb(device)
    flops_fb = _count_flops(forward_backward)
    times_fb = [_timed_cpu(forward_backward, device) for _ in range(args.repeats)]
    peak_fb = _peak_memory_gb(device)
    return {
        "path": args.worker,
        "forward_s": round(statistics.median(t for t, _ in times_f), 3),
        "forward_backward_s": round(statistics.median(t for t, _ in times_fb), 3),
        "forward_backward_cpu_s": round(statistics.median(c for _, c in times_fb), 3),
        "gflop_forward": round(flops_f / 1e9, 1),
        "gflop_forward_backward": round(flops_fb / 1e9, 1),
        "built_memory_gb": round(built_gb, 3),
        "peak_memory_forward_gb": round(peak_f, 3),
        "peak_memory_forward_backward_gb": round(peak_fb, 3),
        "num_threads": torch.get_num_threads(),
    }


def _worker_argv(args: argparse.Namespace, path: str) -> list[str]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--family", "stylegan3"]
    argv += ["--worker", path, "--config", args.config, "--cbase", str(args.cbase)]
    argv += ["--size", str(args.size), "--batch", str(args.batch), "--device", args.device]
    argv += ["--repeats", str(args.repeats), "--threads", str(args.threads)]
    return argv + (["--retain-freed-memory"] if args.retain_freed_memory else [])


def bench_stylegan3(args: argparse.Namespace) -> dict:
    """Every path in a fresh process of its own, then the table and the JSON line."""
    device = torch.device(args.device)
    paths = PATHS_SG3[:1] if args.no_reference else PATHS_SG3
    kwargs = stylegan3_init_kwargs(args.size, args.config, args.cbase)
    load_start = os.getloadavg()
    measured = {}
    for path in paths:
        proc = subprocess.run(_worker_argv(args, path), capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"the {path} path failed:\n{proc.stderr[-3000:]}")
        measured[path] = json.loads(proc.stdout.strip().splitlines()[-1])
    load_end = os.getloadavg()
    threads = next(iter(measured.values()))["num_threads"]
    result: dict = {
        "family": "stylegan3",
        "config": args.config,
        "cbase": args.cbase,
        "channel_base": kwargs["channel_base"],
        "channel_max": kwargs["channel_max"],
        "size": args.size,
        "batch": args.batch,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu x{threads} threads",
        "torch": torch.__version__,
        "memory": "torch.cuda.max_memory_allocated"
        if device.type == "cuda"
        else "process peak RSS (VmHWM), a fresh process per path",
        "retain_freed_memory": args.retain_freed_memory,
        "load_start": [round(x, 2) for x in load_start],
        "load_end": [round(x, 2) for x in load_end],
        "paths": {},
    }
    for path, m in measured.items():
        entry = {k: v for k, v in m.items() if k not in ("path", "num_threads")}
        entry["gflops_per_s"] = round(m["gflop_forward_backward"] / m["forward_backward_s"], 1)
        result["paths"][path] = entry
    if "reference" in result["paths"]:
        ref = result["paths"]["reference"]
        for entry in result["paths"].values():
            entry["time_vs_reference"] = round(
                entry["forward_backward_s"] / ref["forward_backward_s"], 3
            )
            entry["forward_time_vs_reference"] = round(entry["forward_s"] / ref["forward_s"], 3)
            entry["cpu_vs_reference"] = round(
                entry["forward_backward_cpu_s"] / ref["forward_backward_cpu_s"], 3
            )
            entry["memory_vs_reference"] = round(
                entry["peak_memory_forward_backward_gb"] / ref["peak_memory_forward_backward_gb"],
                3,
            )
    anchored = (
        device.type == "cpu"
        and args.config == "t"
        and args.size == ANCHOR["size"]
        and args.batch == ANCHOR["batch"]
    )
    if anchored:
        result["anchor"] = {**ANCHOR, "source": "issue 21: NVIDIA's code, CPU, 2 threads"}
        for entry in result["paths"].values():
            entry["time_vs_anchor"] = round(
                entry["forward_backward_s"] / ANCHOR["forward_backward_s"], 3
            )
            entry["memory_vs_anchor"] = round(
                entry["peak_memory_forward_backward_gb"] / ANCHOR["peak_memory_gb"], 3
            )

    print(
        f"stylegan3 config {args.config.upper()} {args.size}px batch {args.batch}, channel_base "
        f"{kwargs['channel_base']} channel_max {kwargs['channel_max']}, on "
        f"{result['device_name']}, torch {torch.__version__}"
    )
    print(f"memory: {result['memory']}")
    print(f"load average {load_start[0]:.2f} -> {load_end[0]:.2f} (1 min)")
    print(
        f"{'path':<10} {'fwd s':>7} {'f+b s':>7} {'cpu s':>7} {'GFLOP f':>8} {'GFLOP f+b':>9}"
        f" {'GB f':>6} {'GB f+b':>7} {'t x ref':>7} {'c x ref':>7} {'m x ref':>7}"
        f" {'t x anc':>7} {'m x anc':>7}"
    )
    nan = float("nan")
    for path, e in result["paths"].items():
        print(
            f"{path:<10} {e['forward_s']:>7.2f} {e['forward_backward_s']:>7.2f}"
            f" {e['forward_backward_cpu_s']:>7.2f} {e['gflop_forward']:>8.1f}"
            f" {e['gflop_forward_backward']:>9.1f} {e['peak_memory_forward_gb']:>6.2f}"
            f" {e['peak_memory_forward_backward_gb']:>7.2f}"
            f" {e.get('time_vs_reference', nan):>7.2f} {e.get('cpu_vs_reference', nan):>7.2f}"
            f" {e.get('memory_vs_reference', nan):>7.2f}"
            f" {e.get('time_vs_anchor', nan):>7.2f} {e.get('memory_vs_anchor', nan):>7.2f}"
        )
    if anchored:
        print(
            f"anchor (stated, not measured): NVIDIA's code {ANCHOR['forward_backward_s']} s, "
            f"{ANCHOR['peak_memory_gb']} GB per forward+backward (issue 21)"
        )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
