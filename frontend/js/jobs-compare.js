// The jobs list's way into a comparison: a checkbox on each adaptation job, a "Compare
// selected (n)" button that opens #/compare?jobs=..., and, on a job a sweep made, a link to
// that sweep's comparison. The selection outlives a row's rebuild (the list redraws a row
// whenever its job changes).

import { h, setText } from "./dom.js";
import { promptText } from "./format.js";

/** Returns {button, decorate(li, job)}. */
export function compareSelection() {
  const selected = new Set();
  const button = h("button", { type: "button", class: "button button-small compare-selected", disabled: true }, "Compare selected (0)");
  button.addEventListener("click", () => {
    location.hash = `#/compare?jobs=${[...selected].map(encodeURIComponent).join(",")}`;
  });

  function changed() {
    setText(button, `Compare selected (${selected.size})`);
    button.disabled = selected.size < 2;
  }

  /** Adds the row's checkbox (adapt jobs only) in front of its link. */
  function decorate(li, job) {
    if ((job.kind || "adapt") !== "adapt") return li;
    const { source, target } = promptText(job);
    const box = h("input", {
      type: "checkbox", class: "select-box", checked: selected.has(job.id),
      "aria-label": `Select ${source} to ${target} (${job.id}) for comparison`,
    });
    box.addEventListener("change", () => {
      if (box.checked) selected.add(job.id);
      else selected.delete(job.id);
      changed();
    });
    li.classList.add("selectable");
    li.prepend(box);
    return li;
  }

  return { button, decorate };
}

/** A job a sweep made gets a link to that sweep's comparison, beside (not inside) its row link. */
export function withSweepLink(li, job) {
  if (!job.sweep_id) return li;
  li.append(h("a", { class: "sweep-link small", href: `#/sweeps/${encodeURIComponent(job.sweep_id)}` }, "Part of a sweep: compare →"));
  return li;
}
