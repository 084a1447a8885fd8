"""Where one training step of our engine spends its time: phases and top ops (torch.profiler).

    # 256 px, ViT-B-32 (random weights), one thread, the paper's W+ probe every step
    .venv/bin/python bench/profile_step.py --size 256 --threads 1 --selection latent
    # no selection (every candidate layer trained)
    .venv/bin/python bench/profile_step.py --size 256 --threads 1 --layers 0
    # with the op table (slower: the profiler records every op)
    .venv/bin/python bench/profile_step.py --size 256 --threads 1 --profile --top 25

Builds the engine's own objects (`worker.engine._Adaptation`: the same generators, CLIP
guide, probe and training step as `run_adaptation`), runs one warm-up step, then times each
phase of the next steps: the probe (`select`), and the training step. CPU time is the
process's (all threads), so it is comparable with bench/adapt_step.py's "cpu s/step".
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--clip", default="ViT-B-32:random")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--selection", default="latent", choices=("latent", "gradient"))
    p.add_argument("--layers", type=int, default=10, help="k; 0 = every candidate, no probe")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--probe-batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    p.add_argument("--profile", action="store_true", help="torch.profiler table of the last step")
    p.add_argument("--top", type=int, default=20, help="rows of the op table")
    p.add_argument(
        "--no-retain",
        action="store_true",
        help="leave glibc's malloc defaults (run_adaptation calls retain_freed_memory)",
    )
    args = p.parse_args(argv)

    import torch

    from nada.params import AdaptParams, ClipSpec
    from worker.engine import ModelCache, _Adaptation, retain_freed_memory

    torch.set_num_threads(args.threads)
    retained = False if args.no_retain else retain_freed_memory()
    params = AdaptParams(
        source_text="photo",
        target_text="sketch",
        generator=f"random-{args.size}",
        clip_models=(ClipSpec(args.clip, 1.0),),
        layers=args.layers,
        selection=args.selection,
        batch_size=args.batch_size,
        probe_batch=args.probe_batch,
        steps=args.steps + 1,
    )
    with tempfile.TemporaryDirectory() as out:
        run = _Adaptation(params, Path(out), torch.device("cpu"), ModelCache(), params.generator)
        rows = []
        for step in range(args.steps + 1):
            profiler = None
            if args.profile and step == args.steps:
                profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
                profiler.__enter__()
            t0, c0 = time.perf_counter(), _cpu()
            run.state.selected = run.select(step)
            t1, c1 = time.perf_counter(), _cpu()
            run.train_step(step)
            t2, c2 = time.perf_counter(), _cpu()
            if profiler is not None:
                profiler.__exit__(None, None, None)
            rows.append(
                {
                    "step": step,
                    "select_s": round(t1 - t0, 2),
                    "select_cpu_s": round(c1 - c0, 2),
                    "train_s": round(t2 - t1, 2),
                    "train_cpu_s": round(c2 - c1, 2),
                    "layers": len(run.state.selected),
                    "load": round(os.getloadavg()[0], 2),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        if args.profile and profiler is not None:
            print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    summary = {
        "threads": args.threads,
        "retain_freed_memory": retained,
        "peak_rss_gb": round(peak, 2),
        "steps": rows[1:],
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
