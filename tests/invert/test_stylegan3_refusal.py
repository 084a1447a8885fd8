"""Photo inversion and edits stay StyleGAN2-only: a StyleGAN3 base (NVIDIA's config T
fixture) is refused on field 'generator' before any encoding or rendering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from invert.pipeline import run_edit, run_inversion
from nada.errors import ParamError
from nada.photo_params import EditParams, InvertParams

SG3_T = Path(__file__).resolve().parents[1] / "data" / "nvidia" / "sg3_t_64.pkl"
MESSAGE = "photo inversion \\(e4e\\) works on StyleGAN2 generators only"


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    PIL.Image.fromarray(pixels).save(path)
    return path


def test_inverting_into_a_stylegan3_is_refused(tmp_path, photo):
    params = InvertParams(generator=str(SG3_T), encoder="none", align=False, refine_steps=1)
    with pytest.raises(ParamError, match=MESSAGE) as info:
        run_inversion(params, tmp_path / "run", photo_path=photo, device="cpu")
    assert info.value.field == "generator"


def test_editing_through_a_stylegan3_is_refused(tmp_path, photo):
    code = run_inversion(
        InvertParams(generator="random-16", encoder="none", align=False, refine_steps=0),
        tmp_path / "inversion", photo_path=photo, device="cpu",
    )  # fmt: skip
    params = EditParams(inversion_id="a" * 32, job_id="b" * 32)
    with pytest.raises(ParamError, match=MESSAGE) as info:
        run_edit(params, tmp_path / "edit", latent_path=code.latent, checkpoint_path=SG3_T,
                 device="cpu")  # fmt: skip
    assert info.value.field == "generator"
    assert not (tmp_path / "edit" / "edit.png").exists()
