"""/params: every job parameter as its kind declares it (nada/declare.py's `param()`).

GET /params is the adaptation's form (the page builds it from this, so a new parameter
appears there without touching the page) and the scores a job reports; GET /params/{kind}
lists any kind's fields the same way, from the same declarations that make the request
bodies, the CLI's flags and the checks."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from backend.schemas.jobs import KindParamsPublic, ParamsPublic
from nada.declare import describe, groups
from nada.params import AdaptParams, schema
from nada.photo_params import EditParams, InvertParams
from nada.render_params import RenderParams

router = APIRouter(prefix="/params", tags=["params"])

_CLASSES = {"adapt": AdaptParams, "invert": InvertParams, "edit": EditParams,
            "render": RenderParams}  # fmt: skip
Kind = Literal["adapt", "invert", "edit", "render"]


@router.get("", response_model=ParamsPublic)
def read_params() -> ParamsPublic:
    """Type, default, range, unit, choices, help text, label and group of each adaptation
    field, the form's groups, and the objective scores (name, label, help, which end is
    better)."""
    return ParamsPublic.model_validate(schema())


@router.get("/{kind}", response_model=KindParamsPublic)
def read_kind_params(kind: Kind) -> KindParamsPublic:
    """Every field of one kind's parameters (the service's own marked `server`), as its
    declaration says: the same ranges and defaults its request body checks."""
    cls = _CLASSES[kind]
    return KindParamsPublic.model_validate(
        {"kind": kind, "fields": describe(cls), "groups": groups(cls)}
    )
