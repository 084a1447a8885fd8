"""Loading frozen CLIP models and the differentiable image path into them."""

from __future__ import annotations

import open_clip
import pytest
import torch

from nada.params import ParamError
from nada.prompts import template_prompts
from worker.clip_models import (
    TINY_CLIP,
    add_clip_config,
    canonical_clip_name,
    list_clip_architectures,
    load_clip,
    to_clip_input,
)


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("ViT-B/32", "ViT-B-32:openai"),
        ("ViT-B-16", "ViT-B-16:openai"),
        ("ViT-B-32:random", "ViT-B-32:random"),
        ("ViT-B-32:laion2b_s34b_b79k", "ViT-B-32:laion2b_s34b_b79k"),
    ],
)
def test_canonical_names(name, canonical):
    assert canonical_clip_name(name) == canonical


def test_random_weights_are_frozen_seeded_and_offline():
    a = load_clip(f"{TINY_CLIP}:random", seed=5)
    b = load_clip(f"{TINY_CLIP}:random", seed=5)
    c = load_clip(f"{TINY_CLIP}:random", seed=6)
    assert a.name == "nada-tiny:random" and a.image_size == (32, 32) and a.context_length == 77
    assert not a.model.training
    assert not any(p.requires_grad for p in a.model.parameters())
    sa, sb, sc = a.model.state_dict(), b.model.state_dict(), c.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_real_architecture_with_random_weights():
    clip = load_clip("ViT-B/32:random", seed=0)
    assert clip.name == "ViT-B-32:random" and clip.image_size == (224, 224)
    torch.testing.assert_close(clip.mean.flatten(), torch.tensor(open_clip.OPENAI_DATASET_MEAN))
    torch.testing.assert_close(clip.std.flatten(), torch.tensor(open_clip.OPENAI_DATASET_STD))
    assert not any(p.requires_grad for p in clip.model.parameters())


def test_to_clip_input_maps_range_resizes_and_normalises_differentiably():
    mean = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)
    std = torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    images = torch.full((2, 3, 64, 64), -1.0, requires_grad=True)
    x = to_clip_input(images, (32, 32), mean, std)
    assert x.shape == (2, 3, 32, 32)
    torch.testing.assert_close(x[:, :, 0, 0], ((0 - mean) / std).view(1, 3).expand(2, 3))
    x.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    # Antialiased downscaling averages a checkerboard instead of sampling it.
    checker = (torch.arange(64).view(1, -1) + torch.arange(64).view(-1, 1)) % 2 * 2 - 1.0
    small = to_clip_input(
        checker.expand(1, 3, 64, 64), (16, 16), torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)
    )
    assert small.sub(0.5).abs().max() < 0.05


def test_a_non_square_image_is_resized_by_its_short_side_and_centre_cropped():
    """CLIP's own preprocessing (Resize(short side), CenterCrop), which the original
    StyleGAN-NADA applies to LSUN car's 512x384 content: the bars of a stretch never reach
    CLIP, and the middle of the picture keeps its aspect ratio."""
    zero, one = torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)
    wide = torch.full((1, 3, 48, 64), -1.0)  # 64 wide, 48 high: 8 columns cut on each side
    wide[..., :, 8:56] = 1.0  # the middle 48 columns white, the sides black
    x = to_clip_input(wide, (24, 24), zero, one)
    assert x.shape == (1, 3, 24, 24)
    assert x.min() > 0.9  # only the white middle survives (bicubic rings a little at the cut)
    stretched = torch.nn.functional.interpolate((wide + 1) / 2, size=(24, 24), mode="bicubic")
    assert stretched.min() < 0.01  # a plain resize would have kept the black sides


def test_encode_images_has_a_gradient_and_texts_match_open_clip():
    clip = load_clip(f"{TINY_CLIP}:random")
    images = (torch.rand(2, 3, 48, 48) * 2 - 1).requires_grad_(True)
    features = clip.encode_images(images)
    assert features.shape == (2, 64) and features.dtype == torch.float32
    features.square().sum().backward()
    assert images.grad.abs().sum() > 0

    # Trimmed text encoding (padding skipped) equals open_clip's full-context encoding.
    prompts = template_prompts("photo") + template_prompts("a much longer prompt about sketches")
    full = clip.model.encode_text(clip.tokenizer(prompts))
    torch.testing.assert_close(clip.encode_texts(prompts), full, rtol=1e-4, atol=1e-5)
    assert clip.count_tokens("a photo") == 4  # start, 'a', 'photo', end


def test_unknown_models_and_weights_are_refused_naming_clip_models():
    with pytest.raises(ParamError) as info:
        load_clip("ViT-Q-99")
    assert info.value.field == "clip_models" and "ViT-B-32" in str(info.value)
    with pytest.raises(ParamError, match="unknown weights 'nope'"):
        load_clip("ViT-B-32:nope")
    with pytest.raises(ParamError, match="random weights only"):
        load_clip(f"{TINY_CLIP}:openai")


def test_extra_configs_can_be_registered():
    add_clip_config(
        "test-micro",
        {
            "embed_dim": 16,
            "vision_cfg": {
                "image_size": 16,
                "layers": 1,
                "width": 32,
                "head_width": 16,
                "patch_size": 8,
            },
            "text_cfg": {
                "context_length": 77,
                "vocab_size": 49408,
                "width": 16,
                "heads": 1,
                "layers": 1,
            },
        },
    )
    assert "test-micro" in list_clip_architectures()
    clip = load_clip("test-micro:random")
    assert clip.encode_images(torch.zeros(1, 3, 16, 16)).shape == (1, 16)
    with pytest.raises(ValueError, match="embed_dim"):
        add_clip_config("broken", {"vision_cfg": {}})
