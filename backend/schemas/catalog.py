"""Response bodies of the catalogue routes: GET /generators, /clip-models and /weights."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

AVAILABILITY = (
    "on this server: 'cached' (here, or nothing to download), 'downloadable' (fetched on "
    "first use), 'manual' (neither: a job naming it is refused with 422 until the operator "
    "installs it)"
)


class AvailabilityPublic(BaseModel):
    availability: Literal["cached", "downloadable", "manual"] = Field(
        "cached", description=AVAILABILITY
    )
    availability_note: str = Field("", description="what the availability means here")


class GeneratorPublic(AvailabilityPublic):
    name: str
    size: int = Field(description="image resolution in pixels")
    description: str
    url: str | None
    sha256: str | None
    source: Literal["registry", "upload"] = Field(
        "registry", description="'upload': stored by POST /generators"
    )
    family: str = Field("stylegan2", description="the architecture: stylegan2, stylegan3")
    domain: str = Field("", description="what it draws, in a few words")
    license: str = Field("", description="the license of the weights")
    size_mb: float | None = Field(None, description="the download's size; null: not known")


class GeneratorsPublic(BaseModel):
    data: list[GeneratorPublic]
    count: int
    random_sizes: list[int] = Field(description="sizes accepted as 'random-<size>'")


class ClipModelPublic(AvailabilityPublic):
    name: str = Field(description="what to pass in clip_models[].name")
    architecture: str
    pretrained: str
    default: bool = Field(description="the weights a bare architecture name selects")


class ClipModelsPublic(BaseModel):
    data: list[ClipModelPublic]
    count: int


class WeightPublic(AvailabilityPublic):
    name: str
    description: str
    size_mb: float | None = Field(None, description="the download's size; null: not known")
    license: str


class PhotoSupportPublic(BaseModel):
    align: bool = Field(
        description="the face detector's files are cached or downloadable: a photo can be "
        "aligned; false: only already aligned crops (align false) can be used"
    )
    align_note: str = Field("", description="why not, and what alignment needs")
    encoder_unavailable: list[str] = Field(
        default_factory=list,
        description="generators whose registered encoder (what encoder 'auto' loads) is "
        "not cached or downloadable here: an inversion for them needs encoder 'none'",
    )


class WeightsPublic(BaseModel):
    data: list[WeightPublic]
    count: int
    photo: PhotoSupportPublic
