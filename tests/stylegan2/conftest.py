import pathlib

import pytest
import torch

SHARED = pathlib.Path(__file__).resolve().parents[3] / "shared" / "reference"


def _shared_reference() -> pathlib.Path:
    for candidate in (SHARED, pathlib.Path(__file__).resolve().parents[2] / "shared" / "reference"):
        if candidate.is_dir():
            return candidate
    pytest.skip("../shared/reference is not beside the checkout")


@pytest.fixture(scope="session")
def reference_dir() -> pathlib.Path:
    return _shared_reference()


@pytest.fixture(scope="session")
def reference_64(reference_dir):
    return torch.load(reference_dir / "stylegan2_reference_64.pt", weights_only=True)


def rebuild_reference_weights(ref: dict) -> dict[str, torch.Tensor]:
    """The recipe in shared/reference/README.md: one seeded generator walked in key order."""
    g = torch.Generator().manual_seed(ref["seed"])
    state = {}
    for key, shape in ref["keys_shapes"]:
        if key in ref["buffers"]:
            state[key] = ref["buffers"][key]
            continue
        t = torch.randn(tuple(shape), generator=g)
        if key.endswith(".bias") or key.endswith("noise.weight"):
            t = t * 0.2
            if key.endswith("modulation.bias"):
                t = t + 1.0
        if key.startswith("style."):
            t = t * 100.0
        state[key] = t
    return state
