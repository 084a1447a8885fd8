// The checkpoints card: links to the intermediate (resumable) checkpoints a job wrote
// every checkpoint_every steps. Hidden while there are none.

import { serviceHref } from "../api.js";
import { fill, h } from "../dom.js";
import { shortId } from "../format.js";

/** Returns {element, update(job)}. */
export function checkpointsCard() {
  const list = h("ul", { class: "checkpoints" });
  const element = h("section", { class: "panel", "aria-labelledby": "ckpt-heading", hidden: true },
    h("h2", { id: "ckpt-heading" }, "Checkpoints"), list);

  function update(job) {
    const checkpoints = (job.checkpoints || []).filter((c) => c && c.url);
    element.hidden = checkpoints.length === 0;
    fill(list, checkpoints.map((c) => h("li", {},
      h("a", { href: serviceHref(c.url), download: `nada-${shortId(job.id)}-step${c.step}.pt`, "data-role": "intermediate-checkpoint" }, `Step ${c.step}`),
      h("span", { class: "muted small" }, " .pt"))));
  }

  return { element, update };
}
