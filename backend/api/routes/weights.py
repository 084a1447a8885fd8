"""/weights: the photo pipeline's auxiliary model files (invert/weights.py) and what this
server can do with photos because of them (the page's photo card reads `photo.align`)."""

from __future__ import annotations

from fastapi import APIRouter

from backend.api.submission import alignment_availability, weight_availability
from backend.schemas.catalog import PhotoSupportPublic, WeightPublic, WeightsPublic
from invert import weights

router = APIRouter(prefix="/weights", tags=["weights"])


@router.get("", response_model=WeightsPublic)
def read_weights() -> WeightsPublic:
    """Each auxiliary file (e4e, the face detector and landmark network, VGG16 for the
    perceptual loss) with its `availability` on this server, and `photo.align`: whether a
    photo can be aligned here (false: only already aligned crops, `align: false`; an
    inversion with `align: true` is refused with 422)."""
    data = []
    for entry in weights.list_weights():
        state = weight_availability(entry.name)
        data.append(
            WeightPublic(
                name=entry.name,
                description=entry.description,
                size_mb=entry.size_mb,
                license=entry.license,
                availability=state.availability,
                availability_note=state.note,
            )
        )
    align = alignment_availability()
    photo = PhotoSupportPublic(
        align=align.usable,
        align_note=""
        if align.usable
        else f"aligning a face needs {weights.WHAT[weights.S3FD.name]}, which is "
        f"{align.note}; use Already aligned for a photo that is an aligned face crop",
    )
    photo.encoder_unavailable = [
        generator
        for generator, encoder in weights.ENCODER_FOR_GENERATOR.items()
        if not weight_availability(encoder).usable
    ]
    return WeightsPublic(data=data, count=len(data), photo=photo)
