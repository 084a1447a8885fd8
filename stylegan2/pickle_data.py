"""Tensors, storages and numpy arrays out of a pickle, rebuilt by functions of our own.

A pickle names the functions that rebuild its objects (`torch._utils._rebuild_tensor_v2`,
`numpy.core.multiarray._reconstruct`, ...) and the unpickler calls whatever it names. This
module holds our stand-ins for the few that tensors and numpy arrays need (`DATA_GLOBALS`,
keyed by the name a file uses): each checks its arguments (shapes inside their data, only
numeric and string dtypes, no hooks) and builds the object from raw bytes, so no function
the file names is ever called. `torch.storage._load_from_bytes`, which in torch runs
`torch.load(weights_only=False)` on its argument, becomes `_load_storage`: a parser of the
legacy torch.save blob of one storage with its own allow-list (torch.<X>Storage only).
Used by stylegan2/nvidia_pickle.py.
"""

from __future__ import annotations

import io
import math
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from stylegan2.errors import CheckpointError

# The names of torch's legacy storage classes (what a legacy torch.save blob names) -> dtype.
_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "DoubleStorage": torch.float64,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch/serialization.py MAGIC_NUMBER
_LEGACY_PROTOCOL = 1001  # torch/serialization.py PROTOCOL_VERSION
# numpy dtype names a network file uses: booleans, integers, floats, complex and fixed-width
# strings. Object and void (structured) dtypes are refused: they are how an array holds
# arbitrary Python objects.
_DTYPE_NAME = re.compile(r"(b1|[iu][1248]|f[248]|c(8|16)|[US]\d{1,6})")


class DTypeRecord:
    """numpy.dtype(name, align, copy) followed by its __setstate__: checked, then built."""

    dtype: np.dtype[Any] | None = None

    def __init__(self, name: Any, align: Any = False, copy: Any = False):
        if not isinstance(name, str) or not _DTYPE_NAME.fullmatch(name):
            raise CheckpointError(f"numpy dtype {name!r} (only numbers and strings are read)")
        self.dtype = np.dtype(name)

    def __setstate__(self, state: Any) -> None:
        # (version, byte order, subarray, names, fields, elsize, alignment, flags)
        if not isinstance(state, tuple) or len(state) < 5 or any(s is not None for s in state[2:5]):
            raise CheckpointError("a numpy dtype with fields or a subarray")
        if self.dtype is None or state[1] not in ("<", ">", "|", "="):
            raise CheckpointError(f"a numpy dtype with byte order {state[1]!r}")
        if state[1] in "<>":
            self.dtype = self.dtype.newbyteorder(state[1])


def _dtype_of(value: Any) -> np.dtype[Any]:
    if not isinstance(value, DTypeRecord) or value.dtype is None:
        raise CheckpointError(f"a numpy array whose dtype is a {type(value).__name__}")
    return value.dtype


class _NDArrayType:
    """Stands for the class numpy.ndarray where the file passes it as an argument."""


class NDArrayRecord:
    """numpy.core.multiarray._reconstruct(ndarray, shape, dtype) followed by __setstate__
    (version, shape, dtype, is_fortran, raw bytes): the array is rebuilt from the bytes."""

    array: np.ndarray[Any, Any] | None = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) != 5:
            raise CheckpointError("a numpy array with an unexpected state")
        _, shape, dtype, fortran, raw = state
        self.array = _array_from_bytes(raw, _dtype_of(dtype), shape, "F" if fortran else "C")


def _reconstruct_ndarray(subtype: Any, shape: Any, typecode: Any) -> NDArrayRecord:
    if subtype is not _NDArrayType:
        raise CheckpointError(f"numpy _reconstruct of a {type(subtype).__name__}, not ndarray")
    return NDArrayRecord()


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray[Any, Any]:
    """numpy.core.numeric._frombuffer: how protocol-5 pickles store an array."""
    return _array_from_bytes(buffer, _dtype_of(dtype), shape, order)


def _array_from_bytes(raw: Any, dtype: np.dtype[Any], shape: Any, order: Any) -> np.ndarray:
    if isinstance(raw, pickle.PickleBuffer):
        raw = bytes(raw.raw())
    if not isinstance(raw, bytes | bytearray) or order not in ("C", "F"):
        raise CheckpointError("a numpy array whose data is not bytes")
    dims = _dims(shape, "numpy array shape")
    if len(raw) != math.prod(dims) * dtype.itemsize:
        raise CheckpointError(
            f"a numpy array of shape {list(dims)} and dtype {dtype} with {len(raw)} bytes of data"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(dims, order=order).copy()


def _numpy_scalar(dtype: Any, data: Any = None) -> np.generic:
    dt = _dtype_of(dtype)
    if not isinstance(data, bytes) or len(data) != dt.itemsize:
        raise CheckpointError(f"a numpy {dt} scalar without its {dt.itemsize} bytes")
    return np.frombuffer(data, dtype=dt)[0].copy()


def _dims(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple | list) or not all(type(v) is int and v >= 0 for v in value):
        raise CheckpointError(f"{what} {value!r} is not a tuple of non-negative ints")
    return tuple(value)


# -- tensors and storages ------------------------------------------------------------------


@dataclass
class _Storage:
    """A storage of the file: its elements as a flat tensor."""

    flat: Tensor


def _rebuild_tensor_v2(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any,
    backward_hooks: Any,
    metadata: Any = None,
) -> Tensor:
    """torch._utils._rebuild_tensor_v2 over a storage of ours, every argument checked: a
    strided view that stays inside its storage, no hooks, no metadata."""
    if not isinstance(storage, _Storage):
        raise CheckpointError(f"a tensor over a {type(storage).__name__}, not a storage")
    if type(storage_offset) is not int or storage_offset < 0:
        raise CheckpointError(f"a tensor with storage offset {storage_offset!r}")
    dims, steps = _dims(size, "tensor size"), _dims(stride, "tensor stride")
    if len(dims) != len(steps) or not isinstance(requires_grad, bool):
        raise CheckpointError(f"a tensor of size {list(dims)} with strides {list(steps)}")
    if backward_hooks or metadata:  # NVIDIA's tensors have neither; hooks would be callables
        raise CheckpointError("a tensor with backward hooks or metadata")
    numel = storage.flat.numel()
    if math.prod(dims) > numel:  # an expanded view: NVIDIA's tensors are never that
        raise CheckpointError(f"a tensor of size {list(dims)} over a storage of {numel} elements")
    if (
        math.prod(dims)
        and storage_offset + sum((d - 1) * s for d, s in zip(dims, steps, strict=True)) >= numel
    ):
        raise CheckpointError(
            f"a tensor of size {list(dims)} at offset {storage_offset} beyond its storage of "
            f"{numel} elements"
        )
    return torch.as_strided(storage.flat, dims, steps, storage_offset)


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any) -> Tensor:
    """torch._utils._rebuild_parameter: the tensor itself (whether it is a parameter or a
    buffer is read from the module's _parameters / _buffers)."""
    if not isinstance(data, Tensor) or backward_hooks:
        raise CheckpointError("a parameter that is not a plain tensor without hooks")
    return data


