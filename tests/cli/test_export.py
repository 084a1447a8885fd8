"""`nada export` through the real dispatcher: NVIDIA's fixture generator and an adapted-like
rosinality checkpoint out as TensorFlow pickles that read back to the same generator; bad
arguments named. The file format itself: tests/stylegan2/test_tf_export.py."""

from __future__ import annotations

from pathlib import Path

import torch

from stylegan2 import load_generator, save_generator
from stylegan2.nvidia_pickle import read_nvidia_pickle
from tests.cli.test_models import run

DATA = Path(__file__).resolve().parents[1] / "data" / "nvidia"


def test_a_checkpoint_exports_and_reads_back(capsys, tmp_path: Path) -> None:
    source = load_generator("random-16", seed=3, style_dim=32, n_mlp=2)
    checkpoint = tmp_path / "adapted.pt"
    save_generator(checkpoint, source.generator, source.latent_avg, {"kind": "test"})
    out = tmp_path / "adapted-nvidia.pkl"
    code, stdout, _ = run(capsys, "export", str(checkpoint), "--out", str(out))
    assert code == 0 and "legacy.load_network_pkl" in stdout
    assert sorted(read_nvidia_pickle(out).networks) == ["D", "G", "Gs"]
    back = load_generator(out)
    z = torch.randn(2, 32)
    with torch.no_grad():
        want = source.render_wplus(source.to_wplus(z, truncation=0.7))
        got = back.render_wplus(back.to_wplus(z, truncation=0.7))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_refusals_name_the_argument(capsys, tmp_path: Path) -> None:
    out = tmp_path / "x.pkl"
    code, _, err = run(capsys, "export", str(DATA / "sg3_t_64.pkl"), "--out", str(out))
    assert code == 2 and "StyleGAN3" in err and not out.exists()
    code, _, err = run(capsys, "export", str(tmp_path / "none.pt"), "--out", str(out))
    assert code == 2 and "argument checkpoint" in err
    code, _, err = run(
        capsys, "export", str(DATA / "ada_sg2_64.pkl"), "--out", str(tmp_path / "x.pt")
    )
    assert code == 2 and "argument --out" in err and ".pkl" in err
    out.write_bytes(b"keep")
    code, _, err = run(capsys, "export", str(DATA / "ada_sg2_64.pkl"), "--out", str(out))
    assert code == 2 and "--force" in err and out.read_bytes() == b"keep"
    code, _, _ = run(capsys, "export", str(DATA / "ada_sg2_64.pkl"), "--out", str(out), "--force")
    assert code == 0 and read_nvidia_pickle(out).framework == "tensorflow"


def test_a_domain_exports_onto_its_base_as_a_full_generator(capsys, tmp_path: Path) -> None:
    """A domain.pt (stylegan2/domain_file.py) out as a rosinality-layout .pt that loads
    strictly and draws what the domain on its base draws; refused on another base."""
    from stylegan2.domain_file import Domain, load_onto, read_domain, save_domain
    from stylegan2.domain_modulation import modulated_layers

    base = load_generator("random-16", seed=2, style_dim=32, n_mlp=2)
    widths = modulated_layers(base.generator)
    torch.manual_seed(0)
    vectors = {name: 1 + 0.2 * torch.randn(c) for name, c in widths.items()}
    domain = tmp_path / "domain.pt"
    saved = tmp_path / "base.pt"  # a file base: the domain records its path and sha256
    save_generator(saved, base.generator, base.latent_avg, {})
    base = load_generator(str(saved))
    save_domain(domain, Domain(vectors=vectors, base=base.identity, metadata={"kind": "test"}))

    full = tmp_path / "full.pt"
    code, stdout, err = run(capsys, "export", str(domain), "--out", str(full))
    assert code == 0, err
    assert "rosinality" in stdout
    back = load_generator(str(full))  # strict: every key and shape of the layout
    assert back.generator.state_dict().keys() == base.generator.state_dict().keys()
    want = load_onto(read_domain(domain), base)
    ws = base.to_wplus(torch.randn(2, 32), truncation=0.7)
    with torch.no_grad():
        torch.testing.assert_close(back.render_wplus(ws), want.render_wplus(ws), atol=1e-5, rtol=0)
    pkl = tmp_path / "full.pkl"  # NVIDIA's layout too
    assert run(capsys, "export", str(domain), "--out", str(pkl), "--base", str(saved))[0] == 0
    assert sorted(read_nvidia_pickle(pkl).networks) == ["D", "G", "Gs"]

    other = tmp_path / "other.pt"
    code, _, err = run(capsys, "export", str(domain), "--out", str(other), "--base", "random-16")
    assert code == 2 and "trained on generator" in err and not other.exists()
    code, _, err = run(capsys, "export", str(saved), "--out", str(other))
    assert code == 2 and "argument --out" in err
    code, _, err = run(capsys, "export", str(saved), "--out", str(pkl), "--force", "--base", "x")
    assert code == 2 and "argument --base" in err
