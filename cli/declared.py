"""Command-line flags made from a kind's parameter declarations (nada/declare.py).

`add_flags` gives each field a command sets its flag with the declaration's type, default,
help, range and unit (shown as "(1..5000 steps; default 300)"), so `nada adapt`,
`nada invert`, `nada video` and `nada generate --base/--mix` cannot drift from the API or the
page; `refusal` turns a ParamError naming a field into the CLIError naming its flag. Lists
of objects (CLIP models, example images) and flags a command spells itself (`--out`'s
suffix, `--mix ROWS:COLS`) are the command's own. Torch-free.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Mapping

from nada.declare import Spec, bounds_text, specs
from nada.errors import CLIError, ParamError

_TYPES = {"integer": int, "number": float, "string": str}


def limits(spec: Spec) -> str:
    """'1..5000 steps; ' for a bounded field, 'steps; ' for a counted one, else ''."""
    parts = [bounds_text(spec.decl.range)] if spec.decl.range is not None else []
    if spec.decl.unit:
        parts.append(spec.decl.unit)
    return f"{' '.join(parts)}; " if parts else ""


def add_flag(p: argparse.ArgumentParser, spec: Spec, flag: str) -> None:
    """`flag` for field `spec`: its type, default and help from the declaration; the value
    lands in args.<field name>. A list of whole numbers (seeds) stays text ('1,2,3' or
    '0-3') for the command to parse."""
    help, name = spec.decl.help, spec.name
    if spec.type == "boolean":  # a switch away from the default
        action = "store_false" if spec.default else "store_true"
        p.add_argument(flag, action=action, dest=name, default=spec.default, help=help)
    elif spec.required:
        p.add_argument(flag, required=True, dest=name, help=help)
    elif spec.decl.items is not None:
        default = ",".join(str(v) for v in spec.default)
        p.add_argument(flag, default=default, dest=name, metavar=(spec.decl.unit or name).upper(),
                       help=f"{help}: '1,2,3' or '0-3' ({limits(spec)}default %(default)s)")  # fmt: skip
    else:
        p.add_argument(flag, type=_TYPES[spec.type], default=spec.default, dest=name,
                       help=f"{help} ({limits(spec)}default %(default)s)")  # fmt: skip


def flags_of(cls: type, command: str | None = None) -> dict[str, str]:
    """{field: flag} for the fields of `cls` that a flag of `command` sets."""
    out = {}
    for spec in specs(cls):
        flag = spec.flag(command)
        if flag is not None:
            out[spec.name] = flag
    return out


def add_flags(
    p: argparse.ArgumentParser,
    cls: type,
    *,
    command: str | None = None,
    skip: Iterable[str] = (),
) -> dict[str, str]:
    """Add the flag of every field of `cls` that `command` sets (but `skip`, which the
    command adds itself), in declaration order. Returns {field: flag} of all of them."""
    skipped = set(skip)
    flags = flags_of(cls, command)
    for spec in specs(cls):
        if spec.name in flags and spec.name not in skipped:
            add_flag(p, spec, flags[spec.name])
    return flags


def in_flags(message: str, flags: Mapping[str, str]) -> str:
    """`message` with the field names it mentions spelled as their flags ("or give
    target_images" -> "or give --target-images"): the API's messages name fields, the
    command line's its flags. Only names with an underscore are taken for fields, so that
    words such as "steps" stay words."""
    names = sorted((n for n in flags if "_" in n), key=len, reverse=True)
    if not names:
        return message
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, names)) + r")(?![\w-])")
    return pattern.sub(lambda m: flags[m.group(1)], message)


def refusal(exc: ParamError, flags: Mapping[str, str]) -> CLIError:
    """A parameter's refusal as the command line's: "argument --steps: must be 1..5000",
    the fields its message names spelled as flags too."""
    flag = flags.get(exc.field)
    message = in_flags(exc.message, flags)
    return CLIError(f"argument {flag}: {message}" if flag else in_flags(str(exc), flags))
