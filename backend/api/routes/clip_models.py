"""/clip-models: the CLIP models that may guide a job (nada/catalog.py)."""

from __future__ import annotations

from fastapi import APIRouter

from backend.schemas.catalog import ClipModelPublic, ClipModelsPublic
from nada.catalog import CLIP_MODELS, RANDOM_ONLY, RANDOM_TAG

router = APIRouter(prefix="/clip-models", tags=["clip-models"])


@router.get("", response_model=ClipModelsPublic)
def read_clip_models() -> ClipModelsPublic:
    """Every offered architecture:weights pair; ':random' is seeded random weights, which
    need no download (the two-layer 'nada-tiny:random', last, makes a first job's CLIP cost
    nothing: for trying the service out offline)."""
    data = [
        ClipModelPublic(name=f"{arch}:{tag}", architecture=arch, pretrained=tag, default=i == 0)
        for arch, tags in CLIP_MODELS.items()
        for i, tag in enumerate((*tags, RANDOM_TAG))
    ]
    data += [
        ClipModelPublic(
            name=f"{arch}:{RANDOM_TAG}", architecture=arch, pretrained=RANDOM_TAG, default=True
        )  # fmt: skip
        for arch in RANDOM_ONLY
    ]
    return ClipModelsPublic(data=data, count=len(data))
