"""One way to declare a job's parameters: `param()` per field, and what is made from it.

Each kind's parameters are a frozen dataclass on `Params` whose every field is declared with
`param()`: its type (the annotation), default, range, unit, help, label, group and flag,
once. `nada/params.py` (adapt), `nada/photo_params.py` (invert, edit) and
`nada/render_params.py` (render) do so. From the declarations alone come

- the checks their `from_dict` runs: unknown and missing names (`check_names`), and each
  field's type, range, choices and own rule (`check_fields`), with the one number check
  (`check_number`), every refusal naming the field;
- `to_dict` (plain JSON data) and `describe` (the same as data: what `GET /api/v1/params`
  and its siblings serve and the page builds its forms from);
- the command line's flags (cli/declared.py) and the API's request schemas with their
  OpenAPI descriptions (backend/schemas/declared.py).

So a knob added to a class appears, checked and documented, in the CLI, the API and the page
without another list to keep in step. Stdlib only.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from nada.errors import ParamError
from nada.ids import is_id

MISSING: Any = dataclasses.MISSING
Bounds = tuple[float | None, float | None]  # (min, max); None = unbounded on that side


@dataclass(frozen=True)
class Declared:
    """What `param()` records about one field (the dataclass field's metadata["param"])."""

    help: str  # one sentence: what the knob does (CLI --help, OpenAPI, the page's hint)
    label: str  # how the page names it (OpenAPI's title)
    group: str  # the section of the kind's form (a key of the class's GROUPS)
    range: Bounds | None  # a number's (min, max); a list's number of items; None = any
    unit: str  # what the number (or the list) counts: 'steps', 'seeds', ...
    choices: tuple[str, ...] | None  # the allowed values of a text field
    flag: str | Mapping[str, str] | None  # see `param`
    server: bool  # set by the service (from the upload, the path, the job), never sent
    items: Bounds | None  # each item's (min, max) in a list of whole numbers
    pattern: str | None  # a text's full-match regular expression (OpenAPI, the page)
    check: Callable[[str, Any], None] | None  # the field's own rule: check(name, value)
    type: str  # describe()'s type name; '' = from the annotation


def param(
    default: Any = MISSING,
    *,
    help: str,
    label: str,
    group: str,
    range: Bounds | None = None,
    unit: str = "",
    choices: tuple[str, ...] | None = None,
    flag: str | Mapping[str, str] | None = None,
    server: bool = False,
    items: Bounds | None = None,
    pattern: str | None = None,
    check: Callable[[str, Any], None] | None = None,
    type: str = "",
    default_factory: Any = MISSING,
) -> Any:
    """Declare one parameter: its default and everything said about it, once.

    flag: the command-line flag that sets it: None means --<name with dashes> of the kind's
        one command; a mapping {command: flag} for a kind that several commands use
        (`nada video`, `nada generate`); {} for a field no flag sets (the service's own, or
        one the command itself decides).
    server: the service sets it (a job id from the path, a photo's hash): a request that
        sends it is refused, and the listings for the page leave it out.
    check: a rule the type and range cannot say (a job id, a name's characters), run after
        them; it raises ParamError(name, ...).
    type: describe()'s type name where the annotation does not say it ('seeds', 'images',
        'clip_models': lists the page edits with controls of their own).
    """
    declared = Declared(help=help, label=label, group=group, range=range, unit=unit,
                        choices=choices, flag=flag, server=server, items=items,
                        pattern=pattern, check=check, type=type)  # fmt: skip
    metadata = {"param": declared}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Spec:
    """One declared field as the generators read it: the declaration plus what the
    annotation and the default say."""

    name: str
    type: str  # 'string', 'integer', 'number', 'boolean', or a list type (see `param`)
    python: Any  # the annotation: int, float, str | None, tuple[int, ...], ...
    default: Any  # MISSING when required; a fresh value from a default_factory
    nullable: bool  # None is allowed (and is the default)
    decl: Declared

    @property
    def required(self) -> bool:
        return self.default is MISSING

    @property
    def integer(self) -> bool:
        return self.type == "integer"

    @property
    def is_list(self) -> bool:
        return typing.get_origin(self.python) is tuple

    def flag(self, command: str | None = None) -> str | None:
        """The flag of `command` that sets this field (None: no flag sets it there); a kind
        with one command passes none."""
        flag = self.decl.flag
        if flag is None:
            return "--" + self.name.replace("_", "-")
        if isinstance(flag, str):
            return flag
        return flag.get(command or "")

    def json_default(self) -> Any:
        """The default as JSON carries it (lists for tuples, objects for dataclasses)."""
        return to_json(self.default)


_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _spec(f: dataclasses.Field[Any], annotation: Any) -> Spec:
    decl = f.metadata.get("param")
    if not isinstance(decl, Declared):
        raise TypeError(f"field {f.name} is not declared with nada.declare.param()")
    args = typing.get_args(annotation)
    nullable = type(None) in args and typing.get_origin(annotation) is not tuple
    base = next((a for a in args if a is not type(None)), annotation) if nullable else annotation
    kind = decl.type or _TYPE_NAMES.get(base, "")
    if not kind:
        raise TypeError(f"field {f.name}: say its type name with param(type=...)")
    default = f.default
    factory: Callable[[], Any] | Any = f.default_factory
    if factory is not MISSING:
        default = factory()
    return Spec(f.name, kind, base, default, nullable, decl)


_SPECS: dict[type, tuple[Spec, ...]] = {}


def specs(cls: type) -> tuple[Spec, ...]:
    """The declared fields of a parameter class, in declaration order (read once)."""
    if cls not in _SPECS:
        _SPECS[cls] = _read_specs(cls)
    return _SPECS[cls]


def _read_specs(cls: type) -> tuple[Spec, ...]:
    hints = typing.get_type_hints(cls)
    out = tuple(_spec(f, hints[f.name]) for f in dataclasses.fields(cls))
    groups = getattr(cls, "GROUPS", None)
    for spec in out:
        if groups is not None and spec.decl.group not in groups:
            raise TypeError(
                f"{cls.__name__}.{spec.name}: group {spec.decl.group!r} is not in GROUPS"
            )
    return out


def spec_of(cls: type, name: str) -> Spec:
    """The declared field `name` of `cls`."""
    return next(s for s in specs(cls) if s.name == name)


def to_json(value: Any) -> Any:
    """Plain JSON data: dataclasses as objects, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    return value


# -- checks -------------------------------------------------------------------------------


def bounds_text(bounds: Bounds) -> str:
    """(1, 5000) -> '1..5000'; (0, None) -> 'at least 0'."""
    lo, hi = bounds
    if lo is not None and hi is not None:
        return f"{lo}..{hi}"
    return f"at least {lo}" if lo is not None else f"at most {hi}"


def check_number(name: str, value: Any, bounds: Bounds | None, *, integer: bool = False) -> None:
    """The one number check: a JSON number (not a boolean), whole when `integer`, finite,
    within `bounds`. Refusals read "steps must be 1..5000 (got 0)"."""
    what = "a whole number" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParamError(name, f"must be {what} (got {value!r})")
    if integer and not isinstance(value, int):
        raise ParamError(name, f"must be a whole number (got {value!r})")
    if value != value:  # NaN
        raise ParamError(name, "must be a number (got nan)")
    if isinstance(value, float) and not math.isfinite(value):
        raise ParamError(name, f"must be a finite number (got {value})")
    if bounds is None:
        return
    lo, hi = bounds
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ParamError(name, f"must be {bounds_text(bounds)} (got {value})")


def is_unicode(text: str) -> bool:
    """Whether `text` can be stored and sent: no lone UTF-16 surrogates (JSON's '\\ud800'
    decodes to one, and neither UTF-8, PostgreSQL nor a JSON response can hold it)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(name: str, text: Any) -> None:
    """Any text a request carries: a str that is valid Unicode."""
    if not isinstance(text, str):
        raise ParamError(name, f"must be text (got {type(text).__name__})")
    if not is_unicode(text):
        raise ParamError(name, "must be valid Unicode text (it holds a lone surrogate)")


def check_job_id(name: str, value: Any) -> None:
    """A job id as the service writes them (nada/ids.py); None passes (a field that may be
    unset says so with its `str | None` type)."""
    if value is not None and not is_id(value):
        raise ParamError(name, f"must be a job id (32 hex digits; got {value!r})")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ParamError(name, f"must be one of {', '.join(choices)} (got {value!r})")


def check_whole_numbers(spec: Spec, value: Any) -> tuple[int, ...]:
    """A list of whole numbers (seeds): its length within the declared range, each item
    within `items`. Returns it as a tuple (JSON brings a list; the params are hashable)."""
    name, unit = spec.name, spec.decl.unit or "items"
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ParamError(name, f"must be a list of {unit} (got {value!r})")
    if spec.decl.range is not None:
        lo, hi = spec.decl.range
        if (lo is not None and len(value) < lo) or (hi is not None and len(value) > hi):
            raise ParamError(
                name, f"must hold {bounds_text(spec.decl.range)} {unit} (got {len(value)})"
            )
    for item in value:
        check_number(name, item, spec.decl.items, integer=True)
    return tuple(value)


def check_field(spec: Spec, value: Any) -> Any:
    """One field's declared rules: type, range, choices, then its own `check`. Returns the
    value to keep (a list becomes a tuple)."""
    name = spec.name
    if value is None and spec.nullable:
        return value
    if spec.type in ("integer", "number"):
        check_number(name, value, spec.decl.range, integer=spec.integer)
    elif spec.type == "boolean":
        if not isinstance(value, bool):
            raise ParamError(name, f"must be true or false (got {value!r})")
    elif spec.type == "string":
        check_text(name, value)
        if spec.decl.choices:
            check_choice(name, value, spec.decl.choices)
    elif spec.is_list and spec.decl.items is not None:
        value = check_whole_numbers(spec, value)
    if spec.decl.check is not None:
        spec.decl.check(name, value)
    return value


def check_fields(params: Any) -> None:
    """Every declared field's rules, in declaration order; lists are kept as tuples. For a
    class's __post_init__."""
    for spec in specs(type(params)):
        value = check_field(spec, getattr(params, spec.name))
        if value is not getattr(params, spec.name):
            object.__setattr__(params, spec.name, value)


def check_names(cls: type, data: Any) -> None:
    """Stored or sent data for `cls`: an object with known names and every required one."""
    what = getattr(cls, "WHAT", cls.__name__)
    if not isinstance(data, dict):
        raise ParamError("params", f"must be an object (got {type(data).__name__})")
    names = [s.name for s in specs(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        sent = sorted(s.name for s in specs(cls) if not s.decl.server)  # what a user may send
        raise ParamError(unknown[0], f"is not a parameter of {what}; known: {', '.join(sent)}")
    for spec in specs(cls):
        if spec.required and spec.name not in data:
            raise ParamError(spec.name, "is required")


class Params:
    """What every kind's parameter class shares: `from_dict`, `to_dict`, `replace`. A
    subclass is a frozen dataclass of `param()` fields whose __post_init__ checks them
    (`check_fields`, then what only the whole can tell)."""

    WHAT: ClassVar[str]  # how a refusal names the kind: 'an adaptation', 'a render'
    GROUPS: ClassVar[Mapping[str, str]]  # sections of its form: name -> title, in order

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (stored with the job; `from_dict` reads it back)."""
        return {s.name: to_json(getattr(self, s.name)) for s in specs(type(self))}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Validated parameters from plain data; ParamError names the first bad field."""
        check_names(cls, data)
        return cls(**data)

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


# -- as data ------------------------------------------------------------------------------


def describe_field(spec: Spec) -> dict[str, Any]:
    """One field as plain data: name, type, required, default (absent when required),
    min/max (when bounded: a number's value, a list's length), items ({min, max} of each
    item of a list of whole numbers), choices, pattern, unit, help, label, group, server
    (true where the service sets it), flag (`flags`, {command: flag}, for a kind of several
    commands; neither where no flag sets it)."""
    decl = spec.decl
    entry: dict[str, Any] = {"name": spec.name, "type": spec.type, "required": spec.required}
    if not spec.required:
        entry["default"] = spec.json_default()
    if decl.range is not None:
        lo, hi = decl.range
        entry.update({k: v for k, v in (("min", lo), ("max", hi)) if v is not None})
    if decl.items is not None:
        lo, hi = decl.items
        entry["items"] = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
    if decl.choices:
        entry["choices"] = list(decl.choices)
    if decl.pattern:
        entry["pattern"] = decl.pattern
    entry.update(unit=decl.unit, help=decl.help, label=decl.label, group=decl.group)
    if decl.server:
        entry["server"] = True
    if isinstance(decl.flag, Mapping):
        if decl.flag:
            entry["flags"] = dict(decl.flag)
    else:
        entry["flag"] = spec.flag()
    return entry


def describe(cls: type, *, sent_only: bool = False) -> list[dict[str, Any]]:
    """Every field of `cls` as `describe_field` says, in declaration order; `sent_only`
    leaves out what the service sets itself (the listings the page reads)."""
    return [describe_field(s) for s in specs(cls) if not (sent_only and s.decl.server)]


def groups(cls: type) -> list[dict[str, str]]:
    """The class's form sections in page order: [{name, title}]."""
    return [{"name": name, "title": title} for name, title in cls.GROUPS.items()]  # type: ignore[attr-defined]
