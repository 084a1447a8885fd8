"""The form's "Show it" (issue 12) against the real service (`nada serve`): two images dropped
into the target's drop zone are uploaded at once and shown as thumbnails; one is removed
and picked again; the job is submitted with no target text at all; its parameters hold the
two image ids and its view shows them next to the prompts. Headless Debian Chromium.

The job is canceled right away: an image-guided job trains through a real worker in
tests/backend/test_e2e_jobs.py (the killed-worker test).
"""

from __future__ import annotations

import base64
import io
import json
import re
import urllib.request

import pytest
from PIL import Image

from .test_page_service import api_get, open_form, shot  # type: ignore[import-not-found]

pytestmark = pytest.mark.browser


def _png(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 40), color).save(buffer, format="PNG")
    return buffer.getvalue()


IMAGES = [("red.png", _png((220, 30, 30))), ("blue.png", _png((30, 30, 220)))]

DROP = """([zone, files]) => {
  const dt = new DataTransfer();
  for (const [name, b64] of files) {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    dt.items.add(new File([bytes], name, { type: "image/png" }));
  }
  for (const type of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
  }
}"""


def _cancel(service, job_id: str) -> None:
    request = urllib.request.Request(service.api(f"jobs/{job_id}/cancel"), method="POST")
    with urllib.request.urlopen(request, timeout=10) as res:
        json.load(res)


def test_drop_two_images_and_submit_without_text(page, service, tmp_path):
    open_form(page, service)
    field = page.locator("form.job-form [data-field=target_images]")
    thumbs = field.locator(".example-thumb")
    zone = field.locator("[data-role=drop-zone]")
    payload = [[name, base64.b64encode(data).decode()] for name, data in IMAGES]
    page.evaluate(DROP, [zone.element_handle(), payload])
    thumbs.nth(1).wait_for()
    assert thumbs.count() == 2
    ids = [thumbs.nth(i).get_attribute("data-image") for i in range(2)]
    assert all(re.fullmatch(r"[0-9a-f]{64}", i or "") for i in ids), ids
    page.wait_for_function(
        "[...document.querySelectorAll('[data-field=target_images] img')]"
        ".every((img) => img.complete && img.naturalWidth === 48)"
    )

    # Remove the first, then pick it again with the file picker.
    page.get_by_role("button", name="Remove target image 1").click()
    assert thumbs.count() == 1 and thumbs.first.get_attribute("data-image") == ids[1]
    red = tmp_path / IMAGES[0][0]
    red.write_bytes(IMAGES[0][1])
    field.locator("input[type=file]").set_input_files(str(red))
    thumbs.nth(1).wait_for()
    chosen = [thumbs.nth(i).get_attribute("data-image") for i in range(2)]
    assert chosen == [ids[1], ids[0]]

    # The weight slider is for text *and* images; without text it stays out of the way.
    weight = page.locator("form.job-form [data-field=image_weight]")
    assert not weight.is_visible()
    page.get_by_label("Target text").fill("sketch")
    assert weight.is_visible()
    shot(page, "form-images", full_page=True)
    page.get_by_label("Target text").fill("")
    assert not weight.is_visible()

    page.get_by_label("Base generator").select_option("random-32")
    page.get_by_label("Training steps").fill("2")
    page.get_by_label("CLIP model 1 name").fill("nada-tiny:random")
    page.get_by_label("Remove CLIP model 2").click()
    page.get_by_role("button", name="Start adaptation").click()
    page.wait_for_url(re.compile(r"#/jobs/[^/]+$"))
    job_id = page.url.rsplit("/", 1)[-1]
    try:
        params = api_get(service, f"jobs/{job_id}")["params"]
        assert params["target_images"] == chosen and params["target_text"] == ""
        shown = page.locator(".job-examples [data-side=target] .example-thumb")
        shown.nth(1).wait_for()
        assert [shown.nth(i).get_attribute("data-image") for i in range(2)] == chosen
        page.wait_for_function(
            "[...document.querySelectorAll('.job-examples img')]"
            ".every((img) => img.complete && img.naturalWidth === 48)"
        )
        assert "2 example images" in page.locator("h1.job-heading").inner_text()
        shot(page, "job-images")
    finally:
        _cancel(service, job_id)
