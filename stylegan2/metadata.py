"""The metadata a checkpoint we write carries: plain data only, for every family.

`torch.load(weights_only=True)` accepts str, int, float, bool, None, lists and dicts, and
refuses anything else, a subclass of those included (an Enum member pickles as its class; a
TorchVersion is a str subclass). So metadata is copied through `plain_metadata` before it is
saved: exact builtins out, a clear refusal naming the first thing that is not data.
"""

from __future__ import annotations

from typing import Any


class MetadataError(TypeError, ValueError):
    """Metadata that is not plain data; str() names where (both a TypeError and a
    ValueError: a wrong type of value, in an argument the caller chose)."""


def plain_metadata(value: Any, where: str = "metadata") -> Any:
    """A copy of `value` as exact builtins (str/int/float/bool subclasses converted, tuples
    as lists). Raises MetadataError naming the first key or value that is not plain data."""
    plain: type[Any]
    for plain in (bool, int, float, str):
        if isinstance(value, plain):
            return plain.__new__(plain, value) if plain is not bool else bool(value)
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return [plain_metadata(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise MetadataError(
                    f"{where} has a non-string key {k!r}; metadata keys must be str"
                )
            out[k] = plain_metadata(v, f"{where}[{k!r}]")
        return out
    raise MetadataError(
        f"{where} is a {type(value).__name__}, not plain data; metadata may hold only str, "
        "int, float, bool, None, list and dict"
    )
