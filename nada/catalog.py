"""CLIP models the service offers, as plain data (the API validates names without torch).

The engine loads any open_clip `name:pretrained` pair; the service restricts requests to
this list so that a typo is a 422 listing the known names, not a failed GPU job.
"""

from __future__ import annotations

from nada.errors import ParamError

# architecture -> pretrained tags offered (the first is the default). 'random' is always
# accepted: seeded random weights, no download (tests, offline demos).
CLIP_MODELS: dict[str, tuple[str, ...]] = {
    "ViT-B-32": ("openai", "laion2b_s34b_b79k"),
    "ViT-B-16": ("openai", "laion2b_s34b_b88k"),
    "ViT-L-14": ("openai", "laion2b_s32b_b82k"),
    "ViT-L-14-336": ("openai",),
    "RN50": ("openai",),
    "RN101": ("openai",),
    "RN50x4": ("openai",),
}
RANDOM_TAG = "random"
# Architectures with no published weights, accepted as '<name>:random' only and listed last
# by GET /clip-models: 'nada-tiny' is a two-layer ViT + text transformer
# (worker/clip_models.py) that makes a job's CLIP share of the time negligible, for a first
# job offline, smoke tests of a deployment and the test suite's service and page tests.
RANDOM_ONLY: tuple[str, ...] = ("nada-tiny",)


def split_clip_name(name: str) -> tuple[str, str]:
    """'ViT-B/32' -> ('ViT-B-32', 'openai'); 'ViT-B-32:random' -> ('ViT-B-32', 'random')."""
    arch, _, tag = name.strip().partition(":")
    arch = arch.replace("/", "-")
    return arch, (tag or "openai")


def check_clip_name(name: str) -> tuple[str, str]:
    """Return (arch, tag) for an offered model or raise ParamError listing the known ones."""
    arch, tag = split_clip_name(name)
    if arch in RANDOM_ONLY and tag == RANDOM_TAG:
        return arch, tag
    if arch not in CLIP_MODELS:
        raise ParamError(
            "clip_models", f"has unknown model {name!r}; known: {', '.join(CLIP_MODELS)}"
        )
    if tag != RANDOM_TAG and tag not in CLIP_MODELS[arch]:
        tags = ", ".join((*CLIP_MODELS[arch], RANDOM_TAG))
        raise ParamError("clip_models", f"has unknown weights {tag!r} for {arch}; known: {tags}")
    return arch, tag
