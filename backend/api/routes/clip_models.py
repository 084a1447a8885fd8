"""/clip-models: the CLIP models that may guide a job (nada/catalog.py)."""

from __future__ import annotations

from fastapi import APIRouter

from backend.schemas.catalog import ClipModelPublic, ClipModelsPublic
from jobs import availability
from nada.catalog import CLIP_MODELS, RANDOM_ONLY, RANDOM_TAG

router = APIRouter(prefix="/clip-models", tags=["clip-models"])


@router.get("", response_model=ClipModelsPublic)
def read_clip_models() -> ClipModelsPublic:
    """Every offered architecture:weights pair, with its `availability` on this server
    (cached: in the Hugging Face cache; downloadable; manual: a job naming it is refused).
    ':random' is seeded random weights, which need no download (the two-layer
    'nada-tiny:random', last, makes a first job's CLIP cost nothing: for trying the service
    out offline)."""
    data = [
        _public(arch, tag, default=i == 0)
        for arch, tags in CLIP_MODELS.items()
        for i, tag in enumerate((*tags, RANDOM_TAG))
    ]
    data += [_public(arch, RANDOM_TAG, default=True) for arch in RANDOM_ONLY]
    return ClipModelsPublic(data=data, count=len(data))


def _public(arch: str, tag: str, *, default: bool) -> ClipModelPublic:
    name = f"{arch}:{tag}"
    state = availability.clip_model(name)
    return ClipModelPublic(
        name=name,
        architecture=arch,
        pretrained=tag,
        default=default,
        availability=state.availability,
        availability_note=state.note,
    )
