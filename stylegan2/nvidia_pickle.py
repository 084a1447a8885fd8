"""Reading NVIDIA's StyleGAN pickles as data: nothing the file names is imported or run.

NVIDIA's PyTorch pickles (stylegan2-ada-pytorch, stylegan3: `network-snapshot-*.pkl` and the
published files) are a plain `pickle.dump` of `dict(G=, D=, G_ema=, augment_pipe=,
training_set_kwargs=)`. Each network pickles as `torch_utils.persistence.
_reconstruct_persistent_obj(meta)`, where `meta` carries the module's whole Python source
(`module_src`), its class name and its `__dict__` (`state`: the `_parameters`, `_buffers` and
`_modules` of an `nn.Module`, `_init_kwargs`, plain attributes). NVIDIA's loader executes
`module_src`. The TensorFlow pickles (stylegan2, stylegan2-ada) are a tuple `(G, D, Gs)` of
`dnnlib.tflib.network.Network` whose state holds `build_module_src` (also executed by NVIDIA's
loader), `static_kwargs`, `components` and `variables` (name, numpy array).

`read_nvidia_pickle` reads both with a restricted unpickler: every global the file names is
looked up in `_ALLOWED`, an explicit table that maps it to a function or class *of ours*
(never the named one: tensors and numpy arrays through stylegan2/pickle_data.py, NVIDIA's
records here), and anything else is refused with a CheckpointError naming it. The stored
source is dropped unread and never executed; no module the file names is imported. In
particular `torch.storage._load_from_bytes`, which in torch itself calls
`torch.load(weights_only=False)` on its argument, is replaced by a parser of the legacy
`torch.save` blob of one storage with its own allow-list.

    >>> pkl = read_nvidia_pickle("network-snapshot-000100.pkl")
    >>> g = pkl.networks["G_ema"]
    >>> g.class_name, g.init_kwargs["z_dim"], g.state_dict["mapping.w_avg"].shape
    ('Generator', 512, torch.Size([512]))
"""

from __future__ import annotations

import os
import pickle
import stat
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from stylegan2.errors import CheckpointError
from stylegan2.pickle_data import DATA_GLOBALS, DTypeRecord, NDArrayRecord, refusal

DEFAULT_MAX_BYTES = 2 * 1024**3  # the largest published file (TF FFHQ config-f) is ~364 MB
MAX_NESTING = 200  # of containers in the file: NVIDIA's are < 20 deep
MAX_VISITS = 10_000_000  # container entries a file may hold (NVIDIA's G: ~30 000)
MAX_MODULES = 100_000  # module paths in one network (NVIDIA's G: ~200)


