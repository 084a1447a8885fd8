"""Example images named on the command line (`nada adapt --target-images cats/`).

The CLI stores each file the way the API stores an upload (invert/example_images.py: one
normal form, named by its sha256), into the run's own domain_images/, so a local run, a
resumed run and a service job all name their images the same way and the checkpoint's
metadata points at files that are still there. Torch-free: it runs before anything loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from invert.example_images import ExampleImage, normalize_example, store_example
from invert.photos import PhotoRejected
from nada.errors import CLIError
from nada.params import MAX_EXAMPLE_IMAGES

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MAX_PIXELS = 100_000_000  # a local file: the user's own; the API's limit is stricter


def image_files(flag: str, items: Sequence[str | Path]) -> list[Path]:
    """The files that `items` name: a directory means its image files (sorted by name, so
    the same folder is the same list), a file means itself."""
    files: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(
                p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                raise CLIError(
                    f"argument {flag}: {item} holds no {'/'.join(IMAGE_SUFFIXES)} images"
                )
            files.extend(found)
        elif item.is_file():
            files.append(item)
        else:
            raise CLIError(f"argument {flag}: no such file or directory {item}")
    return files


def read_examples(flag: str, items: Sequence[str | Path]) -> list[ExampleImage]:
    """Each named image in its stored form, the same picture twice once; a file that is no
    usable image, or more than MAX_EXAMPLE_IMAGES, is refused naming it."""
    examples: dict[str, ExampleImage] = {}
    for path in image_files(flag, items):
        try:
            example = normalize_example(path, max_pixels=MAX_PIXELS)
        except PhotoRejected as exc:
            raise CLIError(f"argument {flag}: {path} {exc}") from None
        except OSError as exc:
            raise CLIError(f"argument {flag}: cannot read {path} ({exc.strerror})") from None
        examples.setdefault(example.sha256, example)
    if len(examples) > MAX_EXAMPLE_IMAGES:
        raise CLIError(
            f"argument {flag}: at most {MAX_EXAMPLE_IMAGES} images (got {len(examples)})"
        )
    return list(examples.values())


def store_examples(examples: Sequence[ExampleImage], run_dir: Path) -> dict[str, Path]:
    """Write the images into `run_dir`/domain_images; their names -> files (what the engine's
    `domain_images` argument takes)."""
    return {example.sha256: store_example(example, run_dir) for example in examples}
