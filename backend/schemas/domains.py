"""Response bodies of GET /domains: the ready-made domains (stylegan2/domains.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from backend.schemas.catalog import AvailabilityPublic


class DomainPublic(AvailabilityPublic):
    """One ready-made domain; `availability` covers its file and its base generator (a
    job needs both: the base is drawn beside it in photos, renders and comparisons)."""

    name: str = Field(description="what to pass to POST /domains/{name}/jobs")
    description: str
    base: str = Field(description="the generator it was adapted from (GET /generators)")
    size: int = Field(description="image resolution in pixels (its base's)")
    source_text: str = Field(
        "", description="the source prompt it was trained with; '': not published"
    )
    target_text: str = Field("", description="the target prompt; '': not published")
    domain: str = Field("", description="what it draws, in a few words")
    url: str | None = Field(description="where its file is downloaded from")
    license: str = Field("", description="the license of the weights, as far as it is known")
    source: str = Field("", description="who made it")
    notes: str = Field("", description="anything else to know before using it")
    size_mb: float | None = Field(None, description="the download's size; null: not known")


class DomainsPublic(BaseModel):
    data: list[DomainPublic]
    count: int
