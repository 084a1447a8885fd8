"""Request bodies generated from a kind's parameter declarations (nada/declare.py).

Every kind's request body (JobCreate, RenderCreate, EditCreate, the inversion's `params`)
is made here from its class's `param()` declarations: the same names, types, defaults,
labels (OpenAPI's title), help and unit (its description), ranges (minimum/maximum, a list's
minItems/maxItems), choices (enum) and patterns, and each field checked by the
declaration's own check (`nada.declare.check_field`), whose ParamError message is the 422's.
So OpenAPI, the service's refusals and `GET /params` cannot drift apart. Fields the service
sets itself (`server=True`) are not part of a request.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StrictInt, create_model
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from nada.declare import Spec, check_field, specs
from nada.errors import ParamError

_PYTHON = {"integer": int, "number": float, "boolean": bool, "string": str}


def checked(check: Callable[[Any], Any]) -> AfterValidator:
    """An AfterValidator that runs a nada-style check and keeps its message as the 422's."""

    def validate(value: Any) -> Any:
        try:
            check(value)
        except ParamError as exc:
            # No context: the message is used verbatim, braces and all.
            raise PydanticCustomError("invalid_param", str(exc)) from None
        return value

    return AfterValidator(validate)


def description(spec: Spec) -> str:
    """The declaration's help text, with its unit when it has one."""
    unit = f" ({spec.decl.unit})" if spec.decl.unit else ""
    return f"{spec.decl.help}{unit}"


def _schema_extra(spec: Spec) -> dict[str, Any]:
    """What OpenAPI says beyond the type: the declared range, each item's range, pattern."""
    extra: dict[str, Any] = {}
    bounds = spec.decl.range
    if bounds is not None:
        names = ("minItems", "maxItems") if spec.is_list else ("minimum", "maximum")
        extra.update({k: v for k, v in zip(names, bounds, strict=True) if v is not None})
    if spec.decl.items is not None:
        lo, hi = spec.decl.items
        extra["items"] = {"type": "integer", **{k: v for k, v in (("minimum", lo), ("maximum", hi)) if v is not None}}  # fmt: skip
    if spec.decl.pattern is not None:  # a full match, as the declaration's check reads it
        pattern = spec.decl.pattern
        pattern = pattern if pattern.startswith("^") else f"^{pattern}$"
        if spec.is_list:
            extra["items"] = {"type": "string", "pattern": pattern}
        else:
            extra["pattern"] = pattern
    return extra


def _annotation(spec: Spec) -> Any:
    if spec.decl.choices:
        return Literal[spec.decl.choices]  # type: ignore[valid-type]
    if spec.type in _PYTHON:
        return _PYTHON[spec.type]
    if spec.decl.items is not None:  # a list of whole numbers (seeds)
        return list[StrictInt]
    if spec.is_list:
        return list[str]
    raise TypeError(f"{spec.name}: no request type for {spec.type!r}; pass it in `annotations`")


def declared_field(
    spec: Spec,
    *,
    annotation: Any = None,
    checks: list[Any] | None = None,
    default_factory: Callable[[], Any] | None = None,
) -> tuple[Any, FieldInfo]:
    """One request field from its declaration. `annotation`, `checks` (validators in place of
    the declaration's check) and `default_factory` are for fields whose request type the
    declaration cannot say (a list of objects)."""
    annotation = annotation if annotation is not None else _annotation(spec)
    if checks is None:
        checks = [checked(functools.partial(check_field, spec))]
    if checks:
        annotation = Annotated[annotation, *checks]
    extra = _schema_extra(spec)
    kwargs: dict[str, Any] = {"title": spec.decl.label, "description": description(spec)}
    # Strict: true is not 1 and "5" is not 5; a float field takes an integer, never NaN or an
    # infinity (JSON's NaN/Infinity, or 1e309).
    if spec.type in _PYTHON and not spec.decl.choices:
        kwargs["strict"] = True
    if spec.type == "number":
        kwargs["allow_inf_nan"] = False
    if default_factory is not None:
        kwargs["default_factory"] = default_factory
        extra["default"] = spec.json_default()
    elif spec.required:
        kwargs["default"] = ...
    elif spec.is_list:
        default = spec.json_default()
        kwargs["default_factory"] = lambda: list(default)
        extra["default"] = default
    else:
        kwargs["default"] = spec.default
    kwargs["json_schema_extra"] = extra or None
    return annotation, Field(**kwargs)


def request_model(
    name: str,
    params: type,
    *,
    doc: str,
    base: type[BaseModel],
    annotations: Mapping[str, Any] | None = None,
    checks: Mapping[str, list[Any]] | None = None,
    default_factories: Mapping[str, Callable[[], Any]] | None = None,
    skip: tuple[str, ...] = (),
) -> Any:
    """The request body `name` of parameter class `params`: one field per declared field the
    client sends (not `server=True` ones, nor `skip`), on `base` (its config: extra='forbid',
    examples, a to_params method)."""
    annotations, checks, factories = annotations or {}, checks or {}, default_factories or {}
    fields = {
        spec.name: declared_field(
            spec,
            annotation=annotations.get(spec.name),
            checks=checks.get(spec.name),
            default_factory=factories.get(spec.name),
        )
        for spec in specs(params)
        if not spec.decl.server and spec.name not in skip
    }
    return create_model(name, __base__=base, __doc__=doc, **fields)  # type: ignore[call-overload]
