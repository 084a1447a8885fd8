"""The shared parameter schema: defaults from the paper, ranges, and errors naming the knob."""

import math

import pytest

from nada.catalog import check_clip_name, split_clip_name
from nada.params import RANGES, AdaptParams, ClipSpec, ParamError


def test_defaults_follow_the_paper():
    p = AdaptParams("photo", "sketch")
    assert (p.lr, p.steps, p.batch_size, p.sample_every) == (0.002, 300, 2, 50)
    assert [c.name for c in p.clip_models] == ["ViT-B-32", "ViT-B-16"]
    assert p.sample_truncation == 0.7


def test_round_trip_through_plain_data():
    p = AdaptParams("face", "Shrek", clip_models=(ClipSpec("ViT-B-32:random", 0.5),), layers=3)
    data = p.to_dict()
    assert data["clip_models"] == [{"name": "ViT-B-32:random", "weight": 0.5}]
    assert AdaptParams.from_dict(data) == p


@pytest.mark.parametrize(
    "changes, field, fragment",
    [
        ({"steps": 0}, "steps", "1..5000 (got 0)"),
        ({"steps": 5001}, "steps", "1..5000"),
        ({"steps": 2.5}, "steps", "whole number"),
        ({"steps": True}, "steps", "whole number"),
        ({"lr": math.nan}, "lr", "nan"),
        ({"lr": 0.0}, "lr", "1e-06..1.0"),
        ({"mixing": 1.5}, "mixing", "0.0..1.0"),
        ({"layers": -1}, "layers", "0..64"),
        ({"selection": "random"}, "selection", "latent, gradient"),
        ({"include_torgb": "yes"}, "include_torgb", "true or false"),
        ({"source_text": ""}, "source_text", "empty"),
        ({"target_text": "   "}, "target_text", "empty"),
        ({"target_text": "a\x00b"}, "target_text", "control characters"),
        ({"target_text": "x" * 301}, "target_text", "at most 300"),
        ({"target_text": "photo"}, "target_text", "differ"),
        ({"clip_models": ()}, "clip_models", "at least one"),
        ({"clip_models": (ClipSpec("ViT-B-32", -1),)}, "clip_models", "0..100"),
        ({"clip_models": (ClipSpec("ViT-B-32", 0),)}, "clip_models", "weight > 0"),
        ({"lambda_direction": 0.0}, "lambda_direction", "both be 0"),
    ],
)
def test_bad_values_name_the_field(changes, field, fragment):
    base = {"source_text": "photo", "target_text": "sketch"}
    with pytest.raises(ParamError) as info:
        AdaptParams(**{**base, **changes})
    assert info.value.field == field
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("sketch ", "sketch"),
        (" a\tpencil \n  sketch", "a pencil sketch"),
        ("ske\u200btch", "sketch"),  # a zero-width space
        ("\ufeffsketch\u2060", "sketch"),
        ("ＳＫＥＴＣＨ", "SKETCH"),  # full-width
        ("cafe\u0301", "caf\u00e9"),  # NFD as NFC
        ("\ufb01re", "fire"),  # a ligature
    ],
)
def test_prompts_are_stored_in_one_spelling(sent, stored):
    p = AdaptParams.from_dict({"source_text": "photo", "target_text": sent})
    assert p.target_text == stored
    assert AdaptParams.from_dict(p.to_dict()) == p


@pytest.mark.parametrize(
    "target",
    ["ＰＨＯＴＯ", "pho\u200bto", "PHOTO ", "p\u200dhoto", "\uff50\uff48\uff4f\uff54\uff4f"],
)
def test_a_target_that_only_spells_the_source_otherwise_is_refused(target):
    with pytest.raises(ParamError) as info:
        AdaptParams(source_text="photo", target_text=target)
    assert info.value.field == "target_text"
    assert "must differ from source_text" in str(info.value)


