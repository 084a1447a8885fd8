"""The NVIDIA pickle reader: the fixtures read as data, their stored source never runs, and
anything outside the allow-list is refused by name before it can run."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import pickletools
import re
import subprocess
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from stylegan2.checkpoint import CheckpointError
from stylegan2.nvidia_pickle import NetworkRecord, read_nvidia_pickle

NVIDIA = Path(__file__).resolve().parents[1] / "data" / "nvidia"  # README.md says what


@pytest.fixture(scope="module")
def ada() -> object:
    return read_nvidia_pickle(NVIDIA / "ada_sg2_64.pkl")


def test_the_pytorch_fixtures_read_as_records(ada) -> None:
    outputs = torch.load(NVIDIA / "ada_sg2_64_outputs.pt", weights_only=True)
    assert ada.framework == "pytorch"
    assert sorted(ada.networks) == ["D", "G", "G_ema"]
    assert ada.extra["augment_pipe"] is None
    assert ada.extra["training_set_kwargs"]["resolution"] == 64
    g = ada.networks["G_ema"]
    assert (g.module, g.class_name) == ("training.networks", "Generator")
    assert g.init_kwargs == outputs["G_kwargs"]  # EasyDicts as plain dicts
    assert type(g.init_kwargs["synthesis_kwargs"]) is dict
    assert g.state_dict["mapping.w_avg"].shape == (128,)
    assert g.state_dict["synthesis.b4.conv1.noise_const"].shape == (4, 4)  # a buffer
    assert g.state_dict["synthesis.b64.conv1.weight"].shape == (32, 32, 3, 3)  # a parameter
    assert g.attrs[""]["num_ws"] == 10 and g.attrs["synthesis"]["block_resolutions"][-1] == 64
    assert g.classes["synthesis.b8.conv0"] == "SynthesisLayer"
    # the file's G_ema is not its G (the training copy)
    assert not torch.equal(g.state_dict["mapping.fc0.weight"], ada.networks["G"].state_dict["mapping.fc0.weight"])  # fmt: skip
    assert ada.networks["D"].class_name == "Discriminator"

    for name in ("sg3_t_64.pkl", "sg3_r_64.pkl"):
        sg3 = read_nvidia_pickle(NVIDIA / name).networks["G_ema"]
        assert (sg3.module, sg3.class_name) == ("training.networks_stylegan3", "Generator")
        assert sg3.state_dict["synthesis.input.transform"].shape == (3, 3)
        layer = sg3.attrs["synthesis"]["layer_names"][0]
        assert isinstance(sg3.attrs[f"synthesis.{layer}"]["in_size"], np.ndarray)  # numpy 2 names
        assert sg3.attrs[f"synthesis.{layer}"]["in_size"].tolist() == [36, 36]


def test_the_tensorflow_fixture_reads_its_variables_under_their_names() -> None:
    pkl = read_nvidia_pickle(NVIDIA / "ada_sg2_64_tf.pkl")  # protocol 3, numpy 1 names
    assert pkl.framework == "tensorflow" and sorted(pkl.networks) == ["D", "G", "Gs"]
    gs = pkl.networks["Gs"]
    assert (gs.module, gs.class_name) == ("dnnlib.tflib.network", "G_main")
    assert gs.init_kwargs["fmap_base"] == 1024 and gs.init_kwargs["dlatent_size"] == 128
    assert gs.state_dict["mapping/Dense0/weight"].shape == (128, 128)
    assert gs.state_dict["synthesis/4x4/Const/const"].shape == (1, 64, 4, 4)
    assert gs.state_dict["dlatent_avg"].dtype == torch.float32
    assert gs.attrs["synthesis"]["build_func_name"] == "G_synthesis_stylegan2"


def test_the_stored_source_never_runs_and_is_not_kept() -> None:
    """Every fixture's module_src / build_module_src raises SystemExit: reading succeeds,
    and no string of the records holds it."""
    for name in ("ada_sg2_64.pkl", "ada_sg2_64_tf.pkl", "sg3_t_64.pkl", "sg3_r_64.pkl"):
        assert b"SystemExit" in (NVIDIA / name).read_bytes()  # the poison is in the file
        pkl = read_nvidia_pickle(NVIDIA / name)
        for record in pkl.networks.values():
            assert "SystemExit" not in repr((record.attrs, record.init_kwargs))


def test_storages_equal_what_torch_load_reads_from_the_same_blob() -> None:
    """Our own parser of the legacy torch.save blobs against torch.load(weights_only=True)."""
    from stylegan2.pickle_data import DATA_GLOBALS

    load_storage = DATA_GLOBALS["torch.storage._load_from_bytes"]
    data = (NVIDIA / "sg3_r_64.pkl").read_bytes()
    blobs = [
        arg
        for op, arg, _ in pickletools.genops(data)
        if op.name in ("BINBYTES", "SHORT_BINBYTES") and arg.startswith(b"\x80\x02\x8a\x0a")
    ]
    assert len(blobs) > 100
    for blob in blobs[::7]:
        ours = load_storage(blob).flat
        theirs = torch.load(io.BytesIO(blob), weights_only=True)
        assert ours.dtype == theirs.dtype
        assert torch.equal(ours, torch.tensor([], dtype=theirs.dtype).set_(theirs._untyped_storage))
    # torch 1.x wrote a GPU tensor's storage as torch.cuda.<X>Storage: read onto the CPU
    cuda = blobs[0].replace(b"ctorch\nFloatStorage\n", b"ctorch.cuda\nFloatStorage\n")
    assert cuda != blobs[0] and torch.equal(load_storage(cuda).flat, load_storage(blobs[0]).flat)


# -- NVIDIA-shaped pickles made here ----------------------------------------------------------


@pytest.fixture
def nvidia_modules(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Stand-ins for NVIDIA's torch_utils.persistence and dnnlib.util, registered only so
    that pickle can write the names NVIDIA's files use (the reader never imports them)."""
    persistence = types.ModuleType("torch_utils.persistence")
    util = types.ModuleType("dnnlib.util")

    def _reconstruct_persistent_obj(meta):  # never called by the reader
        raise AssertionError("the reader called the file's own function")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    util.EasyDict = EasyDict
    for name, module in {
        "torch_utils": types.ModuleType("torch_utils"),
        "torch_utils.persistence": persistence,
        "dnnlib": types.ModuleType("dnnlib"),
        "dnnlib.util": util,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    return types.SimpleNamespace(reconstruct=_reconstruct_persistent_obj, EasyDict=EasyDict)


class Persistent:
    """Pickles like one of NVIDIA's persistent networks: _reconstruct_persistent_obj(meta)."""

    def __init__(self, reconstruct, class_name: str, state: dict):
        self.reconstruct, self.class_name, self.state = reconstruct, class_name, state

    def __reduce__(self):
        meta = dict(
            type="class", version=4, class_name=self.class_name, state=self.state,
            module_src="raise SystemExit('a loader executed the stored source')",
        )  # fmt: skip
        return (self.reconstruct, (meta,))


def persistent(module: nn.Module, reconstruct, init_kwargs: dict | None = None) -> Persistent:
    """`module` (and each submodule) as NVIDIA pickles it: its __dict__ as the state."""
    state = dict(module.__dict__)
    state["_modules"] = OrderedDict(
        (name, persistent(child, reconstruct) if child is not None else None)
        for name, child in module._modules.items()
    )
    state["_init_args"], state["_init_kwargs"] = (), init_kwargs or {}
    return Persistent(reconstruct, type(module).__name__, state)


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.affine = nn.Linear(3, 4)
        self.register_buffer("noise_const", torch.randn(2, 2))
        self.register_buffer("scratch", torch.zeros(5), persistent=False)
        self.in_size = np.array([36, 36])
        self.act_gain = np.float64(2**0.5)
        self.resolution = 8


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.const = nn.Parameter(torch.randn(4, 4, 4))
        self.b8 = Block()
        self.register_buffer("w_avg", torch.randn(4))
        self.unused = None


def test_a_module_tree_flattens_exactly_like_its_state_dict(nvidia_modules, tmp_path) -> None:
    torch.manual_seed(0)
    net = Net()
    kwargs = nvidia_modules.EasyDict(z_dim=4, mapping_kwargs=nvidia_modules.EasyDict(num_layers=2))
    path = tmp_path / "snapshot.pkl"
    path.write_bytes(
        pickle.dumps(
            {"G_ema": persistent(net, nvidia_modules.reconstruct, kwargs), "cur_nimg": 1000},
            protocol=4,
        )
    )
    pkl = read_nvidia_pickle(path)
    record = pkl.networks["G_ema"]
    assert isinstance(record, NetworkRecord)
    assert list(record.state_dict) == list(net.state_dict())  # order too; not 'scratch'
    for key, value in net.state_dict().items():
        assert torch.equal(record.state_dict[key], value)
        assert type(record.state_dict[key]) is torch.Tensor  # parameters as plain tensors
    assert record.init_kwargs == {"z_dim": 4, "mapping_kwargs": {"num_layers": 2}}
    assert type(record.init_kwargs["mapping_kwargs"]) is dict
    assert record.attrs["b8"]["in_size"].tolist() == [36, 36]
    assert record.attrs["b8"]["act_gain"] == np.float64(2**0.5)
    assert record.attrs[""] == {"unused": None}
    assert record.classes == {"": "Net", "b8": "Block", "b8.affine": "Linear"}
    assert pkl.extra == {"cur_nimg": 1000}


# -- what is refused ------------------------------------------------------------------------


class Calls:
    """Pickles as a call of `func(*args)`: what a malicious file does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def hostile(marker: Path) -> dict[str, tuple[object, str]]:
    """name -> (an object whose unpickling would create `marker`, the global it names)."""
    return {
        "os.system": (Calls(os.system, f"touch {marker}"), f"{os.system.__module__}.system"),
        "builtins.eval": (Calls(builtins.eval, f"open({str(marker)!r}, 'w')"), "builtins.eval"),
        "subprocess.Popen": (Calls(subprocess.Popen, ["touch", str(marker)]), "subprocess.Popen"),
    }


def test_code_in_the_file_is_refused_by_name_and_never_runs(nvidia_modules, tmp_path) -> None:
    marker = tmp_path / "pwned"
    for label, (evil, named) in hostile(marker).items():
        for where, obj in {
            "alone": evil,
            "beside a network": {"G_ema": persistent(Net(), nvidia_modules.reconstruct), "x": evil},
            "inside a network's attributes": {
                "G_ema": Persistent(nvidia_modules.reconstruct, "Generator", {"hook": evil})
            },
        }.items():
            path = tmp_path / f"{label}.pkl"
            path.write_bytes(pickle.dumps(obj, protocol=4))
            with pytest.raises(CheckpointError) as err:
                read_nvidia_pickle(path)
            message = str(err.value)
            assert f"({named})" in message and "refusing to load" in message, (label, where)
            assert not marker.exists(), (label, where)


@pytest.mark.parametrize("module, name", [("os", "system"), ("builtins", "eval"),
                                          ("subprocess", "Popen"), ("builtins", "exec")])  # fmt: skip
def test_globals_spelled_by_hand_are_refused_by_that_name(tmp_path: Path, module, name) -> None:
    marker = tmp_path / "pwned"
    arg = pickle.dumps(f"touch {marker}", protocol=2)[2:-1]  # the string, without PROTO/STOP
    path = tmp_path / "hand.pkl"  # PROTO 2, GLOBAL module name, the argument, TUPLE1, REDUCE
    path.write_bytes(b"\x80\x02c" + f"{module}\n{name}\n".encode() + arg + b"\x85R.")
    with pytest.raises(CheckpointError, match=rf"refusing to load .*\({module}\.{name}\)"):
        read_nvidia_pickle(path)
    assert not marker.exists()


def test_an_unknown_class_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "plugin.pkl"  # GLOBAL myplugin.layers MagicLayer, called with ()
    path.write_bytes(b"\x80\x02cmyplugin.layers\nMagicLayer\nq\x00)R.")
    with pytest.raises(CheckpointError, match=r"\(myplugin\.layers\.MagicLayer\) that could run"):
        read_nvidia_pickle(path)
    assert "myplugin" not in sys.modules


def test_a_storage_blob_naming_code_is_refused_and_torch_load_never_sees_it(tmp_path) -> None:
    """torch.storage._load_from_bytes is in the allow-list by name only: the blob goes to our
    parser, not to torch.load(weights_only=False), which would run it."""
    marker = tmp_path / "pwned"
    blob = pickle.dumps(Calls(os.system, f"touch {marker}"), protocol=2)
    path = tmp_path / "storage.pkl"
    path.write_bytes(pickle.dumps({"w": Calls(torch.storage._load_from_bytes, blob)}))
    with pytest.raises(CheckpointError, match=rf"\({os.system.__module__}\.system\)"):
        read_nvidia_pickle(path)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")
def test_tensors_outside_their_storage_and_object_arrays_are_refused(tmp_path) -> None:
    legacy = io.BytesIO()
    torch.save(torch.arange(4.0).storage(), legacy, _use_new_zipfile_serialization=False)
    storage = Calls(torch.storage._load_from_bytes, legacy.getvalue())
    rebuild = torch._utils._rebuild_tensor_v2
    cases = {
        "beyond": (Calls(rebuild, storage, 2, (3,), (1,), False, OrderedDict()), "beyond its"),
        "hooks": (Calls(rebuild, storage, 0, (2,), (1,), False, {"h": 1}), "backward hooks"),
        "expanded": (Calls(rebuild, storage, 0, (9,), (0,), False, {}), "storage of 4 elements"),
        "objects": (np.array([None, 1], dtype=object), "numpy dtype 'O8'"),
        "truncated blob": (
            Calls(torch.storage._load_from_bytes, legacy.getvalue()[:-3]),
            "truncated",
        ),
    }
    for name, (obj, message) in cases.items():
        path = tmp_path / f"{name}.pkl"
        path.write_bytes(pickle.dumps({"w": obj}, protocol=4))
        with pytest.raises(CheckpointError, match=message):
            read_nvidia_pickle(path)


def test_shared_references_are_read_once_and_module_paths_are_bounded(
    nvidia_modules, tmp_path: Path
) -> None:
    """A pickle's memo lets a few bytes describe an exponentially large tree."""
    laughs: list = [1]
    for _ in range(40):
        laughs = [laughs] * 10  # 10**40 leaves, 40 distinct lists
    net = persistent(Net(), nvidia_modules.reconstruct)
    path = tmp_path / "laughs.pkl"
    path.write_bytes(pickle.dumps({"G_ema": net, "extra": laughs}))
    assert path.stat().st_size < 10_000
    read = read_nvidia_pickle(path).extra["extra"]
    for _ in range(40):
        assert len(read) == 10 and read[0] is read[9]
        read = read[0]

    shared = Persistent(nvidia_modules.reconstruct, "Leaf", {"_modules": {}})
    for _ in range(40):  # 2**40 module paths
        shared = Persistent(
            nvidia_modules.reconstruct, "Pair", {"_modules": {"a": shared, "b": shared}}
        )
    path.write_bytes(pickle.dumps({"G_ema": shared}))
    with pytest.raises(CheckpointError, match="more than 100000 modules"):
        read_nvidia_pickle(path)


def test_truncated_and_oversized_files_are_refused_clearly(tmp_path: Path) -> None:
    data = (NVIDIA / "ada_sg2_64.pkl").read_bytes()
    for cut in (len(data) // 2, len(data) - 1, 100):
        path = tmp_path / "cut.pkl"
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=r"not a readable NVIDIA pickle \(truncated"):
            read_nvidia_pickle(path)

    big = tmp_path / "big.pkl"
    big.write_bytes(b"\x00" * 4096)  # not even a pickle: refused on its size, before reading
    with pytest.raises(CheckpointError, match=r"it is 4096 bytes, over the limit of 1000 bytes"):
        read_nvidia_pickle(big, max_bytes=1000)
    with pytest.raises(CheckpointError, match="over the limit"):
        read_nvidia_pickle(NVIDIA / "ada_sg2_64.pkl", max_bytes=len(data) - 1)
    with pytest.raises(CheckpointError, match="cannot read"):
        read_nvidia_pickle(tmp_path / "missing.pkl")
    with pytest.raises(CheckpointError, match="not a regular file"):
        read_nvidia_pickle(tmp_path)


def test_pickles_that_hold_no_networks_say_what_they_hold(tmp_path: Path) -> None:
    for obj, what in (([1, 2], "a list"), ({"a": 1}, "a dict without networks (keys: a)")):
        path = tmp_path / "other.pkl"
        path.write_bytes(pickle.dumps(obj))
        with pytest.raises(CheckpointError, match=f"it holds {re.escape(what)}, not a dict"):
            read_nvidia_pickle(path)
