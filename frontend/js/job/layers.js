// The layers card: which generator layers the last training step trained (the k chosen by
// the layer selection), as chips.

import { fill, h } from "../dom.js";
import { FINISHED } from "../format.js";

function layerName(l) {
  return typeof l === "string" ? l : (l && (l.name || l.layer)) || JSON.stringify(l);
}

/** Returns {element, update(job)}. */
export function layersCard() {
  const slot = h("div", { class: "layers" });
  const element = h("section", { class: "panel", "aria-labelledby": "layers-heading" },
    h("h2", { id: "layers-heading" }, "Selected layers"), slot);

  function update(job) {
    const layers = job.selected_layers || [];
    if (!layers.length) {
      fill(slot, h("p", { class: "muted" }, job.status === "queued" ? "Chosen once training starts."
        : FINISHED.has(job.status) ? "None were selected." : "None reported yet."));
      return;
    }
    const k = job.params && job.params.layers;
    fill(slot,
      h("p", { class: "muted small" }, `${layers.length} layer${layers.length === 1 ? "" : "s"} trained in the last step${k === 0 ? " (k = 0: every candidate)" : ""}.`),
      h("ul", { class: "chips" }, layers.map((l) => h("li", { class: "chip chip-static" }, layerName(l)))));
  }

  return { element, update };
}
