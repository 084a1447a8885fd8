"""/generators: the base generators a job may start from."""

from __future__ import annotations

from fastapi import APIRouter

from backend.generators import RANDOM_SIZES, list_generators
from backend.schemas import GeneratorPublic, GeneratorsPublic

router = APIRouter(prefix="/generators", tags=["generators"])


@router.get("", response_model=GeneratorsPublic)
def read_generators() -> GeneratorsPublic:
    """Registered generators; 'random-<size>' (seeded random weights) is accepted too."""
    data = [GeneratorPublic(**vars(g)) for g in list_generators()]
    return GeneratorsPublic(data=data, count=len(data), random_sizes=list(RANDOM_SIZES))
