import pytest
import torch

from nada.params import AdaptParams, ClipSpec


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The engine tests run tiny models. On shared CI cores, OpenMP hand-offs between threads
    cost more than the work (a 2-thread tiny-CLIP forward measured 300x slower than a 1-thread
    one under load); the results are the same either way."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY_CLIP = (ClipSpec("nada-tiny:random", 1.0),)


def tiny_params(**changes: object) -> AdaptParams:
    """The worker tests' adaptation: 4 steps of random-8 under the random-weight tiny CLIP,
    one layer, samples every 2 steps. A test names only what it changes."""
    base: dict[str, object] = dict(
        source_text="photo",
        target_text="sketch",
        generator="random-8",
        clip_models=TINY_CLIP,
        steps=4,
        layers=1,
        batch_size=2,
        probe_batch=2,
        sample_every=2,
        n_samples=2,
        seed=3,
    )
    base.update(changes)
    return AdaptParams(**base)  # type: ignore[arg-type]
