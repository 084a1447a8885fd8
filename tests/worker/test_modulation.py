"""`parametrization='modulation'` (compact domains): a run on the 8-px random generator and
the tiny random CLIP trains only its style vectors, writes a domain.pt that reloads onto
its base (and no other) and renders what training rendered; the domain math and the
domain file's checks. The export through `nada export`: tests/cli/test_export.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import stylegan2
from nada import rundir
from nada.params import AdaptParams, ParamError
from stylegan2.domain_file import (
    MAX_DOMAIN_BYTES,
    Domain,
    DomainError,
    export_generator,
    load_onto,
    read_domain,
    save_domain,
)
from stylegan2.domain_modulation import bake, combine_domains, modulated_layers, modulated_view
from stylegan2.download import sha256_file
from tests.worker.conftest import tiny_params
from worker.engine import ModelCache, run_adaptation, step_rng
from worker.samples import image_grid, noise_shapes, random_noise, render

NVIDIA = Path(__file__).resolve().parents[1] / "data" / "nvidia"


def make_params(**changes: object) -> AdaptParams:
    # big steps (lr): a few of them visibly move the selected vectors
    return tiny_params(
        **{"score_latents": 2, "lr": 0.05, "parametrization": "modulation", **changes}
    )


@pytest.fixture(scope="module")
def models() -> ModelCache:
    return ModelCache()


@pytest.fixture(scope="module")
def finished(tmp_path_factory, models):
    """One modulation run (module-scoped: several tests read its files)."""
    out = tmp_path_factory.mktemp("modulation") / "run"
    result = run_adaptation(make_params(), out, device="cpu", models=models)
    return out, result


def trained_layers(out: Path) -> set[str]:
    lines = [json.loads(line) for line in rundir.metrics_path(out).read_text().splitlines()]
    return {name for line in lines for name in line["selected_layers"]}


def test_only_the_selected_vectors_train_and_every_weight_stays(finished, models) -> None:
    out, result = finished
    assert result.domain == rundir.domain_path(out) and result.domain.is_file()
    fresh = stylegan2.load_generator("random-8").generator.state_dict()
    frozen = models.generator("random-8", "cpu").generator.state_dict()  # the view's weights
    assert fresh.keys() == frozen.keys()
    assert all(torch.equal(fresh[k], frozen[k]) for k in fresh)  # bitwise, every tensor
    domain = read_domain(result.domain)
    trained = trained_layers(out)
    assert set(domain.vectors) == {"conv1", "convs.0", "convs.1"}  # the candidates
    assert trained and trained < set(domain.vectors)  # k = 1 over 4 steps: not all of them
    for name, d in domain.vectors.items():
        if name in trained:
            assert not torch.equal(d, torch.ones_like(d)), name
        else:
            assert torch.equal(d, torch.ones_like(d)), name  # never selected: still ones
    # adapted.pt is the export: only the trained layers' affines differ from the base
    adapted = stylegan2.load_generator(str(result.checkpoint)).generator.state_dict()
    changed = {k for k in fresh if not torch.equal(fresh[k], adapted[k])}
    assert changed and all(".conv.modulation." in k for k in changed)
    assert {k.split(".conv.")[0] for k in changed} == trained


def test_the_domain_reloads_onto_its_base_and_renders_the_training_samples(finished) -> None:
    out, result = finished
    p = make_params()
    base = stylegan2.load_generator("random-8")
    adapted = load_onto(read_domain(result.domain), base)
    rng = step_rng(p.seed, 0, "samples")  # the engine's sample latents and noise
    z = torch.randn(p.n_samples, base.z_dim, generator=rng)
    noise = random_noise(noise_shapes(base.generator), p.n_samples, rng)
    args = dict(truncation=p.sample_truncation, truncation_latent=base.latent_avg, batch_size=2)
    rows = [render(g, z, noise, **args) for g in (base.generator, adapted.generator)]
    png = np.asarray(Image.open(rundir.sample_path(out, p.steps)).convert("RGB"))
    assert np.array_equal(image_grid(rows, max_tile=256), png)  # what training drew, exactly
    full = export_generator(read_domain(result.domain), base)  # the affines baked
    torch.testing.assert_close(render(full.generator, z, noise, **args), rows[1], atol=1e-5, rtol=0)
    assert not torch.equal(rows[0], rows[1])


def test_another_base_is_refused(finished, tmp_path) -> None:
    _, result = finished
    domain = read_domain(result.domain)
    other = stylegan2.load_generator("random-8", seed=1)
    with pytest.raises(DomainError, match="trained on generator 'random-8'"):
        load_onto(domain, other)
    with pytest.raises(DomainError, match="trained on generator"):
        export_generator(domain, other)
    saved = tmp_path / "base.pt"  # the same weights from a file: another identity still
    base = stylegan2.load_generator("random-8")
    stylegan2.save_generator(saved, base.generator, base.latent_avg, {})
    with pytest.raises(DomainError, match="trained on generator"):
        load_onto(domain, stylegan2.load_generator(str(saved)))


def test_a_domain_at_256_px_is_a_few_tens_of_kb(tmp_path) -> None:
    base = stylegan2.load_generator("random-256")  # the FFHQ architecture at 256 px
    widths = modulated_layers(base.generator)  # every layer, the to_rgb ones too
    vectors = {name: 1 + 0.1 * torch.randn(c) for name, c in widths.items()}
    metadata = {"kind": "stylegan-nada", "params": make_params(generator="random-256").to_dict()}
    path = tmp_path / "domain.pt"
    save_domain(path, Domain(vectors=vectors, base=base.identity, metadata=metadata))
    assert path.stat().st_size < 100 * 1024
    back = read_domain(path)
    assert back.numbers == sum(widths.values()) == 8704
    assert all(torch.equal(back.vectors[k], vectors[k]) for k in vectors)


def test_stylegan3_is_refused_naming_the_parameter(models, tmp_path) -> None:
    params = make_params(generator=str(NVIDIA / "sg3_t_64.pkl"))
    with pytest.raises(ParamError) as caught:
        run_adaptation(params, tmp_path / "run", device="cpu", models=models)
    assert caught.value.field == "parametrization" and "StyleGAN2" in str(caught.value)


def test_resume_and_gradient_selection(models, tmp_path) -> None:
    """A resumed modulation run ends where the uninterrupted one does; the gradient probe
    ranks vectors and trains the k it picks."""
    params = make_params(checkpoint_every=2)
    whole = run_adaptation(params, tmp_path / "whole", device="cpu", models=models)
    first = rundir.intermediate_checkpoint_path(tmp_path / "whole", 2)
    assert stylegan2.load_generator(str(first)).generator.size == 8  # a generator file too
    resumed = run_adaptation(
        params, tmp_path / "resumed", device="cpu", models=models, resume_from=first
    )
    a, b = read_domain(whole.domain).vectors, read_domain(resumed.domain).vectors
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    out = tmp_path / "gradient"
    result = run_adaptation(make_params(selection="gradient"), out, device="cpu", models=models)
    trained = trained_layers(out)
    for name, d in read_domain(result.domain).vectors.items():
        assert torch.equal(d, torch.ones_like(d)) == (name not in trained), name


def test_domains_combine_by_their_offsets() -> None:
    d1 = {"conv1": torch.tensor([1.5, 1.0]), "convs.0": torch.tensor([0.5])}
    d2 = {"conv1": torch.tensor([0.0, 3.0])}
    mixed = combine_domains([(d1, 1.0), (d2, 0.5)])
    torch.testing.assert_close(mixed["conv1"], torch.tensor([1.0, 2.0]))  # 1 + .5 + .5*(-1)
    torch.testing.assert_close(mixed["convs.0"], torch.tensor([0.5]))  # d2 has none: its base
    assert torch.equal(combine_domains([(d1, 0.0)])["conv1"], torch.ones(2))  # alpha 0: base
    torch.testing.assert_close(combine_domains([(d1, 2.0)])["conv1"], torch.tensor([2.0, 1.0]))


def test_view_and_bake_agree_and_leave_the_base_alone() -> None:
    base = stylegan2.load_generator("random-8", seed=2)
    before = {k: v.clone() for k, v in base.generator.state_dict().items()}
    vectors = {
        name: 1 + 0.3 * torch.randn(c) for name, c in modulated_layers(base.generator).items()
    }
    ws = base.to_wplus(torch.randn(2, base.z_dim))
    with torch.no_grad():
        plain = base.render_wplus(ws)
        viewed = base.contract.synthesize(modulated_view(base.generator, vectors), ws)
        baked = base.contract.synthesize(bake(base.generator, vectors), ws)
        again = base.render_wplus(ws)
    torch.testing.assert_close(viewed, baked, atol=1e-5, rtol=0)
    assert not torch.allclose(viewed, plain) and torch.equal(again, plain)
    assert all(torch.equal(v, base.generator.state_dict()[k]) for k, v in before.items())


def test_hostile_domain_files_are_refused_by_name(finished, tmp_path) -> None:
    _, result = finished
    good = torch.load(result.domain, weights_only=True)
    cases = {
        "big.pt": None,
        "code.pt": None,
        "format.pt": {**good, "format": "other"},
        "nan.pt": {**good, "vectors": {**good["vectors"], "conv1": torch.full((4,), float("nan"))}},
        "dtype.pt": {**good, "vectors": {"conv1": torch.ones(4, dtype=torch.int64)}},
        "shape.pt": {**good, "vectors": {"conv1": torch.ones(2, 2)}},
    }
    (tmp_path / "big.pt").write_bytes(b"PK\x03\x04" + b"\0" * MAX_DOMAIN_BYTES)
    torch.save({"format": "nada-domain", "x": Path("/")}, tmp_path / "code.pt")  # a class
    for name, payload in cases.items():
        if payload is not None:
            torch.save(payload, tmp_path / name)
    expect = {
        "big.pt": "at most 4 MiB",
        "code.pt": "pathlib.PosixPath",
        "format.pt": "not a domain file",
        "nan.pt": "'conv1' holds NaN",
        "dtype.pt": "'conv1' must be a dense float32",
        "shape.pt": "'conv1' has shape [2, 2]",
    }
    for name, message in expect.items():
        with pytest.raises(DomainError, match=re.escape(message)):
            read_domain(tmp_path / name)
    wrong = {**good, "vectors": {**good["vectors"], "convs.0": torch.ones(3)}}
    torch.save(wrong, tmp_path / "fit.pt")
    with pytest.raises(DomainError, match="does not fit"):
        load_onto(read_domain(tmp_path / "fit.pt"), stylegan2.load_generator("random-8"))


def test_load_generator_reads_a_domain_onto_its_recorded_base(finished) -> None:
    """Every command that takes a generator file takes a domain.pt (baked onto the base it
    records); the upload check refuses one."""
    _, result = finished
    loaded = stylegan2.load_generator(str(result.domain))
    assert loaded.identity["sha256"] == sha256_file(result.domain)  # the domain file's
    assert loaded.metadata["base"]["name"] == "random-8"
    adapted = stylegan2.load_generator(str(result.checkpoint))  # the run's own export
    got, want = loaded.generator.state_dict(), adapted.generator.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)
    with pytest.raises(stylegan2.CheckpointError, match="is a domain file"):
        from stylegan2.checkpoint import load_untrusted

        load_untrusted(result.domain)


def test_combining_domains_is_blending_their_baked_weights() -> None:
    """The offsets' arithmetic is linear in the affines, so blending two modulation jobs'
    adapted.pt by weights (the renders' blends and strength) is combining their domains."""
    base = stylegan2.load_generator("random-8", seed=2).generator
    widths = modulated_layers(base)
    d1 = {name: 1 + 0.3 * torch.randn(c) for name, c in widths.items()}
    d2 = {name: 1 + 0.3 * torch.randn(c) for name, c in widths.items()}
    mixed = bake(base, combine_domains([(d1, 0.7), (d2, 0.6)])).state_dict()
    b0, b1, b2 = (g.state_dict() for g in (base, bake(base, d1), bake(base, d2)))
    for key in b0:
        blend = b0[key] + 0.7 * (b1[key] - b0[key]) + 0.6 * (b2[key] - b0[key])
        torch.testing.assert_close(mixed[key], blend, atol=1e-5, rtol=1e-5)
