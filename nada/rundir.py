"""A run directory: the names of its files, and the one way files are written into it.

`nada adapt --out OUT` (the engine) and a job's folder under the data directory (the
worker publishes the engine's files there, the API serves them) share one layout:

    adapted.pt                    the adapted generator: the result
    domain.pt                     a modulation run's domain (its style vectors, the base's
                                  identity; stylegan2/domain_file.py), beside adapted.pt
    metrics.jsonl                 one JSON object per training step
    params.json                   the run's parameters
    samples/step_000050.png       progress images, one per sampled step
    checkpoints/step_000100.pt    intermediate checkpoints (resume after a lost worker)
    checkpoints/metrics.jsonl     metrics as of the newest intermediate checkpoint (jobs)
    snapshots/step_000100.pt      the generator kept at every snapshot_every step, with what
                                  a continuation from that step needs (kept after the run)
    attempts/<n>/                 the engine's working directory of claim n (jobs, temporary)

An inversion (a photo put into a generator's W+, invert/) and an edit (that code rendered
through an adapted generator) write into the same kind of directory:

    photo.png                     the uploaded photo, upright RGB (inversions; the input)
    latent.pt                     {'w_plus': [1, n_latent, 512], 'metadata': {...}}
    aligned.png                   the photo as the encoder and refinement saw it
    reconstruction.png            the code rendered by the base generator
    inversion.json                latent.pt's metadata as JSON (note, losses, alignment)
    edit.png                      the code rendered by an adapted generator (edits)

Continuing a finished job, and adaptations toward example images:

    resume.pt                     a finished adaptation's optimizer state and step (what a
                                  continuation starts from; beside adapted.pt)
    start.pt                      a continuation's copy of its parent's resume.pt + weights
    domain_images/<sha256>.png    the example images of an image-guided job (its inputs)

Renders of a finished job (seeds side by side, style mixing, interpolation videos):

    render.png / render.mp4 / render.gif   one render job's result

Every file appears by rename: `atomic_output` (a streamed writer: an encoder, `torch.save`),
`atomic_open` (a file object, through it) and `publish` (a finished file, hard-linked or
copied). A reader sees a whole file or none, and writing the same step again replaces a file
instead of adding one. Stdlib only: the lowest layer of the project
(tests/test_architecture.py holds that line).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

ADAPTED = "adapted.pt"
DOMAIN = "domain.pt"
METRICS = "metrics.jsonl"
PARAMS = "params.json"
SAMPLES_DIR = "samples"
CHECKPOINTS_DIR = "checkpoints"
SNAPSHOTS_DIR = "snapshots"
ATTEMPTS_DIR = "attempts"
PHOTO = "photo.png"
LATENT = "latent.pt"
ALIGNED = "aligned.png"
RECONSTRUCTION = "reconstruction.png"
INVERSION_INFO = "inversion.json"
EDIT = "edit.png"
RESUME = "resume.pt"
START = "start.pt"
DOMAIN_IMAGES_DIR = "domain_images"
RENDER_PNG = "render.png"
RENDER_MP4 = "render.mp4"
RENDER_GIF = "render.gif"

_STEP_FILE = re.compile(r"step_(\d+)\.(png|pt)$")


def _step_name(step: int, suffix: str) -> str:
    return f"step_{step:06d}.{suffix}"


def adapted_path(root: Path) -> Path:
    return Path(root) / ADAPTED


def domain_path(root: Path) -> Path:
    """A modulation run's domain file (parametrization 'modulation')."""
    return Path(root) / DOMAIN


def domain_image_path(root: Path, sha256: str) -> Path:
    """Where an image-guided job keeps the example image with this content hash."""
    return root / DOMAIN_IMAGES_DIR / f"{sha256}.png"


def metrics_path(root: Path) -> Path:
    return Path(root) / METRICS


def params_path(root: Path) -> Path:
    return Path(root) / PARAMS


def samples_dir(root: Path) -> Path:
    return Path(root) / SAMPLES_DIR


def sample_path(root: Path, step: int) -> Path:
    """samples/step_000050.png: step 0 is before training (source and adapted rows equal)."""
    return samples_dir(root) / _step_name(step, "png")


def checkpoints_dir(root: Path) -> Path:
    return Path(root) / CHECKPOINTS_DIR


def intermediate_checkpoint_path(root: Path, step: int) -> Path:
    return checkpoints_dir(root) / _step_name(step, "pt")


def resume_metrics_path(root: Path) -> Path:
    """metrics.jsonl as of the newest intermediate checkpoint (a resumed run continues it)."""
    return checkpoints_dir(root) / METRICS


def snapshots_dir(root: Path) -> Path:
    return Path(root) / SNAPSHOTS_DIR


def snapshot_path(root: Path, step: int) -> Path:
    """snapshots/step_000100.pt: the run's generator after `step` steps (snapshot_every),
    in the intermediate checkpoint's layout (a generator file with a resume point)."""
    return snapshots_dir(root) / _step_name(step, "pt")


def snapshot_steps(root: Path) -> list[int]:
    """Steps of the snapshots present now, oldest first."""
    found = (step_of(p) for p in snapshots_dir(root).glob("step_*.pt"))
    return sorted(s for s in found if s is not None)


def attempts_dir(root: Path) -> Path:
    return Path(root) / ATTEMPTS_DIR


def attempt_dir(root: Path, attempt: int) -> Path:
    return attempts_dir(root) / str(attempt)


def step_of(path: Path) -> int | None:
    """The step in a sample's or an intermediate checkpoint's name, else None."""
    match = _STEP_FILE.search(Path(path).name)
    return int(match.group(1)) if match else None


def sample_steps(root: Path) -> list[int]:
    """Steps of the samples present now, oldest first."""
    found = (step_of(p) for p in samples_dir(root).glob("step_*.png"))
    return sorted(s for s in found if s is not None)


def intermediate_checkpoint_steps(root: Path) -> list[int]:
    """Steps of the intermediate checkpoints present now, oldest first."""
    found = (step_of(p) for p in checkpoints_dir(root).glob("step_*.pt"))
    return sorted(s for s in found if s is not None)


def latest_intermediate_checkpoint(root: Path) -> Path | None:
    steps = intermediate_checkpoint_steps(root)
    return intermediate_checkpoint_path(root, steps[-1]) if steps else None


# -- writing ------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` for a writer that opens the file itself (an encoder
    such as ffmpeg, `PIL.Image.save`, `torch.save`): when the block ends without error the
    file there is synced and renamed onto `path` (mode 0644: mkstemp makes it owner-only, a
    served file must be readable); on error it is removed and `path` is untouched.

    The temporary name keeps `path`'s suffix (writers pick the format by it) and is unique
    (two writers of the same file never share one); the block may overwrite or replace it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}"
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as f:  # fsync is per file: this flushes what the writer wrote
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    """`open(path, mode)` through `atomic_output`: a reader sees the whole file or none."""
    with atomic_output(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def write_bytes(path: Path, data: bytes) -> Path:
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return Path(path)


def publish(src: Path, dst: Path, *, copy: bool = False) -> Path:
    """Make `dst` a copy of `src` atomically: a hard link when possible (src is never
    written again), else -- or with `copy`, for a file still growing -- copy and fsync."""
    dst = Path(dst)
    if not copy:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            os.link(src, tmp)
            os.replace(tmp, dst)
            return dst
        except OSError:  # another filesystem, or no hard links (some mounts): copy
            tmp.unlink(missing_ok=True)
    with open(src, "rb") as source, atomic_open(dst, "wb") as f:
        shutil.copyfileobj(source, f)
    return dst


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
