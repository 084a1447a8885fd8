"""A small HTTP client of the service's REST API, for commands that drive a running service
(`nada sweep --server URL`). Standard library only: the CLI needs no HTTP package for it.

Refusals come back as CLIError with the service's own `detail`, so a 4xx from the service
reads like a refusal of the flag that caused it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nada.errors import CLIError
from nada.params import flag_of

if TYPE_CHECKING:
    from invert.example_images import ExampleImage

_TIMEOUT_S = 60


def multipart_images(images: Sequence[ExampleImage]) -> tuple[bytes, str]:
    """A multipart/form-data body with one `file` part per image (POST /images), and its
    boundary."""
    boundary = f"nada-{uuid.uuid4().hex}"
    parts = []
    for image in images:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{image.sha256}.png"\r\nContent-Type: image/png\r\n\r\n'
        )
        parts.append(head.encode() + image.png + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), boundary


class ServiceClient:
    """The service at `server` (its root URL, as `--server` gives it), as `token` sees it."""

    def __init__(self, server: str, token: str | None) -> None:
        self.root = server.rstrip("/") + "/api/v1"
        self.token = token

    def url(self, path: str) -> str:
        return f"{self.root}{path}"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        images: Sequence[ExampleImage] = (),
        what: str = "the sweep",
    ) -> Any:
        """`body` as JSON, or `images` as a multipart upload; the JSON answer, or CLIError
        naming `what` was refused and why."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        data = None if body is None else json.dumps(body).encode()
        if images:
            data, boundary = multipart_images(images)
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = self.url(path)
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("detail")
            except ValueError:
                detail = exc.reason
            if isinstance(detail, list) and detail and isinstance(detail[0], dict):
                detail = detail[0].get("msg", detail)
            raise CLIError(f"the service refused {what} ({exc.code}): {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise CLIError(f"argument --server: cannot reach {url} ({exc})") from None

    def upload_examples(
        self, examples: Mapping[str, Sequence[ExampleImage]]
    ) -> dict[str, list[str]]:
        """POST each field's example images to /images; the ids the service stored them
        under (the sha256 of its own normal form, which is ours: the same code made both)."""
        ids = {}
        for name, images in examples.items():
            if images:
                stored = self.request(
                    "POST", "/images", images=images, what=f"the images of {flag_of(name)}"
                )
                ids[name] = [item["id"] for item in stored["data"]]
        return ids
