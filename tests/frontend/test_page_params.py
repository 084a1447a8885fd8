"""The page's third of "one declaration drives CLI + API + page": every parameter that
nada/params.py declares, apart from the prompts and the generator (which have controls of
their own above *Advanced*), is in the form under its declared label, with its declared
help in its hint, its range as the input's min/max, its choices as the options, in the
section of its group. The page reads all of it from GET /api/v1/params: from the stub
(which serves nada.params.schema()) and from the real `nada serve`."""

from __future__ import annotations

import pytest
from stub_api import StubApi

from nada import params as P

pytestmark = pytest.mark.browser

ORIGIN = "http://nada.test"
BASIC = ("source_text", "target_text", "generator")
# Beside the prompts, not in a group's section: "Show it" (frontend/js/examples-field.js).
BESIDE_PROMPTS = ("target_images", "source_images", "image_weight")
GROUP_TITLES = {g["name"]: g["title"] for g in P.schema()["groups"]}

# What the page shows for one labelled control: its description (aria-describedby: the
# hint, then the error slot) and the hint's range chip, the field it belongs to, its
# section, its bounds, its options.
SEEN = """(el) => {
  const ids = (el.getAttribute('aria-describedby') || '').split(/\\s+/).filter(Boolean);
  const described = ids.map((id) => document.getElementById(id)).filter(Boolean);
  const chip = described.map((d) => d.querySelector('.hint-range')).find(Boolean);
  const field = el.closest('[data-field]');
  const group = el.closest('fieldset.group');
  return {
    description: described.map((d) => d.textContent).join(' '),
    chip: chip ? chip.textContent : '',
    field: field && field.dataset.field,
    group: group && group.querySelector('legend').textContent,
    min: el.getAttribute('min'),
    max: el.getAttribute('max'),
    options: el.tagName === 'SELECT' ? [...el.options].map((o) => o.value) : null,
  };
}"""


def _bounds(seen: dict) -> tuple[float | None, float | None]:
    return tuple(None if seen[k] is None else float(seen[k]) for k in ("min", "max"))


def _open_form(page, request, where: str) -> None:
    if where == "stub":
        page.route(f"{ORIGIN}/**", StubApi([]).handle)
        page.goto(f"{ORIGIN}/")
    else:
        page.goto(request.getfixturevalue("service").url)
    page.locator("form.job-form").wait_for()
    page.locator("details.advanced summary").click()


@pytest.mark.parametrize("where", ["stub", "service"])
def test_every_declared_field_is_in_the_form_as_declared(page, request, where):
    _open_form(page, request, where)
    form = page.locator("form.job-form")
    fields = [f for f in P.describe() if f["name"] not in BASIC]
    assert len(fields) == len(P.FIELD_NAMES) - len(BASIC)
    for f in fields:
        name = f["name"]
        control = form.get_by_label(f["label"], exact=True)
        assert control.count() == 1, f"{name}: {control.count()} controls labelled {f['label']!r}"
        seen = control.evaluate(SEEN)
        assert seen["field"] == name, f"the control labelled {f['label']!r} belongs to {seen}"
        assert f["help"] in seen["description"], f"{name}: hint {seen['description']!r}"
        if f["unit"]:
            assert f" {f['unit']}" in seen["chip"], f"{name}: no unit in {seen['chip']!r}"
        if f["type"] in ("integer", "number", "boolean", "string"):
            assert "default " in seen["chip"], f"{name}: no default in {seen['chip']!r}"
        if name in BESIDE_PROMPTS:
            assert seen["group"] is None and f["group"] == "prompt", f"{name} is under {seen}"
        else:
            assert seen["group"] == GROUP_TITLES[f["group"]], f"{name} is under {seen['group']!r}"
        if f["type"] in ("integer", "number"):
            assert _bounds(seen) == (f.get("min"), f.get("max")), f"{name}: {_bounds(seen)}"
        if "choices" in f:
            assert seen["options"] == f["choices"], name
        if f["type"] == "clip_models":
            weights = form.locator(f"[data-field={name}] input.clip-weight")
            assert weights.count() == len(f["default"])
            for i in range(weights.count()):
                bounds = _bounds(weights.nth(i).evaluate(SEEN))
                assert bounds == (f["weight"]["min"], f["weight"]["max"]), f"{name}: {bounds}"
