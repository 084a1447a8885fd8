// "Edit the photo": a slider per latent edit direction (age, smile, pose, …: GET
// /directions) of this job's base generator, under the photo's result. Applying asks for an
// edit with `edits` ("age=2,smile=-1"), drawn into the "Adapted" picture: the photo's code
// moved along each direction before this job's generator draws it. Directions of another
// base, or not on this server, are not offered (the service refuses them anyway).

import { api, listOf } from "../api.js";
import { h, setText, uid } from "../dom.js";

const STEP = 0.5;

/** "age=2,smile=-1" from {name: strength}, leaving out zeros (no edit). */
export function editsText(values) {
  return Object.entries(values).filter(([, v]) => v !== 0).map(([k, v]) => `${k}=${v}`).join(",");
}

/**
 * onApply(edits): asks for the edit (photo.js). Returns {element, setGenerator(name),
 * setReady(bool), setBusy(bool), reset()}.
 */
export function photoEdits({ onApply }) {
  const sliders = h("div", { class: "photo-edit-sliders" });
  const applyButton = h("button", { type: "button", class: "button button-small" }, "Apply edits");
  const resetButton = h("button", { type: "button", class: "button button-small button-quiet" }, "Reset");
  const summary = h("span", { class: "muted small", "data-role": "edits-summary" });
  const element = h("fieldset", { class: "photo-edits", hidden: true, "aria-label": "Edit the photo" },
    h("legend", {}, "Edit the photo"),
    h("p", { class: "muted small" }, "Move the photo's code along a direction before this job's generator draws it."),
    sliders, h("div", { class: "photo-edits-foot" }, applyButton, resetButton, summary));
  const inputs = new Map(); // name -> {input, output}
  let generator = null;
  let ready = false;
  let busy = false;

  function values() {
    return Object.fromEntries([...inputs].map(([name, { input }]) => [name, Number(input.value)]));
  }

  function refresh() {
    const text = editsText(values());
    setText(summary, text ? `Edits: ${text}` : "No edits: the photo as inverted.");
    applyButton.disabled = busy || !ready;
    resetButton.disabled = busy || !text;
  }

  function slider(direction, max) {
    const id = uid(`edit-${direction.name}`);
    const input = h("input", { type: "range", id, name: direction.name, min: String(-max), max: String(max), step: String(STEP), value: "0" });
    const output = h("output", { for: id, class: "small" }, "0");
    input.addEventListener("input", () => { setText(output, input.value); refresh(); });
    const hint = direction.suggested && direction.suggested.length ? ` (its authors use ${direction.suggested.join(", ")})` : "";
    const row = h("div", { class: "photo-edit", "data-direction": direction.name },
      h("label", { for: id, title: `${direction.description}${hint}` }, direction.name.replace(/_/g, " ")), input, output);
    inputs.set(direction.name, { input, output });
    return row;
  }

  function setGenerator(name) {
    if (name === generator) return;
    generator = name;
    const asked = name;
    api.directions().then((body) => {
      if (asked !== generator) return;
      const usable = listOf(body).filter((d) => d.base === asked && d.availability !== "manual");
      inputs.clear();
      sliders.replaceChildren(...usable.map((d) => slider(d, Math.min(body.max_strength || 5, 5))));
      element.hidden = !usable.length || !ready;
      refresh();
    }, () => { element.hidden = true; });
  }

  function setReady(value) {
    ready = value;
    element.hidden = !ready || !inputs.size;
    refresh();
  }

  function setBusy(value) {
    busy = value;
    for (const { input } of inputs.values()) input.disabled = value;
    refresh();
  }

  function reset() {
    for (const { input, output } of inputs.values()) { input.value = "0"; setText(output, "0"); }
    refresh();
  }

  applyButton.addEventListener("click", () => { if (!busy && ready) onApply(editsText(values())); });
  resetButton.addEventListener("click", () => { reset(); if (ready && !busy) onApply(""); });
  refresh();
  return { element, setGenerator, setReady, setBusy, reset };
}
