"""The adaptation engine end to end on tiny models: an 8-px random generator (three convs)
and the two-layer random CLIP 'nada-tiny', so that every run takes seconds on a CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import stylegan2
from nada.params import ParamError
from nada.rundir import intermediate_checkpoint_path
from tests.worker.conftest import tiny_params
from worker.engine import (
    ModelCache,
    retain_freed_memory,
    run_adaptation,
    sample_wplus,
    step_rng,
)
from worker.events import Canceled, Progress
from worker.layers import candidate_layers, layer_parameters

make_params = tiny_params


@pytest.fixture(scope="module")
def models() -> ModelCache:
    return ModelCache()


def run(tmp_path: Path, models: ModelCache, name: str = "run", **changes):
    events: list[Progress] = []
    result = run_adaptation(
        make_params(**changes),
        tmp_path / name,
        device="cpu",
        on_progress=events.append,
        models=models,
    )
    return result, events


def load_state(path: Path) -> dict[str, torch.Tensor]:
    return stylegan2.load_generator(str(path)).generator.state_dict()


def base_state(models: ModelCache) -> dict[str, torch.Tensor]:
    return models.generator("random-8", "cpu").generator.state_dict()


def changed_layers(before: dict, after: dict, names: list[str]) -> set[str]:
    return {
        name
        for name in names
        if any(not torch.equal(before[k], after[k]) for k in before if k.startswith(f"{name}."))
    }


def selected_per_step(metrics: Path) -> list[list[str]]:
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    return [line["selected_layers"] for line in lines]


def test_unselected_layers_and_mapping_stay_bit_identical(tmp_path, models):
    result, _ = run(tmp_path, models, steps=5, layers=1, include_torgb=True)
    before, after = base_state(models), load_state(result.checkpoint)
    generator = models.generator("random-8", "cpu").generator
    every = candidate_layers(generator, include_torgb=True)
    ever_selected = {name for step in selected_per_step(result.metrics) for name in step}
    assert all(len(step) == 1 for step in selected_per_step(result.metrics))
    assert changed_layers(before, after, list(every)) == ever_selected
    untouched = [k for k in before if not k.startswith(tuple(f"{n}." for n in ever_selected))]
    assert untouched and all(torch.equal(before[k], after[k]) for k in untouched)
    mapping = [k for k in before if k.startswith(("style.", "input."))]
    assert mapping and all(torch.equal(before[k], after[k]) for k in mapping)


def test_k0_changes_every_candidate_and_no_other_layer(tmp_path, models):
    result, events = run(tmp_path, models, steps=2, layers=0)
    before, after = base_state(models), load_state(result.checkpoint)
    generator = models.generator("random-8", "cpu").generator
    candidates = list(candidate_layers(generator))
    assert changed_layers(before, after, candidates) == set(candidates)
    rgb = ["to_rgb1", "to_rgbs.0"]
    assert changed_layers(before, after, rgb) == set()
    assert [e.stage for e in events if e.kind == "stage"] == ["loading", "training", "saving"]


def test_outputs_events_and_checkpoint_load_strictly(tmp_path, models):
    result, events = run(tmp_path, models, steps=4, sample_every=2)
    out = tmp_path / "run"
    assert result.checkpoint == out / "adapted.pt" and result.steps == 4
    assert [p.name for p in result.samples] == [
        "step_000000.png",
        "step_000002.png",
        "step_000004.png",
    ]
    assert all(p.is_file() for p in result.samples)
    lines = [json.loads(line) for line in result.metrics.read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4]
    assert {"total", "direction", "direction/nada-tiny:random"} <= set(lines[0]["losses"])
    assert json.loads((out / "params.json").read_text())["target_text"] == "sketch"

    kinds = [(e.kind, e.stage, e.step) for e in events if e.kind != "step"]
    assert kinds[0] == ("stage", "loading", 0)
    assert ("stage", "selecting", 0) in kinds and ("stage", "saving", 4) in kinds
    assert [e.path for e in events if e.kind == "sample"] == list(result.samples)
    steps = [e for e in events if e.kind == "step"]
    assert [e.step for e in steps] == [1, 2, 3, 4]
    assert all(e.selected_layers and e.seconds_per_step > 0 and "total" in e.losses for e in steps)

    # The file is the rosinality layout: g_ema loads strictly into a fresh Generator.
    ckpt = torch.load(result.checkpoint, map_location="cpu", weights_only=True)
    assert set(ckpt) == {"g_ema", "latent_avg", "metadata"}
    fresh = stylegan2.Generator(8)
    fresh.load_state_dict(ckpt["g_ema"], strict=True)
    meta = stylegan2.load_generator(str(result.checkpoint)).metadata
    assert meta["params"] == make_params(steps=4, sample_every=2).to_dict()
    assert meta["source_text"] == "photo" and meta["target_text"] == "sketch"
    assert meta["base"]["name"] == "random-8" and "sha256" in meta["base"]
    assert set(meta["selected_layers"]) == {"2", "4"}
    assert {"nada", "torch", "open_clip"} <= set(meta["versions"])


def test_same_seed_same_result(tmp_path, models):
    a, _ = run(tmp_path, models, "a", steps=3, mixing=0.5)
    b, _ = run(tmp_path, ModelCache(), "b", steps=3, mixing=0.5)
    sa, sb = load_state(a.checkpoint), load_state(b.checkpoint)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert selected_per_step(a.metrics) == selected_per_step(b.metrics)
    c, _ = run(tmp_path, models, "c", steps=3, mixing=0.5, seed=4)
    sc = load_state(c.checkpoint)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_resume_matches_uninterrupted_run(tmp_path, models):
    whole, _ = run(tmp_path, models, "whole", steps=4, checkpoint_every=2, reselect_every=3)
    first = intermediate_checkpoint_path(tmp_path / "whole", 2)
    assert first.is_file() and not intermediate_checkpoint_path(tmp_path / "whole", 4).exists()
    # The intermediate checkpoint is a generator checkpoint too.
    assert stylegan2.load_generator(str(first)).generator.size == 8

    params = make_params(steps=4, checkpoint_every=2, reselect_every=3)
    resumed = run_adaptation(
        params, tmp_path / "resumed", device="cpu", resume_from=first, models=models
    )
    sw, sr = load_state(whole.checkpoint), load_state(resumed.checkpoint)
    assert all(torch.equal(sw[k], sr[k]) for k in sw)
    assert selected_per_step(resumed.metrics) == selected_per_step(whole.metrics)[2:]


def test_resume_refuses_a_different_job(tmp_path, models):
    whole, _ = run(tmp_path, models, "whole", steps=2, checkpoint_every=1)
    with pytest.raises(ValueError, match="lr"):
        run_adaptation(
            make_params(steps=2, lr=0.01),
            tmp_path / "other",
            device="cpu",
            resume_from=intermediate_checkpoint_path(tmp_path / "whole", 1),
            models=models,
        )


def test_cancel_stops_within_one_step_and_writes_no_checkpoint(tmp_path, models):
    calls = []

    def should_cancel() -> bool:
        calls.append(1)
        return len(calls) > 2  # allow two steps

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "adapted.pt").write_bytes(b"a previous run's")
    events: list[Progress] = []
    with pytest.raises(Canceled):
        run_adaptation(
            make_params(steps=10),
            tmp_path / "run",
            device="cpu",
            on_progress=events.append,
            should_cancel=should_cancel,
            models=models,
        )
    assert max(e.step for e in events) == 2
    assert not (tmp_path / "run" / "adapted.pt").exists()


def test_loss_falls_over_a_short_run(tmp_path, models):
    result, _ = run(tmp_path, models, steps=12, layers=0, lr=0.01, sample_every=50)
    lines = [json.loads(line) for line in result.metrics.read_text().splitlines()]
    losses = [line["losses"]["direction"] for line in lines]
    assert losses[0] == pytest.approx(1.0, abs=1e-3)  # ΔI = 0: both generators agree
    assert sum(losses[-4:]) / 4 < 0.9 * losses[0], losses


def test_gradient_selection_and_global_loss_run(tmp_path, models):
    result, _ = run(
        tmp_path,
        models,
        steps=2,
        selection="gradient",
        layers=2,
        lambda_direction=0,
        lambda_global=1,
    )
    lines = [json.loads(line) for line in result.metrics.read_text().splitlines()]
    assert all(len(line["selected_layers"]) == 2 for line in lines)
    assert "global" in lines[0]["losses"] and "direction" not in lines[0]["losses"]


def test_prompt_longer_than_clip_context_is_refused(tmp_path, models):
    with pytest.raises(ParamError) as info:
        run(tmp_path, models, target_text="very " * 70 + "long")
    assert info.value.field == "target_text"
    assert not (tmp_path / "run" / "adapted.pt").exists()


def test_generator_path_is_recorded_with_its_checksum(tmp_path, models):
    loaded = models.generator("random-8", "cpu")
    path = tmp_path / "base.pt"
    digest = stylegan2.save_generator(path, loaded.generator, loaded.latent_avg, {})
    result, _ = run(tmp_path, models, generator=str(path), steps=1)
    base = stylegan2.load_generator(str(result.checkpoint)).metadata["base"]
    assert base["sha256"] == digest and base["path"] == str(path.resolve())


def test_sample_wplus_is_seeded_and_mixes():
    generator = stylegan2.load_generator("random-8").generator
    a = sample_wplus(generator, 3, 1.0, step_rng(0, 5, "train"))
    b = sample_wplus(generator, 3, 1.0, step_rng(0, 5, "train"))
    assert torch.equal(a, b) and a.shape == (3, generator.n_latent, generator.style_dim)
    assert not torch.equal(a[:, 0], a[:, -1])  # mixed: two styles along W+
    plain = sample_wplus(generator, 3, 0.0, step_rng(0, 5, "train"))
    assert torch.equal(plain[:, 0], plain[:, -1])


def test_trainable_parameters_are_the_candidates_only(models):
    generator = models.generator("random-8", "cpu").generator
    names = {n for n, _ in generator.named_parameters()}
    params = layer_parameters(generator, candidate_layers(generator))
    ids = {id(p) for p in params}
    trainable = {n for n, p in generator.named_parameters() if id(p) in ids}
    assert trainable and trainable < names
    assert all(n.startswith(("conv1.", "convs.")) for n in trainable)


def test_retain_freed_memory_is_a_glibc_setting_and_harmless_to_repeat():
    import platform
    import sys

    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert retain_freed_memory() is expected
    assert retain_freed_memory() is expected  # idempotent: the engine calls it every run
    torch.ones(64, 2**20).sum()  # a 256 MB block is still allocated and freed normally
