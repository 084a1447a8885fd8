"""nada/render_params.py: a render's parameters, checked once for the CLI, the API and the page."""

from __future__ import annotations

import pytest

from nada.declare import describe, specs
from nada.errors import ParamError
from nada.render_params import MAX_BLEND, MODE_FIELDS, BlendPart, RenderParams

JOB = "a" * 32


def test_a_stored_render_reads_back_the_same():
    params = RenderParams(job_id=JOB, generator="ffhq-1024", mode="video", keyframes=(5, 6, 7))
    data = params.to_dict()
    assert data["keyframes"] == [5, 6, 7]  # JSON lists
    assert RenderParams.from_dict(data) == params
    assert params.total_frames == 2 * 24 + 1 == params.images
    assert RenderParams(mode="mix", row_seeds=(1, 2), column_seeds=(3,)).images == 2 + 1 + 2


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"mode": "zoom"}, "mode"),
        ({"seeds": []}, "seeds"),
        ({"seeds": [True]}, "seeds"),
        ({"seeds": "1,2"}, "seeds"),
        ({"row_seeds": list(range(9))}, "row_seeds"),
        ({"keyframes": [1]}, "keyframes"),
        ({"truncation": float("nan")}, "truncation"),
        ({"frames": 2.5}, "frames"),
        ({"format": "webm"}, "format"),
        ({"job_id": "x"}, "job_id"),
        ({"colour": 1}, "colour"),
    ],
)
def test_refusals_name_the_field(data, field):
    with pytest.raises(ParamError) as info:
        RenderParams.from_dict(data)
    assert info.value.field == field


def test_the_cache_key_reads_only_the_modes_fields():
    seeds = RenderParams(job_id=JOB, generator="g", seeds=(1, 2))
    assert seeds.cache_key() == seeds.replace(keyframes=(8, 9), fps=5).cache_key()
    assert seeds.cache_key() != seeds.replace(seeds=(2, 1)).cache_key()
    assert seeds.cache_key() != seeds.replace(truncation=0.5).cache_key()
    assert seeds.cache_key() != seeds.replace(job_id="b" * 32).cache_key()
    video = seeds.replace(mode="video")
    assert video.cache_key() != video.replace(format="gif").cache_key()
    assert video.cache_key() == video.replace(seeds=(4,)).cache_key()
    assert set(MODE_FIELDS["mix"]) == {"row_seeds", "column_seeds", "crossover"}


def test_describe_lists_every_field_with_its_range():
    fields = {f["name"]: f for f in describe(RenderParams)}
    assert set(fields) == set(RenderParams().to_dict())
    for spec in specs(RenderParams):
        if spec.decl.range is not None:
            low, high = spec.decl.range
            assert (fields[spec.name]["min"], fields[spec.name]["max"]) == (low, high)
    assert (fields["seeds"]["min"], fields["seeds"]["max"]) == (1, 16)
    assert fields["seeds"]["items"] == {"min": 0, "max": 2**31 - 1}
    assert fields["seeds"]["type"] == "seeds" and fields["frames"]["type"] == "integer"
    assert fields["truncation"]["type"] == "number" and fields["mode"]["choices"] == [
        "seeds", "mix", "video", "domains",
    ]  # fmt: skip


def test_strengths_and_blends_are_checked_stored_and_keyed():
    other = "b" * 32
    params = RenderParams.from_dict({"job_id": JOB, "strength": 0.5,
                                     "blend": [{"job_id": other, "strength": 0.25}]})  # fmt: skip
    assert params.blend == (BlendPart(other, 0.25),) and params.reweighted
    assert params.to_dict()["blend"] == [{"job_id": other, "strength": 0.25}]
    assert RenderParams.from_dict(params.to_dict()) == params
    assert not RenderParams(job_id=JOB).reweighted
    plain = RenderParams(job_id=JOB)
    for changed in ({"strength": 0.5}, {"strength_coarse": 0.0}, {"blend": (BlendPart(other),)}):
        assert plain.replace(**changed).cache_key() != plain.cache_key(), changed
    for data in ({"strength": 1.51}, {"strength_medium": 1.1}, {"blend": "x"},
                 {"blend": [{"job_id": other, "strength": -0.5}]},
                 {"blend": [{"job_id": other, "weight": 1}]},
                 {"blend": [{"job_id": other}, {"job_id": other}]},
                 {"blend": [{"job_id": f"{i:032x}"} for i in range(MAX_BLEND + 1)]}):  # fmt: skip
        with pytest.raises(ParamError) as info:
            RenderParams.from_dict(data)
        assert info.value.field == next(iter(data)), data


def test_a_domain_video_passes_through_every_domain():
    params = RenderParams(job_id=JOB, mode="domains", frames=5, domain_seeds=(1, 2, 3),
                          strength=0.8, blend=(BlendPart("b" * 32, 1.2),))  # fmt: skip
    assert params.stops == (None, BlendPart(JOB, 0.8), BlendPart("b" * 32, 1.2))
    assert params.total_frames == 2 * 5 + 1 and params.images == 11 * 3
    assert params.file_name == "render.mp4"
    assert params.cache_key() != params.replace(fps=12).cache_key()
    assert params.cache_key() == params.replace(keyframes=(7, 8)).cache_key()
