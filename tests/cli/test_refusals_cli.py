"""CLI refusals: field names in the engine's messages spelled as flags, and no output
folder left behind by a run refused before its first step (issue 23, item 6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.declared import in_flags
from cli.main import main
from nada.params import FIELD_NAMES, flag_of

FLAGS = {name: flag_of(name) for name in FIELD_NAMES}


def test_field_names_in_a_message_become_flags():
    assert in_flags("must not be empty (or give target_images)", FLAGS) == (
        "must not be empty (or give --target-images)"
    )
    # a field name inside another word, or a plain word that is a field, stays
    assert in_flags("steps must exceed probe_steps_x", FLAGS) == "steps must exceed probe_steps_x"
    assert in_flags("must differ from source_text", FLAGS) == "must differ from --source"


def test_adapt_names_the_flag_inside_the_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as exit_info:
        main(["adapt", "--source", "photo", "--target", "", "--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --target: must not be empty (or give --target-images)" in err
    assert "target_images" not in err


def test_a_refused_generator_file_leaves_no_output_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage\n")
    out = tmp_path / "X"
    argv = ["adapt", "--source", "photo", "--target", "sketch", "--generator", str(bad),
            "--clip-models", "nada-tiny:random", "--device", "cpu", "--no-progress",
            "--out", str(out)]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "argument --generator: " in capsys.readouterr().err
    assert not out.exists()


def test_a_refused_generator_file_keeps_a_folder_that_was_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage\n")
    out = tmp_path / "X"
    out.mkdir()
    (out / "mine.txt").write_text("the user's")
    argv = ["adapt", "--source", "photo", "--target", "sketch", "--generator", str(bad),
            "--clip-models", "nada-tiny:random", "--device", "cpu", "--no-progress",
            "--out", str(out)]  # fmt: skip
    with pytest.raises(SystemExit):
        main(argv)
    assert (out / "mine.txt").read_text() == "the user's"
