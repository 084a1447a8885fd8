import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The engine tests run tiny models. On shared CI cores, OpenMP hand-offs between threads
    cost more than the work (a 2-thread tiny-CLIP forward measured 300x slower than a 1-thread
    one under load); the results are the same either way."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
