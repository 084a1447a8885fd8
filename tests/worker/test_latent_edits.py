"""worker/latent_edits.py: a direction moves W+ by exactly strength x direction; direction
files are read under caps and refused by name; renders (seeds, a video's sweep) and photo
edits draw the edited codes.

Tiny generators (random-16: w_dim 512, 6 W+ entries) on the CPU; the directions are
synthetic tensors saved as the original repository's files are (`torch.save(tensor)`), and
the registry's `age` entry is pointed at one through its override variable.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from invert.latent import latent_bytes, render_latent
from invert.pipeline import run_edit
from nada import rundir
from nada.errors import InputError, ParamError
from nada.photo_params import EditParams
from nada.render_params import RenderParams
from stylegan2.direction_file import check_upload
from tests.stand_ins import save_stand_in_adapted
from worker.latent_edits import (
    MAX_FILE_BYTES,
    apply_edits,
    load_edits,
    read_direction,
    w_plus_editor,
)
from worker.model_cache import ModelCache
from worker.renders import mapped_w, run_render, synthesize
from worker.samples import image_grid, seeded_inputs, to_uint8
from worker.video import count_frames

SIZE, W_DIM, NUM_WS = 16, 512, 6
JOB = "0" * 32


def _direction(seed: int, *shape: int) -> torch.Tensor:
    """Multiples of 1/8 in -1..1: every sum and product below is exact in float32."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-8, 9, shape or (W_DIM,), generator=g).float() / 8


@pytest.fixture(scope="module")
def models() -> ModelCache:
    return ModelCache()


@pytest.fixture(scope="module")
def adapted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_stand_in_adapted(tmp_path_factory.mktemp("job") / rundir.ADAPTED,
                                 f"random-{SIZE}", seed=7)  # fmt: skip


@pytest.fixture(scope="module")
def direction_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dirs") / "age.pt"
    torch.save(_direction(1).reshape(1, W_DIM), path)  # InterfaceGAN's [1, w_dim]
    return path


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


# -- the math -----------------------------------------------------------------------------


def test_a_direction_moves_w_plus_by_exactly_strength_times_direction() -> None:
    w_plus = torch.randint(-50, 50, (3, NUM_WS, W_DIM)).float()
    before = w_plus.clone()
    one, per_entry = _direction(1), _direction(2, NUM_WS, W_DIM)

    moved = apply_edits(w_plus, [(one, 2.5)])
    assert torch.equal(moved - w_plus, (2.5 * one).expand(3, NUM_WS, W_DIM))  # every entry
    moved = apply_edits(w_plus, [(per_entry, -1.5)])
    assert torch.equal(moved - w_plus, (-1.5 * per_entry).expand(3, -1, -1))  # its own row
    both = apply_edits(w_plus, [(one, 2.0), (per_entry, 0.5)])
    assert torch.equal(both - w_plus, (2.0 * one + 0.5 * per_entry).expand(3, -1, -1))
    # A video's sweep: one strength per picture.
    swept = apply_edits(w_plus, [(one, torch.tensor([-1.0, 0.0, 3.0]))])
    for i, s in enumerate((-1.0, 0.0, 3.0)):
        assert torch.equal(swept[i] - w_plus[i], (s * one).expand(NUM_WS, -1))
    assert torch.equal(w_plus, before), "the input is not changed"
    assert apply_edits(w_plus, []) is w_plus


# -- reading direction files ----------------------------------------------------------------


def test_direction_files_are_read_as_one_tensor_of_the_generators_shape(tmp_path) -> None:
    def saved(name: str, value: object) -> Path:
        path = tmp_path / name
        torch.save(value, path)
        return path

    read = {"w_dim": W_DIM, "num_ws": NUM_WS}
    d = _direction(3)
    assert torch.equal(read_direction(saved("a.pt", d.reshape(1, -1)), **read), d)
    assert torch.equal(read_direction(saved("b.pt", {"boundary": d}), **read), d)
    rows = _direction(4, NUM_WS, W_DIM)
    assert torch.equal(read_direction(saved("c.pt", rows.half()), **read), rows)

    refusals = {
        "[7, 512]": saved("d.pt", torch.zeros(7, W_DIM)),
        "shape [256]": saved("e.pt", torch.zeros(256)),
        "one tensor": saved("f.pt", {"a": d, "b": d}),
        "floating-point": saved("g.pt", torch.zeros(W_DIM, dtype=torch.int64)),
        "NaN": saved("h.pt", torch.full((W_DIM,), float("nan"))),
        "not a PyTorch": tmp_path / "i.pt",
        "bytes; a direction file is at most": tmp_path / "j.pt",
    }
    (tmp_path / "i.pt").write_bytes(b"not a tensor at all")
    (tmp_path / "j.pt").write_bytes(b"\0" * (MAX_FILE_BYTES + 1))
    for says, path in refusals.items():
        with pytest.raises(InputError, match=r"^direction") as caught:
            read_direction(path, **read)
        assert says in str(caught.value), (says, str(caught.value))

    # A pickle that names a callable is refused, and nothing it names runs.
    hostile = tmp_path / "k.pt"
    hostile.write_bytes(pickle.dumps(_Boom(tmp_path / "boom")))
    with pytest.raises(InputError, match="direction"):
        read_direction(hostile, **read)
    assert not (tmp_path / "boom").exists()


