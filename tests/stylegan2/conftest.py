import contextlib
import functools
import http.server
import pathlib
import threading
from collections.abc import Iterator

import pytest
import torch

REFERENCE = pathlib.Path(__file__).resolve().parents[1] / "data" / "reference"
"""The reference fixtures (tests/data/reference/README.md says what and from where)."""


@pytest.fixture(scope="session")
def reference_dir() -> pathlib.Path:
    return REFERENCE


@pytest.fixture(scope="session")
def reference_64(reference_dir):
    return torch.load(reference_dir / "stylegan2_reference_64.pt", weights_only=True)


def rebuild_reference_weights(ref: dict) -> dict[str, torch.Tensor]:
    """The recipe in tests/data/reference/README.md: one seeded generator walked in key order."""
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


@contextlib.contextmanager
def serve_directory(
    root: pathlib.Path, handler: type = http.server.SimpleHTTPRequestHandler
) -> Iterator[str]:
    """Serve `root` over HTTP on 127.0.0.1 (a free port) while the block runs; yields the base URL."""
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
    )
    threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def file_server(tmp_path: pathlib.Path) -> Iterator[tuple[str, pathlib.Path]]:
    """(base URL, directory) of a plain file server over tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    with serve_directory(root, QuietHandler) as url:
        yield url, root
