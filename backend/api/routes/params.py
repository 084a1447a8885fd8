"""/params: every job parameter as nada/params.py declares it (the page builds its form
from this, so a new parameter appears there without touching the page)."""

from __future__ import annotations

from fastapi import APIRouter

from backend.schemas import ParamsPublic
from nada.params import schema

router = APIRouter(prefix="/params", tags=["params"])


@router.get("", response_model=ParamsPublic)
def read_params() -> ParamsPublic:
    """Type, default, range, unit, choices, help text, label and group of each field."""
    return ParamsPublic.model_validate(schema())
