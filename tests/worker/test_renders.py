"""worker/renders.py: seeds, style mixing and videos through a base and an adapted generator.

Tiny generators (random-16: 6 W+ entries) on the CPU; the adapted one is another random
generator saved as an adapted.pt, so source and adapted pictures differ.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nada import rundir
from nada.errors import ParamError
from nada.events import Canceled, Progress
from nada.render_params import RenderParams
from tests.stand_ins import save_stand_in_adapted
from worker.model_cache import ModelCache
from worker.renders import run_render
from worker.samples import image_grid, render, seeded_inputs
from worker.video import count_frames

SIZE = 16
PAD = 2  # image_grid's gutter


@pytest.fixture(scope="module")
def models() -> ModelCache:
    return ModelCache()  # the base generator's mean w is computed once for the module


@pytest.fixture(scope="module")
def adapted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_stand_in_adapted(tmp_path_factory.mktemp("job") / rundir.ADAPTED,
                                 f"random-{SIZE}", seed=7)  # fmt: skip


def _run(tmp_path: Path, adapted: Path, models: ModelCache, **params: object):
    events: list[Progress] = []
    result = run_render(RenderParams(**params), tmp_path, checkpoint_path=adapted,
                        device="cpu", on_progress=events.append, models=models)  # fmt: skip
    return result, events


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_seeds_source_row_is_the_base_generators_own_picture(tmp_path, adapted, models):
    result, events = _run(tmp_path / "a", adapted, models, seeds=(3, 9), truncation=0.7)
    grid = _png(result.image)
    assert grid.shape == (2 * SIZE + PAD, 2 * SIZE + PAD, 3)  # source over adapted, 2 seeds
    base = models.generator(f"random-{SIZE}", "cpu")
    z, noise = seeded_inputs([3, 9], base.generator)
    own = render(base.generator, z, noise, truncation=0.7, truncation_latent=base.latent_avg)
    assert np.array_equal(grid[:SIZE], image_grid([own])), "the source row is `nada generate`'s"
    assert not np.array_equal(grid[:SIZE], grid[SIZE + PAD :]), "adapted differs from source"
    assert result.video is None and result.frames == 0 and result.samples == ()
    assert [(e.kind, e.stage) for e in events] == [
        ("stage", "loading"), ("stage", "rendering"), ("step", "rendering"), ("stage", "saving"),
    ]  # fmt: skip
    assert events[-1].step == events[-1].total_steps == 2

    again, _ = _run(tmp_path / "b", adapted, models, seeds=(9,), truncation=0.7)
    # A seed draws the same picture whatever else is in the grid.
    assert np.array_equal(_png(again.image)[:SIZE], grid[:SIZE, SIZE + PAD :])
    assert again.image_sha256 != result.image_sha256


def test_mixing_grids_have_a_header_row_and_column_per_generator(tmp_path, adapted, models):
    result, events = _run(tmp_path, adapted, models, mode="mix", row_seeds=(1, 2),
                          column_seeds=(5, 6, 7), crossover=2)  # fmt: skip
    grid = _png(result.image)
    rows, cols = 2 * (2 + 1), 3 + 1  # source and adapted grids, each with its header row
    assert grid.shape == (rows * (SIZE + PAD) - PAD, cols * (SIZE + PAD) - PAD, 3)
    assert (grid[:SIZE, :SIZE] == 255).all(), "blank corner"
    assert events[-1].step == events[-1].total_steps == 2 + 3 + 2 * 3
    tile = lambda r, c: grid[r * (SIZE + PAD) : r * (SIZE + PAD) + SIZE,  # noqa: E731
                             c * (SIZE + PAD) : c * (SIZE + PAD) + SIZE]  # fmt: skip
    # The column seeds' own pictures head the columns; mixes differ from both parents.
    seeds_only, _ = _run(tmp_path / "s", adapted, models, seeds=(5, 6, 7), truncation=0.7)
    assert np.array_equal(_png(seeds_only.image)[:SIZE], np.hstack(
        [tile(0, 1), np.full((SIZE, PAD, 3), 255, np.uint8), tile(0, 2),
         np.full((SIZE, PAD, 3), 255, np.uint8), tile(0, 3)]))  # fmt: skip
    assert not np.array_equal(tile(1, 1), tile(1, 0)) and not np.array_equal(tile(1, 1), tile(0, 1))


def test_crossover_past_the_generators_entries_is_named(tmp_path, adapted, models):
    with pytest.raises(ParamError, match="crossover.*6 W\\+ entries"):
        _run(tmp_path, adapted, models, mode="mix", crossover=6)
    assert not (tmp_path / rundir.RENDER_PNG).exists()


@pytest.mark.parametrize("fmt", ["mp4", "gif"])
def test_video_holds_every_frame(tmp_path, adapted, models, fmt):
    result, events = _run(tmp_path, adapted, models, mode="video", keyframes=(1, 2, 3),
                          frames=3, fps=12, format=fmt)  # fmt: skip
    assert result.video == tmp_path / f"render.{fmt}" and result.frames == 7
    assert count_frames(result.video) == 7  # read back: ffmpeg for MP4, Pillow for GIF
    assert events[-1].step == events[-1].total_steps == 7
    poster = _png(result.image)  # the keyframes, source over adapted
    assert poster.shape == (2 * SIZE + PAD, 3 * (SIZE + PAD) - PAD, 3)
    if fmt == "gif":
        with Image.open(result.video) as gif:
            assert gif.size == (2 * SIZE + PAD, SIZE)  # source | adapted
            assert gif.info["duration"] == 80  # 1/12 s in whole hundredths
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [rundir.RENDER_PNG, f"render.{fmt}"]
    )


def test_cancel_leaves_no_video(tmp_path, adapted, models):
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 2  # after the first batch of frames

    with pytest.raises(Canceled):
        run_render(RenderParams(mode="video", keyframes=(1, 2), frames=8), tmp_path,
                   checkpoint_path=adapted, device="cpu", should_cancel=cancel,
                   models=models)  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_a_base_of_another_size_is_refused(tmp_path, adapted):
    from nada.errors import InputError

    with pytest.raises(InputError, match="draws 8 px and the adapted one 16 px"):
        run_render(RenderParams(seeds=(1,)), tmp_path, checkpoint_path=adapted,
                   generator_path="random-8", device="cpu")  # fmt: skip
