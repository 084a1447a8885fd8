"""`nada adapt` and `nada generate` as a user runs them (in-process through cli.main.main)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from PIL import Image

import stylegan2
from cli.adapt import params_from_args
from cli.main import build_parser, main
from nada.params import AdaptParams, ClipSpec


@pytest.mark.slow  # ~30 s: a 64-px generator at 512 channels and ViT-B/32 on a CPU
def test_adapt_end_to_end_on_random_64_with_vit_b_32(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "adapt",
            "--source", "photo",
            "--target", "pencil sketch",
            "--generator", "random-64",
            "--clip-models", "ViT-B/32:random",
            "--steps", "2",
            "--layers", "2",
            "--probe-batch", "2",
            "--batch-size", "1",
            "--n-samples", "2",
            "--sample-every", "1",
            "--score-latents", "4",  # the default 32 images through ViT-B/32 dominate on a CPU
            "--out", str(out),
            "--device", "cpu",
        ]
    )  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["checkpoint"] == str(out / "adapted.pt") and summary["steps"] == 2
    samples = sorted(p.name for p in (out / "samples").iterdir())
    assert samples == ["step_000000.png", "step_000001.png", "step_000002.png"]
    assert Image.open(out / "samples" / "step_000002.png").size == (64 * 2 + 2, 64 * 2 + 2)
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
    assert all(len(line["selected_layers"]) == 2 for line in lines)

    loaded = stylegan2.load_generator(str(out / "adapted.pt"))
    assert loaded.generator.size == 64
    meta = loaded.metadata
    assert meta["params"]["clip_models"] == [{"name": "ViT-B/32:random", "weight": 1.0}]
    assert meta["clip_models"] == ["ViT-B-32:random"] and meta["base"]["name"] == "random-64"

    grid = tmp_path / "grid.png"
    assert main(["generate", "--checkpoint", str(out / "adapted.pt"), "--seeds", "0-2",
                 "--out", str(grid), "--device", "cpu"]) == 0  # fmt: skip
    assert Image.open(grid).size == (64 * 3 + 2 * 2, 64)


def test_generate_reads_a_rosinality_checkpoint(tmp_path, capsys):
    loaded = stylegan2.load_generator("random-8")
    path = tmp_path / "550000.pt"
    torch.save({"g_ema": loaded.generator.state_dict(), "latent_avg": loaded.latent_avg}, path)
    grid = tmp_path / "grid.png"
    args = ["generate", "--checkpoint", str(path), "--seeds", "1,5,9", "--columns", "2"]
    assert main([*args, "--out", str(grid), "--device", "cpu"]) == 0
    image = np.asarray(Image.open(grid))
    assert image.shape == (8 * 2 + 2, 8 * 2 + 2, 3)
    assert (image[10:, 10:] == 255).all()  # the last row's empty slot is white
    # A seed renders the same image whichever other seeds are asked for.
    single = tmp_path / "five.png"
    assert main(["generate", "--checkpoint", str(path), "--seeds", "5", "--out", str(single)]) == 0
    assert np.array_equal(np.asarray(Image.open(single)), image[:8, 10:18])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--steps", "0"], "argument --steps: must be 1..5000 (got 0)"),
        (["--layers", "-1"], "argument --layers: must be 0..64"),
        (["--lr", "2"], "argument --lr: must be"),
        (["--selection", "random"], "argument --selection: must be one of latent, gradient"),
        (["--batch-size", "0"], "argument --batch-size"),
        (["--mixing", "1.5"], "argument --mixing"),
        (
            ["--clip-models", "ViT-B-32,ViT-B-16", "--clip-weights", "1"],
            "argument --clip-weights: 1 weights for 2 models",
        ),
        (["--clip-weights", "x"], "argument --clip-weights: expected numbers"),
        (["--clip-weights", "-1"], "argument --clip-weights"),
        (["--clip-weights", "0,0"], "argument --clip-weights: need at least one model"),
        (
            ["--clip-models", "ViT-B-32:nope", "--generator", "random-8"],
            "argument --clip-models: has unknown weights 'nope'",
        ),
        (
            ["--clip-models", "ViT-Q-9:random", "--generator", "random-8"],
            "argument --clip-models: has unknown architecture",
        ),
        (["--target", "photo"], "argument --target: must differ from --source"),
        (["--source", " "], "argument --source: must not be empty"),
        (["--resume", "/nonexistent.pt"], "argument --resume: no such file"),
        (["--generator", "ffqh-1024"], "argument --generator: unknown generator 'ffqh-1024'"),
        (["--generator", "random-100"], "argument --generator: random generator size"),
        (["--generator", "/no/such.pt"], "argument --generator: no such file"),
        (["--device", "tpu"], "argument --device"),
    ],
)
def test_adapt_refuses_bad_values_naming_the_flag(tmp_path, capsys, argv, message):
    base = {"--source": "photo", "--target": "sketch", "--out": str(tmp_path / "o")}
    for flag, value in zip(argv[::2], argv[1::2], strict=True):
        base[flag] = value
    with pytest.raises(SystemExit) as exit_info:
        main(["adapt", *[x for pair in base.items() for x in pair]])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_adapt_refuses_a_prompt_too_long_for_clip_naming_the_flag(tmp_path, capsys):
    long = " ".join(["x"] * 72)  # 144 characters, 74 tokens: fits alone, not in a template
    argv = ["adapt", "--source", "photo", "--target", long, "--generator",
            "random-8", "--clip-models", "nada-tiny:random", "--out", str(tmp_path / "o"),
            "--device", "cpu"]  # fmt: skip
    with pytest.raises(SystemExit):
        main(argv)
    err = capsys.readouterr().err
    assert "argument --target: is too long for CLIP" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seeds", "x"], "argument --seeds: must look like '0-7' or '1,5,9' (got 'x')"),
        (["--seeds", "4294967296"], "argument --seeds: must be 0..4294967295"),  # not "seeds seeds"
        (["--truncation", "2"], "argument --truncation: must be 0..1"),
        (["--columns", "0"], "argument --columns"),
        (["--checkpoint", "/nonexistent/g.pt"], "argument --checkpoint: "),
        (["--device", "tpu"], "argument --device"),
    ],
)
def test_generate_refuses_bad_values_naming_the_flag(tmp_path, capsys, argv, message):
    base = {"--checkpoint": "random-8", "--out": str(tmp_path / "g.png")}
    for flag, value in zip(argv[::2], argv[1::2], strict=True):
        base[flag] = value
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", *[x for pair in base.items() for x in pair]])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_every_flag_reaches_the_params():
    args = build_parser().parse_args(
        ["adapt", "--source", "face", "--target", "zombie", "--generator", "x.pt",
         "--clip-models", "ViT-B-32,ViT-B/16:random", "--clip-weights", "1,0.5", "--steps", "7",
         "--layers", "3", "--selection", "gradient", "--include-torgb", "--probe-steps", "2",
         "--probe-batch", "4", "--reselect-every", "2", "--batch-size", "3", "--lr", "0.01",
         "--sample-every", "5", "--checkpoint-every", "6", "--mixing", "0.9", "--seed", "11",
         "--n-samples", "2", "--sample-truncation", "0.5", "--lambda-direction", "2",
         "--lambda-global", "0.5", "--out", "o"]
    )  # fmt: skip
    assert params_from_args(args) == AdaptParams(
        source_text="face",
        target_text="zombie",
        generator="x.pt",
        clip_models=(ClipSpec("ViT-B-32", 1.0), ClipSpec("ViT-B/16:random", 0.5)),
        steps=7,
        layers=3,
        selection="gradient",
        include_torgb=True,
        probe_steps=2,
        probe_batch=4,
        reselect_every=2,
        batch_size=3,
        lr=0.01,
        sample_every=5,
        checkpoint_every=6,
        mixing=0.9,
        seed=11,
        n_samples=2,
        sample_truncation=0.5,
        lambda_direction=2.0,
        lambda_global=0.5,
    )
    defaults = build_parser().parse_args(["adapt", "--source", "a", "--target", "b", "--out", "o"])
    assert params_from_args(defaults) == AdaptParams("a", "b")


def test_worker_command_is_registered():
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"adapt", "generate", "worker"} <= set(commands.choices)


def test_adapt_an_nvidia_stylegan2_ada_pickle(tmp_path, capsys):
    """NVIDIA's own StyleGAN2-ADA file (the fixture: 64 px, w 128, its own channel table and
    conv_clamp) as the base: the run trains, samples, scores, and writes a checkpoint that
    loads back through the one contract with the file's architecture."""
    from pathlib import Path

    pkl = Path(__file__).resolve().parents[1] / "data" / "nvidia" / "ada_sg2_64.pkl"
    out = tmp_path / "run"
    argv = ["adapt", "--generator", str(pkl), "--source", "photo", "--target", "sketch",
            "--clip-models", "nada-tiny:random", "--steps", "2", "--sample-every", "2",
            "--layers", "3", "--score-latents", "4", "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert sorted(p.name for p in (out / "samples").iterdir()) == [
        "step_000000.png", "step_000002.png"
    ]  # fmt: skip
    adapted = stylegan2.load_generator(str(out / "adapted.pt"))
    assert (adapted.family, adapted.resolution, adapted.num_ws, adapted.w_dim) == (
        "stylegan2", 64, 10, 128
    )  # fmt: skip
    meta = torch.load(out / "adapted.pt", weights_only=True)["metadata"]
    assert meta["base"]["format"] == "nvidia-pytorch" and meta["base"]["network"] == "G_ema"
    assert meta["base"]["channels"] == [64, 64, 64, 64, 32] and meta["base"]["conv_clamp"] == 256
    assert set(meta["scores"]["2"]) >= {"direction", "target", "content", "diversity"}
    ws = adapted.to_wplus(torch.randn(2, adapted.z_dim, generator=torch.Generator().manual_seed(0)))
    assert adapted.render_wplus(ws).shape == (2, 3, 64, 64)


