"""Response bodies of the example-image routes (POST /images, GET /images/{id}.png)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from backend.schemas import API_PREFIX


def image_url(image_id: str) -> str:
    return f"{API_PREFIX}/images/{image_id}.png"


class ImagePublic(BaseModel):
    id: str = Field(
        description="the image's name: sha256 of its stored PNG; put it in target_images "
        "or source_images of POST /jobs"
    )
    width: int = Field(description="pixels, upright, after shrinking to at most 1024 a side")
    height: int
    url: str = Field(description="GET it back (this token only)")


class ImagesPublic(BaseModel):
    data: list[ImagePublic] = Field(description="one per uploaded file, in the form's order")
    count: int
