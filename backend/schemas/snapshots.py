"""Bodies of GET /jobs/{id}/snapshots: a job's downloadable steps and the recommended one
(the rule is nada/recommend.py's)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SnapshotPublic(BaseModel):
    step: int
    scores: dict[str, float] = Field(
        description="the scores measured at this step (worker/scores.py); {} without scores"
    )
    size_bytes: int
    url: str = Field(description="the .pt download (the final step: the job's checkpoint)")
    final: bool = Field(description="the job's last step: adapted.pt, not a snapshot file")


class RecommendedPublic(BaseModel):
    step: int | None = Field(description="null: no step passes the thresholds, or no scores")
    reason: str
    min_content: float
    min_diversity: float


class SnapshotsPublic(BaseModel):
    snapshots: list[SnapshotPublic]
    recommended: RecommendedPublic