class UnreadablePickleError(CheckpointError):
    """The file is not a readable NVIDIA network pickle (truncated, corrupted, or another
    kind of pickle); `reason` says how, without the path."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path} is not a readable NVIDIA pickle ({reason})")
        self.reason = reason


# -- what the reader returns --------------------------------------------------------------


@dataclass
class NetworkRecord:
    """One network of the file, as data: enough to rebuild it with code of our own."""

    # Where NVIDIA's class lives. The file does not record it (persistence stores the
    # module's source, not its name), so it is inferred from the module tree:
    # "training.networks_stylegan3" (a SynthesisInput inside), "training.networks"
    # (stylegan2-ada-pytorch / stylegan3's networks_stylegan2) or "dnnlib.tflib.network".
    module: str
    class_name: str  # e.g. "Generator"; a TF network: its build_func_name, e.g. "G_main"
    init_kwargs: dict[str, Any]  # _init_kwargs (TF: static_kwargs); EasyDicts as dicts
    # PyTorch: every parameter and persistent buffer under NVIDIA's G.state_dict() keys
    # ("mapping.fc0.weight", "mapping.w_avg"); TF: every variable under its TF name with the
    # component's path ("mapping/Dense0/weight", "synthesis/4x4/Const/const", "dlatent_avg").
    state_dict: dict[str, Tensor]
    # Plain attributes (not tensors, not submodules) per submodule path, "" for the root.
    attrs: dict[str, dict[str, Any]]
    classes: dict[str, str] = field(default_factory=dict)  # submodule path -> class name
    init_args: tuple[Any, ...] = ()  # _init_args (positional; NVIDIA's networks have none)


@dataclass
class NvidiaPickle:
    """What `read_nvidia_pickle` returns."""

    framework: str  # "pytorch" or "tensorflow"
    # pytorch: the networks of the file's dict ("G", "D", "G_ema", and "augment_pipe" when
    # not None); tensorflow: "G", "D", "Gs"
    networks: dict[str, NetworkRecord]
    extra: dict[str, Any]  # the rest of the file's dict, e.g. training_set_kwargs


# -- placeholders built while unpickling ----------------------------------------------------


class _EasyDict(dict[str, Any]):
    """dnnlib.util.EasyDict: a dict; converted to a plain dict once the file is read."""

    def __setstate__(self, state: Any) -> None:
        if state:  # EasyDict pickles its items as items; a __dict__ state is not NVIDIA's
            raise CheckpointError("an EasyDict with an object state")


@dataclass
class _PersistentObject:
    """What torch_utils.persistence._reconstruct_persistent_obj(meta) stands for."""

    class_name: str
    state: dict[str, Any]
    version: int


def _reconstruct_persistent_obj(meta: Any) -> _PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise CheckpointError("a persistent object whose meta is not a class record")
    class_name, state = meta.get("class_name"), meta.get("state")
    if not isinstance(class_name, str) or not isinstance(meta.get("module_src"), str):
        raise CheckpointError("a persistent object without class_name or module_src")
    if not isinstance(state, dict):
        raise CheckpointError(f"persistent {class_name}: its state is not a dict")
    # module_src is deliberately dropped here: it is never executed, nor kept.
    return _PersistentObject(class_name, state, int(meta.get("version") or 0))


class _TFNetwork:
    """dnnlib.tflib.network.Network: its pickled state, kept as a dict."""

    state: dict[str, Any] | None = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict) or not isinstance(state.get("variables"), list):
            raise CheckpointError("a TensorFlow Network whose state has no variables list")
        self.state = state


# -- the unpickler ------------------------------------------------------------------------

_ALLOWED: dict[str, Callable[..., Any] | type] = {
    **DATA_GLOBALS,
    "collections.OrderedDict": OrderedDict,
    "dnnlib.util.EasyDict": _EasyDict,
    "torch_utils.persistence._reconstruct_persistent_obj": _reconstruct_persistent_obj,
    "dnnlib.tflib.network.Network": _TFNetwork,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """pickle.Unpickler whose globals come from _ALLOWED only, never from an import."""

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get(f"{module}.{name}")
        if found is None:
            raise CheckpointError(refusal(f"{module}.{name}"))
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise CheckpointError("a persistent id (NVIDIA's pickles have none)")


# -- from placeholders to records ---------------------------------------------------------


class _Records:
    """Turns what the unpickler built into plain data and NetworkRecords.

    A pickle's memo lets a small file refer to one object many times, so a naive walk can
    take exponential time: every object is converted once (memo by id), the entries seen
    are counted against MAX_VISITS and the module paths (a shared submodule has several,
    as in nn.Module.state_dict) against MAX_MODULES."""

    def __init__(self, where: str):
        self.where = where
        self.memo: dict[int, Any] = {}
        self.visits = 0
        self.modules = 0

    def _visit(self, n: int = 1) -> None:
        self.visits += n
        if self.visits > MAX_VISITS:
            raise CheckpointError(f"more than {MAX_VISITS} objects in the file")

    def _module(self) -> None:
        self.modules += 1
        if self.modules > MAX_MODULES:
            raise CheckpointError(f"more than {MAX_MODULES} modules in the file")

    def data(self, value: Any, depth: int = 0) -> Any:
        """`value` with every placeholder replaced (EasyDict and OrderedDict as dict);
        anything that is not plain data, an array, a tensor or a record is refused."""
        if value is None or isinstance(value, bool | int | float | complex | str | bytes):
            return value
        if isinstance(value, Tensor | np.ndarray | np.generic):
            return value
        if id(value) in self.memo:
            return self.memo[id(value)]
        if depth > MAX_NESTING:
            raise CheckpointError(f"containers nested more than {MAX_NESTING} deep")
        self._visit(len(value) if isinstance(value, dict | list | tuple | set | frozenset) else 1)
        out: Any
        if isinstance(value, dict):
            out = {self.data(k, depth + 1): self.data(v, depth + 1) for k, v in value.items()}
        elif isinstance(value, list):
            out = [self.data(v, depth + 1) for v in value]
        elif isinstance(value, tuple):
            out = tuple(self.data(v, depth + 1) for v in value)
        elif isinstance(value, set | frozenset):
            out = {self.data(v, depth + 1) for v in value}
        elif isinstance(value, NDArrayRecord) and value.array is not None:
            out = value.array
        elif isinstance(value, DTypeRecord) and value.dtype is not None:
            out = value.dtype
        elif isinstance(value, _PersistentObject):
            out = self.network(value)
        else:
            raise CheckpointError(f"an unexpected {type(value).__name__} object in the file")
        self.memo[id(value)] = out
        return out

    def network(self, obj: _PersistentObject) -> NetworkRecord:
        """One of NVIDIA's persistent networks, flattened."""
        state_dict: dict[str, Tensor] = {}
        attrs: dict[str, dict[str, Any]] = {}
        classes: dict[str, str] = {}
        self._walk(obj, "", state_dict, attrs, classes, depth=0)
        init_kwargs = self.data(obj.state.get("_init_kwargs") or {})
        init_args = self.data(obj.state.get("_init_args") or ())
        if not isinstance(init_kwargs, dict) or not isinstance(init_args, tuple):
            raise CheckpointError(f"persistent {obj.class_name}: _init_kwargs is not a dict")
        return NetworkRecord(
            module=_infer_module(classes),
            class_name=obj.class_name,
            init_kwargs=init_kwargs,
            state_dict=state_dict,
            attrs=attrs,
            classes=classes,
            init_args=init_args,
        )

    def _walk(
        self,
        obj: _PersistentObject,
        path: str,
        state_dict: dict[str, Tensor],
        attrs: dict[str, dict[str, Any]],
        classes: dict[str, str],
        depth: int,
    ) -> None:
        """Flatten one module like nn.Module.state_dict(): its parameters, its persistent
        buffers, then each child's, recursively."""
        if depth > MAX_NESTING:
            raise CheckpointError(f"modules nested more than {MAX_NESTING} deep")
        self._module()
        where = path or obj.class_name
        state, prefix = obj.state, f"{path}." if path else ""
        classes[path] = obj.class_name
        skip = state.get("_non_persistent_buffers_set") or set()
        for group in ("_parameters", "_buffers"):
            tensors = state.get(group) or {}
            if not isinstance(tensors, dict):
                raise CheckpointError(f"{where}: {group} is not a dict")
            for name, tensor in tensors.items():
                if tensor is None or (group == "_buffers" and name in skip):
                    continue
                if not isinstance(name, str) or not isinstance(tensor, Tensor):
                    raise CheckpointError(f"{where}: {group}[{name!r}] is not a tensor")
                state_dict[prefix + name] = tensor
        attrs[path] = {
            k: self.data(v)
            for k, v in state.items()
            if isinstance(k, str) and not k.startswith("_") and k != "training"
            and not isinstance(v, _PersistentObject | Tensor)
        }  # fmt: skip
        children = state.get("_modules") or {}
        if not isinstance(children, dict):
            raise CheckpointError(f"{where}: _modules is not a dict")
        for name, child in children.items():
            if child is None:
                continue
            if not isinstance(name, str) or not isinstance(child, _PersistentObject):
                raise CheckpointError(
                    f"{where}: submodule {name!r} is a {type(child).__name__}, not one of "
                    "NVIDIA's persistent networks"
                )
            self._walk(child, prefix + name, state_dict, attrs, classes, depth + 1)

    def tf_network(self, net: _TFNetwork) -> NetworkRecord:
        """A TF Network: its variables (with each component's path, as NVIDIA's legacy.py
        collects them) as tensors, its static_kwargs as init_kwargs."""
        where = self.where
        state_dict: dict[str, Tensor] = {}
        attrs: dict[str, dict[str, Any]] = {}
        classes: dict[str, str] = {}

        def walk(net: _TFNetwork, path: str, depth: int) -> None:
            if depth > MAX_NESTING or net.state is None:
                raise CheckpointError(f"{where}: a TensorFlow network without state")
            self._module()
            state = net.state
            prefix = f"{path}/" if path else ""
            for item in state["variables"]:
                if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
                    raise CheckpointError(f"{where}: a TF variable that is not (name, array)")
                array = self.data(item[1])
                if (
                    not isinstance(array, np.ndarray | np.generic)
                    or array.dtype.kind not in "biufc"
                ):
                    raise CheckpointError(
                        f"{where}: TF variable {item[0]!r} is not a numeric array"
                    )
                native = np.asarray(array, dtype=array.dtype.newbyteorder("="))
                state_dict[prefix + item[0]] = torch.from_numpy(np.array(native, copy=True))
            build = state.get("build_func_name")
            classes[path] = build if isinstance(build, str) else "Network"
            attrs[path] = {
                "name": self.data(state.get("name")),
                "version": self.data(state.get("version")),
                "build_func_name": self.data(build),
                "static_kwargs": self.data(state.get("static_kwargs") or {}),
            }
            components = state.get("components") or {}
            if not isinstance(components, dict):
                raise CheckpointError(f"{where}: TF components is not a dict")
            for name, comp in components.items():
                if not isinstance(name, str) or not isinstance(comp, _TFNetwork):
                    raise CheckpointError(f"{where}: TF component {name!r} is not a Network")
                walk(comp, prefix + name, depth + 1)

        walk(net, "", 0)
        init_kwargs = attrs[""]["static_kwargs"]
        if not isinstance(init_kwargs, dict):
            raise CheckpointError(f"{where}: TF static_kwargs is not a dict")
        return NetworkRecord(
            module="dnnlib.tflib.network",
            class_name=classes[""],
            init_kwargs=init_kwargs,
            state_dict=state_dict,
            attrs=attrs,
            classes=classes,
        )