def test_a_line_break_is_white_space_but_other_control_characters_are_refused():
    assert AdaptParams("photo", "a\nsketch").target_text == "a sketch"
    with pytest.raises(ParamError, match="control characters"):
        AdaptParams("photo", "a\rsketch")


def test_unknown_key_is_refused():
    with pytest.raises(ParamError, match="is not a parameter"):
        AdaptParams.from_dict({"source_text": "a", "target_text": "b", "stepz": 3})


def test_every_range_has_a_field():
    fields = AdaptParams.__dataclass_fields__
    assert set(RANGES) <= set(fields)


def test_clip_names():
    assert split_clip_name("ViT-B/32") == ("ViT-B-32", "openai")
    assert split_clip_name("ViT-B-16:random") == ("ViT-B-16", "random")
    assert check_clip_name("ViT-B-32:random") == ("ViT-B-32", "random")
    with pytest.raises(ParamError, match="known: ViT-B-32"):
        check_clip_name("ViT-Q-99")
    with pytest.raises(ParamError, match="unknown weights 'nope'"):
        check_clip_name("ViT-B-32:nope")
    # The two-layer test CLIP: random weights only (it has no others), and not offered.
    assert check_clip_name("nada-tiny:random") == ("nada-tiny", "random")
    with pytest.raises(ParamError, match="unknown model 'nada-tiny'"):
        check_clip_name("nada-tiny")


# -- image targets (issue 12) --------------------------------------------------------------

IMG_A, IMG_B = "a" * 64, "0123456789abcdef" * 4


def test_old_stored_params_parse_with_image_defaults():
    stored = AdaptParams("photo", "sketch").to_dict()
    for name in ("target_images", "source_images", "image_weight", "image_views"):
        del stored[name]
    p = AdaptParams.from_dict(stored)
    assert (p.target_images, p.source_images, p.image_weight, p.image_views) == ((), (), 0.5, 8)
    assert p.effective_image_weight == 0.0


def test_image_target_without_text():
    p = AdaptParams.from_dict({"target_images": [IMG_A, IMG_B]})
    assert p.target_images == (IMG_A, IMG_B) and p.target_text == "" and p.source_text == ""
    assert p.effective_image_weight == 1.0
    assert AdaptParams.from_dict(p.to_dict()) == p
    assert p.to_dict()["target_images"] == [IMG_A, IMG_B]  # JSON: a list


def test_text_and_images_mix_by_image_weight():
    p = AdaptParams("dog", "cat", target_images=(IMG_A,), image_weight=0.25)
    assert p.effective_image_weight == 0.25


@pytest.mark.parametrize(
    "changes, field, fragment",
    [
        ({"target_text": ""}, "target_text", "or give target_images"),
        ({"source_text": "", "target_images": (IMG_A,)}, "source_text", "empty"),
        ({"target_images": ("A" * 64,)}, "target_images", "64 lowercase hex"),
        ({"target_images": ("abc",)}, "target_images", "'abc' is not an image name"),
        ({"target_images": (IMG_A, IMG_A)}, "target_images", "twice"),
        ({"target_images": tuple(f"{i:064x}" for i in range(17))}, "target_images", "at most 16"),
        ({"target_images": IMG_A}, "target_images", "list of image names"),
        ({"source_images": (IMG_A,)}, "source_images", "need target_images"),
        (
            {"target_images": (IMG_A,), "source_images": (IMG_A,)},
            "source_images",
            "target image too",
        ),
        ({"target_images": (IMG_A,), "image_weight": 1.5}, "image_weight", "0.0..1.0"),
        ({"image_views": 0}, "image_views", "1..64"),
    ],
)
def test_bad_image_params_name_the_field(changes, field, fragment):
    base = {"source_text": "photo", "target_text": "sketch"}
    with pytest.raises(ParamError) as info:
        AdaptParams(**{**base, **changes})
    assert info.value.field == field
    assert fragment in str(info.value)
