// A continued job's family: "Continued from <parent>" and "Continued as <child>, <child>"
// (POST /jobs/{id}/continue), so that a chain of continuations can be walked either way.
// Hidden for a job that is neither.

import { fill, h } from "../dom.js";
import { shortId } from "../format.js";

function jobLink(id) {
  return h("a", { href: `#/jobs/${encodeURIComponent(id)}`, class: "mono" }, shortId(id));
}

/** Returns {element, update(job)}. */
export function lineageLine() {
  const from = h("span", { "data-role": "continued-from", hidden: true });
  const as = h("span", { "data-role": "continued-as", hidden: true });
  const element = h("p", { class: "lineage small muted", hidden: true }, from, " ", as);

  function update(job) {
    const parent = typeof job.parent_id === "string" ? job.parent_id : null;
    const children = Array.isArray(job.children) ? job.children.filter((c) => typeof c === "string") : [];
    from.hidden = !parent;
    if (parent) fill(from, "Continued from ", jobLink(parent), ".");
    as.hidden = children.length === 0;
    if (children.length) {
      const links = children.flatMap((c, i) => (i ? [", ", jobLink(c)] : [jobLink(c)]));
      fill(as, "Continued as ", links, ".");
    }
    element.hidden = !parent && children.length === 0;
  }

  return { element, update };
}