def test_adapt_an_nvidia_stylegan3_pickle(tmp_path, capsys):
    """NVIDIA's own StyleGAN3 file (config T, 64 px, 16 W+ entries) as the base: the run
    trains, samples, scores, and writes a StyleGAN3 checkpoint that loads back through the
    one contract and renders."""
    from pathlib import Path

    pkl = Path(__file__).resolve().parents[1] / "data" / "nvidia" / "sg3_t_64.pkl"
    out = tmp_path / "run"
    argv = ["adapt", "--generator", str(pkl), "--source", "photo", "--target", "sketch",
            "--clip-models", "nada-tiny:random", "--steps", "2", "--sample-every", "2",
            "--layers", "3", "--probe-batch", "2", "--batch-size", "2",
            "--score-latents", "4", "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert sorted(p.name for p in (out / "samples").iterdir()) == [
        "step_000000.png", "step_000002.png"
    ]  # fmt: skip
    adapted = stylegan2.load_generator(str(out / "adapted.pt"))
    assert (adapted.family, adapted.resolution, adapted.num_ws, adapted.w_dim) == (
        "stylegan3", 64, 16, 64
    )  # fmt: skip
    meta = adapted.metadata
    assert meta["base"]["family"] == "stylegan3" and meta["base"]["network"] == "G_ema"
    assert all(len(layers) == 3 for layers in meta["selected_layers"].values())
    assert set(meta["scores"]["2"]) >= {"direction", "target", "content", "diversity"}
    ws = adapted.to_wplus(torch.randn(2, adapted.z_dim, generator=torch.Generator().manual_seed(0)))
    assert adapted.render_wplus(ws).shape == (2, 3, 64, 64)
