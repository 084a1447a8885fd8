"""Response bodies of the catalogue routes: GET /generators and GET /clip-models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class GeneratorPublic(BaseModel):
    name: str
    size: int = Field(description="image resolution in pixels")
    description: str
    url: str | None
    sha256: str | None
    source: Literal["registry", "upload"] = Field(
        "registry", description="'upload': stored by POST /generators"
    )


class GeneratorsPublic(BaseModel):
    data: list[GeneratorPublic]
    count: int
    random_sizes: list[int] = Field(description="sizes accepted as 'random-<size>'")


class ClipModelPublic(BaseModel):
    name: str = Field(description="what to pass in clip_models[].name")
    architecture: str
    pretrained: str
    default: bool = Field(description="the weights a bare architecture name selects")


class ClipModelsPublic(BaseModel):
    data: list[ClipModelPublic]
    count: int
