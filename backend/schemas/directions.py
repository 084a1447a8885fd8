"""Response body of GET /directions: the latent edit directions (stylegan2/directions.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from backend.schemas.catalog import AvailabilityPublic


class DirectionPublic(AvailabilityPublic):
    """One direction an edit may name ("age=2"); `availability` is its file's here."""

    name: str = Field(description="what an edit names: 'age' in 'age=2'")
    description: str
    base: str = Field(description="the generator whose W it is in: edits of jobs on it only")
    suggested: list[float] = Field(description="strengths its authors use")
    url: str | None = Field(description="where its file is downloaded from; null: by hand")
    license: str = ""
    source: str = ""
    notes: str = ""


class DirectionsPublic(BaseModel):
    data: list[DirectionPublic]
    count: int
    max_edits: int = Field(description="edits one render or photo edit may apply at most")
    max_strength: float = Field(description="|strength| of each edit at most")
