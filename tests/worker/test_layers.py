"""Layer candidates, the W+ index -> layer map, and both selection probes on constructed
generators whose right answer is known."""

from __future__ import annotations

import pytest
import torch

from stylegan2 import Generator
from worker.clip_loss import ClipGuide
from worker.clip_models import load_clip
from worker.layers import (
    candidate_layers,
    gradient_probe_scores,
    latent_probe_scores,
    select_layers,
    set_trainable,
    synthesis_layers,
    top_k_layers,
)


def small_generator(size: int = 16, seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(size, style_dim=32, n_mlp=2, channel_multiplier=1).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def guide() -> ClipGuide:
    return ClipGuide([(load_clip("nada-tiny:random", seed=0), 1.0)], "photo", "sketch")


def wplus_for(generator: Generator, n: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w = generator.style(torch.randn(n, generator.style_dim, generator=g))
    return w.unsqueeze(1).repeat(1, generator.n_latent, 1)


def readers_of_each_wplus_entry(generator: Generator) -> dict[int, tuple[str, ...]]:
    """W+ index -> names of the layers that read it (to_rgb included), from synthesis_layers."""
    readers: dict[int, list[str]] = {i: [] for i in range(generator.n_latent)}
    for layer in synthesis_layers(generator):
        readers[layer.wplus_index].append(layer.name)
    return {i: tuple(names) for i, names in readers.items()}


def fixed_noise(generator: Generator, n: int = 2) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return [torch.randn(n, 1, *b.shape[-2:], generator=g) for b in generator.noises.buffers()]


@pytest.mark.parametrize("size", [8, 32])
def test_wplus_map_matches_the_forward_pass(size):
    """Feed W+ whose entry i is the constant i and record the style each layer receives."""
    generator = small_generator(size)
    seen: dict[str, float] = {}
    hooks = []
    for layer in synthesis_layers(generator):
        module = generator.get_submodule(layer.name)

        def record(module, args, output, name=layer.name):
            style = args[1]  # StyledConv(input, style, noise) / ToRGB(input, style, skip)
            assert torch.all(style == style.flatten()[0])
            seen[name] = float(style.flatten()[0])

        hooks.append(module.register_forward_hook(record))
    index = torch.arange(generator.n_latent, dtype=torch.float32)
    wplus = index.view(1, -1, 1).expand(1, -1, generator.style_dim).contiguous()
    with torch.no_grad():
        generator([wplus], input_is_latent=True)
    for hook in hooks:
        hook.remove()

    expected = {layer.name: float(layer.wplus_index) for layer in synthesis_layers(generator)}
    assert seen == expected
    assert len(seen) == len(generator.convs) + len(generator.to_rgbs) + 2
    mapping = readers_of_each_wplus_entry(generator)
    assert sorted(mapping) == list(range(generator.n_latent))
    for i, names in mapping.items():
        assert {name for name in names} == {n for n, v in seen.items() if v == i}
    assert mapping[1] == ("to_rgb1", "convs.0")  # one entry feeds a conv and an RGB layer


def test_candidates():
    generator = small_generator(16)
    assert candidate_layers(generator) == ("conv1", "convs.0", "convs.1", "convs.2", "convs.3")
    with_rgb = candidate_layers(generator, include_torgb=True)
    assert set(with_rgb) == {"conv1", "convs.0", "convs.1", "convs.2", "convs.3"} | {
        "to_rgb1",
        "to_rgbs.0",
        "to_rgbs.1",
    }
    assert not any(name.startswith(("style", "input")) for name in with_rgb)


def test_top_k_layers():
    order = ["a", "b", "c", "d"]
    scores = {"a": 1.0, "b": 3.0, "c": 3.0, "d": 2.0}
    assert top_k_layers(scores, 2, order) == ("b", "c")
    assert top_k_layers(scores, 1, order) == ("b",)  # tie goes to the earlier layer
    assert top_k_layers(scores, 3, order) == ("b", "c", "d")
    assert top_k_layers(scores, 0, order) == tuple(order)
    assert top_k_layers(scores, 9, order) == tuple(order)


def silence_all_but(generator: Generator, keep: set[str]) -> None:
    """Zero the style modulation of every layer not in `keep`: only the W+ entries read by
    `keep` can then change the image."""
    for layer in synthesis_layers(generator):
        if layer.name not in keep:
            modulation = generator.get_submodule(layer.name).conv.modulation
            modulation.weight.zero_()


def test_latent_selection_finds_the_layers_that_read_the_moving_wplus_entries(guide):
    generator = small_generator(16)
    silence_all_but(generator, {"convs.2", "convs.3"})  # they read W+ entries 3 and 4
    wplus, noise = wplus_for(generator), fixed_noise(generator)
    scores = latent_probe_scores(generator, wplus, guide.global_loss, steps=2, noise=noise)
    assert torch.count_nonzero(scores).item() == 2 and scores[3] > 0 and scores[4] > 0

    pick = select_layers(
        "latent", generator, candidate_layers(generator), 2, wplus, guide.global_loss, noise=noise
    )
    # The authors' map (entry i -> convs[i - 2]) would say convs.1 and convs.2.
    assert pick.layers == ("convs.2", "convs.3")
    with_rgb = candidate_layers(generator, include_torgb=True)
    pick = select_layers("latent", generator, with_rgb, 3, wplus, guide.global_loss, noise=noise)
    assert set(pick.layers) == {"convs.2", "to_rgbs.0", "convs.3"}  # to_rgbs.0 also reads 3


def test_gradient_selection_finds_the_layers_with_the_largest_weight_gradients(guide):
    generator = small_generator(16)
    # Demodulation makes a conv's output independent of its weight's scale, so a weight
    # shrunk 1000x gets a 1000x larger gradient for the same image.
    for name in ("convs.0", "convs.3"):
        generator.get_submodule(name).conv.weight.mul_(1e-3)
    wplus, noise = wplus_for(generator), fixed_noise(generator)
    candidates = candidate_layers(generator)
    pick = select_layers(
        "gradient", generator, candidates, 2, wplus, guide.global_loss, noise=noise
    )
    assert pick.layers == ("convs.0", "convs.3")
    assert min(pick.scores["convs.0"], pick.scores["convs.3"]) > 100 * max(
        pick.scores[n] for n in ("conv1", "convs.1", "convs.2")
    )


@pytest.mark.parametrize("method", ["latent", "gradient"])
def test_probes_leave_the_generator_as_they_found_it(guide, method):
    generator = small_generator(16)
    set_trainable(generator, ["convs.1"])
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    flags = {n: p.requires_grad for n, p in generator.named_parameters()}
    select_layers(
        method, generator, candidate_layers(generator), 2, wplus_for(generator), guide.global_loss
    )
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items())
    assert {n: p.requires_grad for n, p in generator.named_parameters()} == flags
    assert all(p.grad is None for p in generator.parameters())  # nothing left for Adam


def test_latent_probe_computes_no_weight_gradients(guide):
    generator = small_generator(16)
    generator.requires_grad_(True)
    seen = []
    for p in generator.parameters():
        p.register_hook(lambda grad: seen.append(grad))
    latent_probe_scores(generator, wplus_for(generator), guide.global_loss)
    assert seen == []
    assert all(p.requires_grad for p in generator.parameters())


def test_chunked_probes_agree_with_whole_batch(guide):
    generator = small_generator(16)
    wplus, noise = wplus_for(generator, n=4), fixed_noise(generator, n=4)
    whole = latent_probe_scores(generator, wplus, guide.global_loss, noise=noise)
    chunked = latent_probe_scores(generator, wplus, guide.global_loss, noise=noise, chunk=3)
    torch.testing.assert_close(chunked, whole, rtol=1e-4, atol=1e-9)
    candidates = candidate_layers(generator)
    whole = gradient_probe_scores(generator, wplus, guide.global_loss, candidates, noise=noise)
    chunked = gradient_probe_scores(
        generator, wplus, guide.global_loss, candidates, noise=noise, chunk=1
    )
    assert chunked == pytest.approx(whole, rel=1e-4)


def test_unknown_method_is_refused(guide):
    generator = small_generator(8)
    with pytest.raises(ValueError, match="selection"):
        select_layers(
            "random",
            generator,
            candidate_layers(generator),
            1,
            wplus_for(generator),
            guide.global_loss,
        )
