"""nada/edits.py: the text of latent edits ("age=2,smile=-1"), its bounds and its refusals,
and the `edits` fields of renders and photo edits that declare it."""

from __future__ import annotations

import pytest

from nada.edits import (
    MAX_EDITS,
    MAX_STRENGTH,
    Edit,
    EditSweep,
    canonical_edits,
    direction_names,
    parse_edits,
    parse_sweep,
)
from nada.errors import ParamError
from nada.photo_params import EditParams
from nada.render_params import RenderParams

JOB = "0" * 32


def test_edits_parse_into_names_and_strengths() -> None:
    assert parse_edits("") == ()
    assert parse_edits("age=2, smile=-1.5,beard=+.5") == (
        Edit("age", 2.0), Edit("smile", -1.5), Edit("beard", 0.5),
    )  # fmt: skip
    assert parse_edits(f"age={MAX_STRENGTH}") == (Edit("age", MAX_STRENGTH),)
    # The command line's own files: a path is a name there, split at the last '='.
    assert parse_edits("dirs/my=dir.pt=1", paths=True) == (Edit("dirs/my=dir.pt", 1.0),)
    assert Edit("dirs/a.pt", 1).is_path and Edit("mine.pt", 1).is_path
    assert not Edit("hair_length", 1).is_path


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("age", "must be NAME=STRENGTH"),
        ("=2", "needs a direction's name"),
        ("age=x", "as a number (got 'x')"),
        ("age=nan", "as a number"),
        ("age=1e3", "as a number"),  # no exponents: one way to write a strength
        (f"age={MAX_STRENGTH + 0.5}", f"in -{MAX_STRENGTH:g}..{MAX_STRENGTH:g}"),
        ("age=1,age=2", "names direction 'age' twice"),
        (",".join(f"d{i}=1" for i in range(MAX_EDITS + 1)), f"must hold 0..{MAX_EDITS} edits"),
        ("Age=1", "is not a direction name"),
        ("../x.pt=1", "is not a direction name"),
    ],
)
def test_bad_edits_are_refused_naming_the_field(text: str, says: str) -> None:
    with pytest.raises(ParamError) as caught:
        parse_edits(text, "edits")
    assert caught.value.field == "edits"
    assert says in caught.value.message


def test_canonical_text_is_one_per_set_of_edits() -> None:
    assert canonical_edits(" age=2.0 ,smile=-1.50") == "age=2,smile=-1.5"
    assert canonical_edits("age=0,smile=0.0") == ""  # strength 0 moves nothing: no edit


def test_a_sweep_runs_from_start_at_the_first_frame_to_stop_at_the_last() -> None:
    assert parse_sweep("") is None
    sweep = parse_sweep("age=-3:3")
    assert sweep == EditSweep("age", -3.0, 3.0)
    assert [sweep.at(f, 7).strength for f in range(7)] == [-3, -2, -1, 0, 1, 2, 3]
    for bad in ("age=3", "age=-3:x", "age=-30:3", ":1"):
        with pytest.raises(ParamError) as caught:
            parse_sweep(bad)
        assert caught.value.field == "edit_sweep"
    assert direction_names("age=1,smile=2", "age=-1:1") == ("age", "smile")
    assert direction_names("", "pose=-1:1") == ("pose",)


def test_renders_and_photo_edits_declare_edits_checked_and_canonical() -> None:
    render = RenderParams.from_dict({"job_id": JOB, "edits": "smile=1.0,age=-2"})
    assert render.edits == "smile=1,age=-2" and render.to_dict()["edits"] == "smile=1,age=-2"
    same = RenderParams.from_dict({"job_id": JOB, "edits": "smile=1,age=-2.0"})
    assert same.cache_key() == render.cache_key()
    assert (
        RenderParams(job_id=JOB, edits="age=0").cache_key() == RenderParams(job_id=JOB).cache_key()
    )
    assert (
        RenderParams(job_id=JOB, edits="age=1").cache_key() != RenderParams(job_id=JOB).cache_key()
    )
    # The sweep is a video's: a seeds render's key leaves it out, a video's reads it.
    seeds = RenderParams(job_id=JOB, edit_sweep="age=-1:1")
    assert seeds.cache_key() == RenderParams(job_id=JOB).cache_key()
    video = dict(job_id=JOB, mode="video")
    assert (
        RenderParams(**video, edit_sweep="age=-1:1").cache_key()
        != RenderParams(**video).cache_key()
    )
    with pytest.raises(ParamError) as caught:
        RenderParams.from_dict({"job_id": JOB, "edits": "age=11"})
    assert caught.value.field == "edits"

    edit = EditParams.from_dict({"inversion_id": JOB, "job_id": JOB, "edits": "age=2.50"})
    assert edit.edits == "age=2.5"
    assert EditParams(inversion_id=JOB, job_id=JOB).edits == ""  # stored edits read back
    with pytest.raises(ParamError) as caught:
        EditParams.from_dict({"inversion_id": JOB, "job_id": JOB, "edits": "age"})
    assert caught.value.field == "edits"
