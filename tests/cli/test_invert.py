"""`nada invert` and `nada generate --latent` as a user runs them (in-process through
cli.main.main), on random-64 and a random-weight e4e for 64-px generators."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

import stylegan2
from cli.main import main
from invert.e4e import preprocess
from invert.e4e_weights import load_e4e
from invert.images import image_to_tensor, tensor_to_uint8
from invert.latent import read_latent, render_latent


@pytest.fixture(scope="module")
def files(tmp_path_factory, e4e_64):
    """A 64x64 photo random-64 can make, a random e4e for 64 px, an adapted generator."""
    root = tmp_path_factory.mktemp("inputs")
    e4e = e4e_64
    base = stylegan2.load_generator("random-64")
    with torch.no_grad():
        z = torch.randn(1, 512, generator=torch.Generator().manual_seed(3))
        image, _ = base.generator([z], randomize_noise=False)
    photo = root / "photo.png"
    PIL.Image.fromarray(tensor_to_uint8(image)[0]).save(photo)
    other = stylegan2.load_generator("random-64", seed=7)
    adapted = root / "sketch" / "adapted.pt"
    adapted.parent.mkdir()
    stylegan2.save_generator(adapted, other.generator, other.latent_avg, {"kind": "test"})
    return {"e4e": e4e, "photo": photo, "adapted": adapted, "root": root}


def invert_args(files, out, *extra):
    return ["invert", str(files["photo"]), "--generator", "random-64", "--encoder",
            str(files["e4e"]), "--no-align", "--perceptual-weight", "0", "--device", "cpu",
            "--out", str(out), *extra]  # fmt: skip


@pytest.fixture(scope="module")
def encoded(files):
    """`nada invert --refine-steps 0` with one --adapted: (out dir, printed summary)."""
    out = files["root"] / "encoded"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(invert_args(files, out, "--refine-steps", "0", "--no-progress",
                                "--adapted", str(files["adapted"])))  # fmt: skip
    assert code == 0
    return out, json.loads(stdout.getvalue())


def mse_to_aligned(out) -> float:
    aligned = image_to_tensor(PIL.Image.open(out / "aligned.png"))
    reconstruction = image_to_tensor(PIL.Image.open(out / "reconstruction.png"))
    return float((aligned - reconstruction).square().mean())


def test_no_refinement_writes_the_encoders_code(files, encoded):
    out, summary = encoded
    assert summary["latent"] == str(out / "latent.pt")
    assert summary["edits"] == [str(out / "edit_sketch.png")]
    assert summary["side_by_side"] == str(out / "side_by_side.png")
    code = read_latent(out / "latent.pt")
    e4e = load_e4e(files["e4e"])
    photo = PIL.Image.open(files["photo"]).convert("RGB")  # 64x64: no crop, no resize
    assert torch.equal(code.w_plus, e4e.encode(preprocess(photo)))
    assert np.array_equal(np.asarray(PIL.Image.open(out / "aligned.png")), np.asarray(photo))

    edit = np.asarray(PIL.Image.open(out / "edit_sketch.png"))
    adapted = stylegan2.load_generator(str(files["adapted"])).generator
    assert np.array_equal(edit, tensor_to_uint8(render_latent(adapted, code.w_plus))[0])
    grid = PIL.Image.open(out / "side_by_side.png")
    assert grid.size == (3 * 64 + 2 * 2, 64)  # aligned | reconstruction | edit


def test_refinement_gets_closer_to_the_photo(files, encoded, tmp_path, capsys):
    out = tmp_path / "refined"
    argv = invert_args(files, out, "--refine-steps", "3", "--refine-lr", "0.02",
                       "--sample-every", "0")  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["note"] is None and summary["sha256"]
    for name in ("latent.pt", "aligned.png", "reconstruction.png", "samples/step_000003.png"):
        assert (out / name).is_file(), name
    lines = captured.err.splitlines()  # one progress line per step (stderr is no terminal)
    assert [line.split()[:2] for line in lines] == [["refining", f"{s}/3"] for s in (1, 2, 3)]
    assert mse_to_aligned(out) < mse_to_aligned(encoded[0])


def test_generate_renders_a_saved_latent(encoded, tmp_path, capsys):
    out, _ = encoded
    png = tmp_path / "x.png"
    argv = ["generate", "--checkpoint", "random-64", "--latent", str(out / "latent.pt"),
            "--out", str(png), "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == str(png)
    g = stylegan2.load_generator("random-64").generator
    expected = tensor_to_uint8(render_latent(g, read_latent(out / "latent.pt").w_plus))[0]
    assert np.array_equal(np.asarray(PIL.Image.open(png)), expected)
    # The reconstruction `nada invert` wrote is the same image.
    assert np.array_equal(np.asarray(PIL.Image.open(out / "reconstruction.png")), expected)


def _refused(capsys, argv) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--refine-steps", "-1"], "argument --refine-steps: must be 0..2000 (got -1)"),
        (["--refine-lr", "0"], "argument --refine-lr: must be 1e-05..1.0 (got 0.0)"),
        (["--latent-weight", "inf"], "argument --latent-weight: must be a finite number"),
        (["--sample-every", "x"], "argument --sample-every: invalid int value"),
        (["--generator", "ffqh-1024"], "argument --generator: unknown generator 'ffqh-1024'"),
        (["--encoder", "e4e-nope"], "argument --encoder: 'e4e-nope' is neither auto, none"),
        (["--adapted", "missing/adapted.pt"], "argument --adapted: no such file"),
        (["--adapted", "random-32"], "argument --adapted: random-32 is a 32 px generator"),
        (["--device", "cuda:7"] if not torch.cuda.is_available() else ["--device", "tpu"],
         "argument --device:"),
    ],
)  # fmt: skip
def test_bad_values_name_the_flag(files, tmp_path, capsys, extra, message):
    err = _refused(capsys, [*invert_args(files, tmp_path / "out"), *extra])
    assert message in err, err
    assert not (tmp_path / "out" / "latent.pt").exists()


def test_an_encoder_for_another_generator_names_the_flag(files, tmp_path, capsys):
    argv = invert_args(files, tmp_path / "out")
    argv[argv.index("random-64")] = "random-32"
    err = _refused(capsys, argv)
    assert "argument --encoder:" in err and "takes 8" in err


def test_a_missing_or_broken_photo_names_the_argument(files, tmp_path, capsys):
    argv = invert_args(files, tmp_path / "out")
    argv[1] = str(tmp_path / "nope.jpg")
    assert "argument PHOTO: no such file" in _refused(capsys, argv)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    argv[1] = str(broken)
    assert "argument PHOTO:" in _refused(capsys, argv)


def test_generate_refuses_a_bad_latent(encoded, tmp_path, capsys):
    out, _ = encoded
    png = tmp_path / "x.png"
    base = ["generate", "--out", str(png), "--device", "cpu"]
    err = _refused(capsys, [*base, "--checkpoint", "random-32", "--latent", str(out / "latent.pt")])
    assert "argument --latent: the code has 10 W+ entries" in err and "takes 8" in err
    bad = tmp_path / "bad.pt"
    bad.write_text("hello")
    err = _refused(capsys, [*base, "--checkpoint", "random-64", "--latent", str(bad)])
    assert "argument --latent:" in err and "is not a latent.pt" in err
    assert not png.exists()


def test_without_the_face_detector_the_cli_suggests_no_align(files, tmp_path, capsys, monkeypatch):
    """The detector's weights missing (here: an override naming no file, so nothing is
    downloaded) is refused with the download's message and the way around it."""
    monkeypatch.setenv("NADA_WEIGHTS_FACE_S3FD", str(tmp_path / "no-such-s3fd.pth"))
    args = [a for a in invert_args(files, tmp_path / "out") if a != "--no-align"]
    err = _refused(capsys, args)
    assert "no-such-s3fd.pth" in err
    assert "--no-align" in err and "needs no face detector" in err


def test_a_stylegan3_generator_is_refused_naming_the_flag(capsys, tmp_path: Path) -> None:
    """Photos go into StyleGAN2 generators only: the CLI says so before loading an encoder."""
    photo = tmp_path / "p.png"
    PIL.Image.new("RGB", (64, 64), (90, 120, 200)).save(photo)
    sg3 = Path(__file__).resolve().parents[1] / "data" / "nvidia" / "sg3_t_64.pkl"
    try:
        code = main(["invert", str(photo), "--generator", str(sg3), "--no-align",
                     "--encoder", "none", "--out", str(tmp_path / "out")])  # fmt: skip
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and "argument --generator" in err and "StyleGAN2 generators only" in err
