"""Photo inversion speed: the pieces of `nada invert` timed one by one, with random weights
(no download).

    python bench/invert.py                                  # 256 px, CPU, a few iterations
    python bench/invert.py --device cuda --size 1024        # the FFHQ generator's size

Reports (a table, then one JSON object on the last line):
  * align     FFHQ alignment (invert.align.align_face) of a --photo-size square photo to the
              generator's size, from synthetic landmarks (the detector is not timed): CPU
              work (Pillow and numpy) on any device;
  * encode    one e4e forward (random IR-SE-50 weights, codes for --size) on a 256x256 input;
  * render    one generator forward of a W+ code (the reconstruction, an edit);
  * refine    ms per refinement step (invert.refine.refine_w_plus) with the pixel loss,
              with pixel + LPIPS-VGG (random backbone: the lpips package with
              pnet_rand=True, its linear heads from the wheel) and with the noise maps
              optimised too.
Each figure is the median of --repeats timed runs after one warm-up; a refine run is
--steps steps. The generator is random-<size> (style_dim 512, channel_multiplier 2: the
FFHQ architecture).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import PIL.Image
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import stylegan2  # noqa: E402
from invert.align import align_face  # noqa: E402
from invert.e4e_weights import random_e4e  # noqa: E402
from invert.perceptual import PerceptualLoss  # noqa: E402
from invert.refine import refine_w_plus, synthesize  # noqa: E402
from stylegan2.device import prepare  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(fn, device: torch.device, repeats: int) -> float:
    fn()  # warm-up: allocator, cuDNN autotuning, lazy inits
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def synthetic_face(photo_size: int) -> tuple[PIL.Image.Image, np.ndarray]:
    """A noise photo and a frontal 68-point layout whose eyes span a fifth of it."""
    rng = np.random.default_rng(0)
    photo = PIL.Image.fromarray(rng.integers(0, 256, (photo_size, photo_size, 3), np.uint8))
    lm = np.tile([0.0, 0.5], (68, 1))  # the points the recipe ignores: inside the face
    lm[36:42], lm[42:48] = (-0.5, 0.0), (0.5, 0.0)  # eyes
    lm[48], lm[54] = (-0.35, 0.9), (0.35, 0.9)  # mouth corners
    return photo, lm * (photo_size / 5) + photo_size / 2


def random_lpips(device: torch.device) -> PerceptualLoss | None:
    try:
        import lpips
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False)
    return PerceptualLoss(model).to(device)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=256, help="generator size (px)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=3, help="refinement steps per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (median reported)")
    parser.add_argument("--photo-size", type=int, default=1024, help="side of the photo (px)")
    parser.add_argument("--no-lpips", action="store_true", help="skip the LPIPS refinement")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    args = parser.parse_args(argv)

    prepare(threads=args.threads or None)  # as run_inversion runs: TF32, the heap
    device = torch.device(args.device)
    loaded = stylegan2.load_generator(f"random-{args.size}", device=device)
    g = loaded.generator.requires_grad_(False)
    e4e = random_e4e(args.size, seed=0, device=device)
    photo, landmarks = synthetic_face(args.photo_size)
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0)) * 2 - 1
    w_init = e4e.encode(x.to(device))  # [1, n_latent, 512]
    with torch.no_grad():
        target = synthesize(g, loaded.latent_avg.reshape(1, 1, -1).expand_as(w_init), None)

    seconds: dict[str, float] = {}
    seconds["align"] = _median_seconds(
        lambda: align_face(photo, landmarks, args.size), device, args.repeats
    )
    seconds["encode"] = _median_seconds(lambda: e4e.encode(x.to(device)), device, args.repeats)

    def render() -> None:
        with torch.no_grad():
            synthesize(g, w_init, None)

    seconds["render"] = _median_seconds(render, device, args.repeats)

    def refine(**kwargs) -> None:
        refine_w_plus(g, target, w_init, steps=args.steps, lr=0.01, **kwargs)

    per_step = {"refine pixel": dict(perceptual=None)}
    lpips_loss = None if args.no_lpips else random_lpips(device)
    if lpips_loss is not None:
        per_step["refine pixel+lpips"] = dict(perceptual=lpips_loss)
        per_step["refine pixel+lpips+noise"] = dict(perceptual=lpips_loss, optimize_noise=True)
    for name, kwargs in per_step.items():
        total = _median_seconds(lambda kw=kwargs: refine(**kw), device, args.repeats)
        seconds[name] = total / args.steps

    result = {
        "size": args.size,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu x{torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "photo_size": args.photo_size,
        "steps": args.steps,
        "repeats": args.repeats,
        "ms": {name: round(s * 1000, 1) for name, s in seconds.items()},
    }
    if device.type == "cuda":
        result["max_memory_allocated_gb"] = round(
            torch.cuda.max_memory_allocated(device) / 2**30, 2
        )

    print(f"inversion at {args.size}px on {result['device_name']}, torch {torch.__version__}")
    print(f"{'piece':<26} {'ms':>10}")
    for name, ms in result["ms"].items():
        unit = " /step" if name.startswith("refine") else ""
        print(f"{name:<26} {ms:>10.1f}{unit}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