class _StorageType:
    """Stands for torch.<X>Storage where a legacy blob names it: carries the dtype only."""

    def __init__(self, name: str):
        self.name, self.dtype = name, _STORAGE_DTYPES[name]


class _LegacyUnpickler(pickle.Unpickler):
    """The pickles inside a legacy torch.save blob: its header values, the storage's
    persistent id (naming a torch.<X>Storage) and the list of storage keys."""

    def __init__(self, file: io.BytesIO):
        super().__init__(file)
        self.refs: list[tuple[str, _StorageType, int]] = []

    def find_class(self, module: str, name: str) -> Any:
        # torch 1.x names a GPU storage torch.cuda.<X>Storage; it is read onto the CPU
        if module in ("torch", "torch.cuda") and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise CheckpointError(refusal(f"{module}.{name}"))

    def persistent_load(self, pid: Any) -> Any:
        # ('storage', storage type, key, location, numel, view metadata)
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise CheckpointError("a storage blob with an unexpected persistent id")
        _, kind, key, _location, numel, view = pid
        if not isinstance(kind, _StorageType) or not isinstance(key, str) or view is not None:
            raise CheckpointError("a storage blob that is not one plain storage")
        if type(numel) is not int or numel < 0:
            raise CheckpointError(f"a storage blob of {numel!r} elements")
        self.refs.append((key, kind, numel))
        return key


def _load_storage(blob: Any) -> _Storage:
    """Stands in for torch.storage._load_from_bytes: the legacy torch.save of one storage
    (magic, protocol, sys_info, the storage's persistent id, its key list, then the
    element count and the raw elements), parsed without torch.load."""
    if not isinstance(blob, bytes):
        raise CheckpointError("a storage whose data is not bytes")
    f = io.BytesIO(blob)
    try:
        if _LegacyUnpickler(f).load() != _LEGACY_MAGIC:
            raise CheckpointError("a storage blob without torch's magic number")
        if _LegacyUnpickler(f).load() != _LEGACY_PROTOCOL:
            raise CheckpointError("a storage blob of an unknown torch.save protocol")
        sys_info = _LegacyUnpickler(f).load()
        unpickler = _LegacyUnpickler(f)
        root = unpickler.load()
        keys = _LegacyUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"a storage blob that does not parse ({exc})") from None
    if len(unpickler.refs) != 1 or keys != [root] or root != unpickler.refs[0][0]:
        raise CheckpointError("a storage blob that does not hold exactly one storage")
    _, kind, numel = unpickler.refs[0]
    little = not isinstance(sys_info, dict) or bool(sys_info.get("little_endian", True))
    order: Literal["little", "big"] = "little" if little else "big"
    header = f.read(8)
    size = kind.dtype.itemsize
    data = f.read(numel * size)
    if len(header) != 8 or int.from_bytes(header, order) != numel or len(data) != numel * size:
        raise CheckpointError(f"a storage blob of {kind.name} that is truncated")
    if numel == 0:
        return _Storage(torch.empty(0, dtype=kind.dtype))
    flat = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    if not little and size > 1:  # elements were written in the writer's byte order
        flat = flat.view(-1, size).flip(1).reshape(-1)
    return _Storage(flat.view(kind.dtype))


def refusal(name: str) -> str:
    """The message for a global outside an allow-list (it names the global)."""
    return (
        f"it contains a pickled Python object ({name}) that could run code when unpickled; "
        "NVIDIA pickles are read as data (tensors, numpy arrays, containers and NVIDIA's "
        "network records), nothing else"
    )


# The globals a tensor or numpy array pickles with -> our stand-in for each.
DATA_GLOBALS: dict[str, Callable[..., Any] | type] = {
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch.storage._load_from_bytes": _load_storage,
    "numpy.dtype": DTypeRecord,
    "numpy.ndarray": _NDArrayType,
    # numpy 1.x writes numpy.core, numpy 2 numpy._core
    **{f"numpy.{core}.multiarray._reconstruct": _reconstruct_ndarray for core in ("core", "_core")},
    **{f"numpy.{core}.multiarray.scalar": _numpy_scalar for core in ("core", "_core")},
    **{f"numpy.{core}.numeric._frombuffer": _frombuffer for core in ("core", "_core")},
}
