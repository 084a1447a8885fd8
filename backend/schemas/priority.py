"""The `priority` field of every submission (docs/api.md#priority; jobs/priority.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from jobs.priority import DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY

PRIORITY_DESCRIPTION = (
    f"queue priority {MIN_PRIORITY}..{MAX_PRIORITY}, {DEFAULT_PRIORITY} = normal: a higher one "
    "is started first, jobs of one priority in the order they came; the operator caps it "
    "per token (a value over this token's cap is refused)"
)


class PriorityFields(BaseModel):
    """`priority`, on every POST that makes jobs."""

    priority: int = Field(
        DEFAULT_PRIORITY,
        strict=True,  # true is not 1
        ge=MIN_PRIORITY,
        le=MAX_PRIORITY,
        description=PRIORITY_DESCRIPTION,
    )


PRIORITY_FIELDS = frozenset(PriorityFields.model_fields)
