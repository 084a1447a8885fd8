"""worker/blends.py through worker/renders.py: a domain's strength, layer-group shares,
blends of several jobs, and the video through domains.

Tiny generators (random-16) on the CPU; each "adapted" generator is another random one
saved as an adapted.pt, so every tensor differs from the base's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import stylegan2
from nada import rundir
from nada.errors import InputError, ParamError
from nada.render_params import BlendPart, RenderParams
from tests.stand_ins import save_stand_in_adapted
from worker.blends import LATENT_AVG, Mix, blended_generator, combine, layer_group_of, state_of
from worker.model_cache import ModelCache
from worker.renders import run_render
from worker.video import count_frames

SIZE = 16
PAD = 2  # image_grid's gutter
BASE = f"random-{SIZE}"


@pytest.fixture(scope="module")
def models() -> ModelCache:
    return ModelCache()


def _adapted(root: Path, seed: int) -> Path:
    return save_stand_in_adapted(root / f"job{seed}" / rundir.ADAPTED, BASE, seed)


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("jobs")
    return _adapted(root, 7), _adapted(root, 8)


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _rows(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return grid[:SIZE], grid[SIZE + PAD :]


def _render(tmp: Path, jobs, models, blend_paths=(), **params):  # type: ignore[no-untyped-def]
    return run_render(RenderParams(**params), tmp, checkpoint_path=jobs[0], device="cpu",
                      models=models, blend_paths=blend_paths)  # fmt: skip


def test_strength_0_is_the_base_and_1_the_adapted_generator_exactly(models, jobs):
    base = models.generator(BASE, "cpu")
    adapted = models.generator(str(jobs[0]), "cpu")
    zero = blended_generator(base, [adapted], Mix((0.0,)))
    one = blended_generator(base, [adapted], Mix((1.0,)))
    for name, tensor in state_of(base).items():
        assert torch.equal(state_of(zero)[name], tensor), name
        assert torch.equal(state_of(one)[name], state_of(adapted)[name]), name
    # Not a lerp that rounds: the tensors themselves.
    s0, s1 = state_of(base), state_of(adapted)
    assert all(t is s1[n] for n, t in combine(s0, [s1], lambda i, name: 1.0).items())
    assert all(t is s0[n] for n, t in combine(s0, [s1], lambda i, name: 0.0).items())


def test_strength_renders_move_the_adapted_row_only(tmp_path, models, jobs):
    seeds = (3, 9)
    plain = _png(_render(tmp_path / "plain", jobs, models, seeds=seeds).image)
    at_1 = _png(_render(tmp_path / "one", jobs, models, seeds=seeds, strength=1.0).image)
    at_0 = _png(_render(tmp_path / "zero", jobs, models, seeds=seeds, strength=0.0).image)
    half = _png(_render(tmp_path / "half", jobs, models, seeds=seeds, strength=0.5).image)
    assert np.array_equal(at_1, plain)
    source, adapted = _rows(plain)
    assert np.array_equal(_rows(at_0)[1], source), "strength 0 draws the base's pictures"
    assert np.array_equal(_rows(half)[0], source)
    assert not np.array_equal(_rows(half)[1], source) and not np.array_equal(
        _rows(half)[1], adapted
    )
    beyond = _png(_render(tmp_path / "more", jobs, models, seeds=seeds, strength=1.5).image)
    assert not np.array_equal(_rows(beyond)[1], adapted)


def test_a_blend_of_two_jobs_is_the_hand_computed_weight_average(tmp_path, models, jobs):
    base = models.generator(BASE, "cpu")
    a, b = (models.generator(str(p), "cpu") for p in jobs)
    mixed = blended_generator(base, [a, b], Mix((0.5, 0.25)))
    sa, sb, s0 = state_of(a), state_of(b), state_of(base)
    for name, w in state_of(mixed).items():
        if not w.is_floating_point():
            continue
        w0, wa, wb = s0[name].double(), sa[name].double(), sb[name].double()
        by_hand = w0 + 0.5 * (wa - w0) + 0.25 * (wb - w0)  # float64, rounded once
        assert torch.equal(w, by_hand.float()), name
        moved = not torch.equal(sa[name], s0[name])  # biases start at 0 in both
        assert not moved or not (torch.equal(w, sa[name]) or torch.equal(w, s0[name])), name

    # The render draws that generator: the same pictures as a module loaded by hand.
    params = {"seeds": (1, 2), "strength": 0.5, "blend": (BlendPart(None, 0.25),)}
    grid = _png(_render(tmp_path, jobs, models, blend_paths=[jobs[1]], **params).image)
    hand = blended_generator(base, [a, b], Mix((0.5, 0.25)))
    hand_path = tmp_path / "hand.pt"
    stylegan2.save_generator(
        hand_path, hand.generator, hand.latent_avg, {"params": {"generator": BASE}}
    )
    by_hand = _png(run_render(RenderParams(seeds=(1, 2)), tmp_path / "h", checkpoint_path=hand_path,
                              device="cpu", models=models).image)  # fmt: skip
    assert np.array_equal(grid, by_hand)
    # Made once per files and strengths: asked again, the cache's generator.
    again = models.blend(
        [BASE, str(jobs[0]), str(jobs[1])], Mix((0.5, 0.25)).key, "cpu", lambda: None
    )
    assert again is not None and torch.equal(again.latent_avg, hand.latent_avg)


def test_a_layer_groups_share_leaves_its_layers_to_the_base(models, jobs):
    base = models.generator(BASE, "cpu")
    adapted = models.generator(str(jobs[0]), "cpu")
    mixed = blended_generator(base, [adapted], Mix((1.0,), coarse=0.0, medium=0.5))
    group_of = layer_group_of(base)
    groups = {group_of(n) for n in state_of(base)}
    assert {"coarse", "medium", None} <= groups  # 16 px: W+ entries 0-5, no fine layers
    for name, w in state_of(mixed).items():
        group = group_of(name)
        if group == "coarse":
            assert torch.equal(w, state_of(base)[name]), name
        elif group == "medium" and w.is_floating_point():
            w0, w1 = state_of(base)[name].double(), state_of(adapted)[name].double()
            assert torch.equal(w, (w0 + 0.5 * (w1 - w0)).float()), name
        else:  # the mapping network, the constant input, the noise buffers, the mean w
            assert torch.equal(w, state_of(adapted)[name]), name
    assert group_of("convs.0.conv.weight") == "coarse" and group_of("style.1.weight") is None
    assert LATENT_AVG in state_of(mixed)


def test_another_models_blend_is_refused(tmp_path, models, jobs):
    small = stylegan2.load_generator("random-8", seed=3)
    path = tmp_path / rundir.ADAPTED
    stylegan2.save_generator(path, small.generator, small.latent_avg, {})
    with pytest.raises(ParamError, match="blend.*8 px.*16 px: not its model"):
        _render(tmp_path / "out", jobs, models, blend_paths=[path], blend=(BlendPart(None, 1.0),))
    base = models.generator(BASE, "cpu")
    with pytest.raises(InputError, match="not the same model"):  # the blend's own check
        blended_generator(base, [models.generator(str(path), "cpu")], Mix((1.0,)))


def test_the_video_through_domains_has_every_frame(tmp_path, models, jobs):
    fmt = "gif"  # Pillow: cheaper than ffmpeg; tests/worker/test_renders.py writes both
    params = {"mode": "domains", "domain_seeds": (4, 5), "frames": 3, "fps": 10, "format": fmt,
              "blend": (BlendPart(None, 1.0),)}  # fmt: skip
    result = _render(tmp_path / "v", jobs, models, blend_paths=[jobs[1]], **params)
    stops = 3  # the base, this job, the blend job
    assert result.frames == (stops - 1) * 3 + 1 == 7 == RenderParams(**params).total_frames
    assert count_frames(result.video) == 7
    poster = _png(result.image)  # a row per stop
    assert poster.shape == (stops * (SIZE + PAD) - PAD, 2 * (SIZE + PAD) - PAD, 3)
    row = lambda grid, r: grid[r * (SIZE + PAD) : r * (SIZE + PAD) + SIZE]  # noqa: E731
    seeds = _png(_render(tmp_path / "s", jobs, models, seeds=(4, 5)).image)
    assert np.array_equal(row(poster, 0), _rows(seeds)[0]), "the first stop is the base"
    assert np.array_equal(row(poster, 1), _rows(seeds)[1]), "the second this job's domain"
    with Image.open(result.video) as gif:
        assert gif.size == (2 * (SIZE + PAD) - PAD, SIZE)


def test_the_runner_hands_over_the_blend_jobs_files_in_order(tmp_path):
    from jobs import storage
    from jobs.settings import Settings
    from worker.runners import runner_for

    settings = Settings(data_dir=tmp_path / "data", database_url="sqlite://")
    own, first, second = "a" * 32, "b" * 32, "c" * 32
    for job in (own, first, second):
        path = storage.job_dir(settings.jobs_dir, job) / rundir.ADAPTED
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    blend = (BlendPart(second, 0.5), BlendPart(first, 1.0))
    params = RenderParams(job_id=own, generator=BASE, blend=blend)
    inputs = runner_for("render").extra_kwargs(params, settings, tmp_path)
    dirs = [storage.job_dir(settings.jobs_dir, j) / rundir.ADAPTED for j in (second, first)]
    assert inputs["blend_paths"] == dirs
    (dirs[1]).unlink()  # deleted meanwhile: the render fails naming the job
    with pytest.raises(InputError, match=f"blend job {first} has no adapted generator"):
        runner_for("render").extra_kwargs(params, settings, tmp_path)