def test_the_upload_check_re_saves_the_tensor_alone_or_says_why(tmp_path) -> None:
    """What the API's limited child answers (stylegan2/direction_file.py's check_upload)."""
    src, dst = tmp_path / "up.pt", tmp_path / "out.pt"
    torch.save({"boundary": _direction(5).reshape(1, -1)}, src)
    answer = check_upload(src, dst, W_DIM, NUM_WS)
    assert answer["ok"] is True and answer["shape"] == [W_DIM]
    assert torch.equal(torch.load(dst, weights_only=True), _direction(5))
    torch.save(torch.ones(7, W_DIM), src)
    answer = check_upload(src, tmp_path / "no.pt", W_DIM, NUM_WS)
    assert answer["ok"] is False and "has shape [7, 512]" in answer["error"]
    assert str(src) not in answer["error"] and not (tmp_path / "no.pt").exists()


class _Boom:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_names_are_registry_directions_of_this_base_or_the_callers_files(
    monkeypatch, direction_file
) -> None:
    monkeypatch.setenv("NADA_DIRECTION_AGE", str(direction_file))  # the registry's `age`
    shape = {"w_dim": W_DIM, "num_ws": NUM_WS}
    edits = load_edits("age=2", generator="ffhq-1024", **shape)
    assert torch.equal(edits.fixed[0][0], _direction(1)) and edits.fixed[0][1] == 2.0
    with pytest.raises(ParamError, match="W space of 'ffhq-1024'") as caught:
        load_edits("age=2", generator=f"random-{SIZE}", **shape)
    assert caught.value.field == "edits"
    with pytest.raises(ParamError, match="unknown edit direction 'wrinkles'") as caught:
        load_edits("", "wrinkles=-1:1", generator="ffhq-1024", **shape)
    assert caught.value.field == "edit_sweep"
    # A path in the params is opened only when the caller hands that file in (the CLI).
    name = str(direction_file)
    with pytest.raises(ParamError, match="unknown edit direction"):
        load_edits(f"{name}=1", generator=None, **shape)
    mine = load_edits(f"{name}=1", generator=None, files={name: direction_file}, **shape)
    assert torch.equal(mine.fixed[0][0], _direction(1))


# -- through the engines ---------------------------------------------------------------------


def test_a_render_draws_the_edited_codes_through_both_generators(
    tmp_path, adapted, models, direction_file
) -> None:
    name = str(direction_file)
    params = RenderParams(seeds=(3, 9), truncation=0.7, edits=f"{name}=3")
    result = run_render(params, tmp_path / "a", checkpoint_path=adapted, device="cpu",
                        models=models, direction_files={name: direction_file})  # fmt: skip
    grid = _png(result.image)
    d = _direction(1)
    base = models.generator(f"random-{SIZE}", "cpu")
    other = models.generator(str(adapted), "cpu")
    z, noise = seeded_inputs([3, 9], base.generator)
    rows = []
    for g in (base, other):  # each generator's own w, moved by 3 x direction
        w_plus = mapped_w(g, z, 0.7).unsqueeze(1).expand(-1, g.num_ws, -1) + 3 * d
        rows.append(synthesize(g, w_plus, noise))
    assert np.array_equal(grid, image_grid(rows))
    plain = run_render(RenderParams(seeds=(3, 9), truncation=0.7), tmp_path / "b",
                       checkpoint_path=adapted, device="cpu", models=models)  # fmt: skip
    assert not np.array_equal(grid, _png(plain.image))


def test_a_video_sweeps_an_edit_from_its_first_frame_to_its_last(
    tmp_path, adapted, models, direction_file
) -> None:
    name = str(direction_file)
    params = RenderParams(mode="video", keyframes=(3, 3), frames=4, format="gif",
                          edit_sweep=f"{name}=-2:2")  # fmt: skip
    result = run_render(params, tmp_path / "v", checkpoint_path=adapted, device="cpu",
                        models=models, direction_files={name: direction_file})  # fmt: skip
    assert result.frames == params.total_frames == 5
    assert count_frames(result.video) == 5
    poster = _png(result.image)  # the keyframes: frame 0 (strength -2), frame 4 (+2)
    first, last = poster[:SIZE, :SIZE], poster[:SIZE, SIZE + 2 :]
    assert not np.array_equal(first, last), "the same seed twice, moved apart by the sweep"
    # Frame 0 is the seed's picture edited at the sweep's start.
    still = run_render(RenderParams(seeds=(3,), edits=f"{name}=-2"), tmp_path / "s",
                       checkpoint_path=adapted, device="cpu", models=models,
                       direction_files={name: direction_file})  # fmt: skip
    assert np.array_equal(first, _png(still.image)[:SIZE])


def test_a_photo_edit_draws_the_code_moved_along_the_direction(
    tmp_path, adapted, models, monkeypatch, direction_file
) -> None:
    monkeypatch.setenv("NADA_DIRECTION_AGE", str(direction_file))
    g = models.generator(str(adapted), "cpu")
    w_plus = mapped_w(g, torch.randn(1, 512, generator=torch.Generator().manual_seed(5)), 0.7)
    w_plus = w_plus.unsqueeze(1).expand(-1, g.num_ws, -1).contiguous()
    latent = tmp_path / rundir.LATENT
    latent.write_bytes(latent_bytes(w_plus, None, {}))
    params = EditParams(inversion_id=JOB, job_id=JOB, edits="age=-1.5")
    result = run_edit(params, tmp_path / "edit", latent_path=latent, checkpoint_path=adapted,
                      device="cpu", edit_w_plus=w_plus_editor(params.edits))  # fmt: skip
    want = render_latent(g.generator, w_plus - 1.5 * _direction(1))
    assert np.array_equal(_png(result.image), to_uint8(want)[0])
