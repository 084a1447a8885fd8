"""A fresh worker process for tests/worker/test_device_setup.py.

    python tests/worker/fresh_worker_probe.py WORK ENGINE [ENGINE ...]

runs the named engine calls (invert, adapt, render, edit) in that order, the real ones, on
tiny models (random-8, the random 'nada-tiny' CLIP) and one ModelCache, as a worker runs
jobs; writes WORK/settings.json: torch's settings before any engine ran, then per call every
distinct state its progress events saw. render and edit read the files an earlier adapt and
invert (in this process or another) left in WORK.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch

from invert.pipeline import run_edit, run_inversion
from nada import rundir
from nada.events import Progress
from nada.params import AdaptParams, ClipSpec
from nada.photo_params import EditParams, InvertParams
from nada.render_params import RenderParams
from worker.engine import run_adaptation
from worker.model_cache import ModelCache
from worker.renders import run_render

PROBE_BYTES = 64 << 20  # above glibc's largest default mmap threshold (32 MiB)
IDS = {"inversion_id": "1" * 32, "job_id": "2" * 32}  # an edit's params name two jobs


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost",
    )]  # fmt: skip


def _mmapped_bytes() -> Callable[[], int] | None:
    try:
        mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2  # glibc 2.33+
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = _MallInfo2
    return lambda: int(mallinfo2().hblkhd)


MMAPPED = _mmapped_bytes()


def heap_mmaps_large_blocks() -> bool | None:
    """Whether malloc serves a 64 MiB block with its own mmap (glibc's default) rather than
    from the heap it keeps (stylegan2.device.retain_freed_memory); None: not glibc."""
    if MMAPPED is None:
        return None
    before = MMAPPED()
    block = torch.empty(PROBE_BYTES, dtype=torch.uint8)  # malloc'd, its pages never touched
    grown = MMAPPED() - before
    del block
    return grown >= PROBE_BYTES


def settings() -> dict[str, Any]:
    return {
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "cuda_alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF"),
        "heap_mmaps_large_blocks": heap_mmaps_large_blocks(),
    }


def invert(work: Path, models: ModelCache, on_progress: Callable[[Progress], None]) -> None:
    photo = work / "photo.png"
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    PIL.Image.fromarray(pixels).save(photo)
    params = InvertParams(generator="random-8", encoder="none", align=False, refine_steps=2,
                          perceptual_weight=0.0, sample_every=0)  # fmt: skip
    run_inversion(params, work / "inversion", photo_path=photo, device="cpu",
                  on_progress=on_progress, models=models)  # fmt: skip


def adapt(work: Path, models: ModelCache, on_progress: Callable[[Progress], None]) -> None:
    params = AdaptParams(source_text="photo", target_text="sketch", generator="random-8",
                         clip_models=(ClipSpec("nada-tiny:random", 1.0),), steps=2, layers=1,
                         batch_size=2, probe_batch=2, sample_every=2, n_samples=1,
                         score_latents=2, seed=3)  # fmt: skip
    run_adaptation(params, work / "adaptation", device="cpu", on_progress=on_progress,
                   models=models)  # fmt: skip


def render(work: Path, models: ModelCache, on_progress: Callable[[Progress], None]) -> None:
    run_render(RenderParams(seeds=(1, 2)), work / "render",
               checkpoint_path=rundir.adapted_path(work / "adaptation"), device="cpu",
               on_progress=on_progress, models=models)  # fmt: skip


def edit(work: Path, models: ModelCache, on_progress: Callable[[Progress], None]) -> None:
    run_edit(EditParams(**IDS), work / "edit",
             latent_path=work / "inversion" / rundir.LATENT,
             checkpoint_path=rundir.adapted_path(work / "adaptation"), device="cpu",
             on_progress=on_progress, models=models)  # fmt: skip


ENGINES = {"invert": invert, "adapt": adapt, "render": render, "edit": edit}


def main(argv: list[str]) -> None:
    work, names = Path(argv[1]), argv[2:]
    torch.set_num_threads(1)  # the process owner's choice, as a worker's: engines keep it
    record: dict[str, Any] = {"before": settings(), "runs": []}
    models = ModelCache()
    for name in names:
        seen: list[dict[str, Any]] = []

        def on_progress(event: Progress, seen: list[dict[str, Any]] = seen) -> None:
            state = settings()
            if state not in seen:
                seen.append(state)

        ENGINES[name](work, models, on_progress)
        record["runs"].append({"engine": name, "states": seen})
    (work / "settings.json").write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main(sys.argv)