def _infer_module(classes: dict[str, str]) -> str:
    """The file does not name the module (persistence stores its source instead): a
    StyleGAN3 generator is the one with a SynthesisInput."""
    names = set(classes.values())
    if "SynthesisInput" in names:
        return "training.networks_stylegan3"
    return "training.networks"


# -- the door -----------------------------------------------------------------------------


def read_nvidia_pickle(
    path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES
) -> NvidiaPickle:
    """Read an NVIDIA StyleGAN .pkl (PyTorch or TensorFlow) as data.

    Args:
        path: the .pkl file.
        max_bytes: files larger than this are refused before any byte is read.

    Returns:
        An NvidiaPickle: the framework, each network as a NetworkRecord, the other entries.

    Raises:
        CheckpointError: the file is too large, truncated, not an NVIDIA network pickle, or
            names a global outside the allow-list (the message names it).

    Example:
        >>> pkl = read_nvidia_pickle("stylegan2-ffhq-config-f.pkl")
        >>> pkl.framework, sorted(pkl.networks)
        ('tensorflow', ['D', 'G', 'Gs'])
    """
    path = Path(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise CheckpointError(f"refusing to load {path}: not a regular file")
    size = info.st_size
    if size > max_bytes:
        raise CheckpointError(
            f"refusing to load {path}: it is {size} bytes, over the limit of {max_bytes} "
            "bytes for an NVIDIA pickle (max_bytes)"
        )
    where = str(path)
    try:
        with path.open("rb") as f:
            raw = _RestrictedUnpickler(f).load()
        return _records(raw, where)
    except UnreadablePickleError:
        raise
    except CheckpointError as exc:
        if str(exc).startswith("it contains"):  # a global outside the allow-list
            raise CheckpointError(f"refusing to load {path}: {exc}") from None
        if str(exc).startswith(f"{where}:"):  # about the networks, already placed
            raise
        raise UnreadablePickleError(where, str(exc)) from None
    except (EOFError, pickle.UnpicklingError) as exc:
        raise UnreadablePickleError(where, f"truncated or corrupted: {exc or 'EOF'}") from None
    except RecursionError:
        raise UnreadablePickleError(where, "nested too deeply") from None
    except (
        ValueError, TypeError, AttributeError, IndexError, KeyError, RuntimeError,
        OverflowError, MemoryError,
    ) as exc:  # fmt: skip
        # What a damaged pickle makes the unpickler raise (a bad opcode argument, a call
        # of one of our functions with the wrong arguments, ...).
        raise UnreadablePickleError(
            where, f"corrupted: {type(exc).__name__}: {str(exc)[:120]}"
        ) from None


def _records(raw: Any, where: str) -> NvidiaPickle:
    records = _Records(where)
    if isinstance(raw, tuple) and len(raw) == 3 and all(isinstance(n, _TFNetwork) for n in raw):
        networks = {
            name: records.tf_network(net) for name, net in zip(("G", "D", "Gs"), raw, strict=True)
        }
        return NvidiaPickle("tensorflow", networks, {})
    if isinstance(raw, dict) and any(isinstance(v, _PersistentObject) for v in raw.values()):
        networks, extra = {}, {}
        for key, value in raw.items():
            if isinstance(value, _PersistentObject):
                networks[str(key)] = records.network(value)
            else:
                extra[str(key)] = records.data(value)
        return NvidiaPickle("pytorch", networks, extra)
    what = f"a {type(raw).__name__}"
    if isinstance(raw, dict):
        what = f"a dict without networks (keys: {', '.join(map(str, list(raw)[:8]))})"
    raise UnreadablePickleError(
        where,
        f"it holds {what}, not a dict of networks (stylegan2-ada-pytorch, stylegan3) nor a "
        "(G, D, Gs) tuple (TensorFlow)",
    )
