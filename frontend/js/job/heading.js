// The job view's heading: a link back to the list, "source → target" and the status pill.
// It also keeps the tab title current ("face → Shrek · 40% — StyleGAN-NADA").

import { fill, h, setText } from "../dom.js";
import { STATUS_LABEL, fractionDone, promptText } from "../format.js";
import { statusPill } from "../jobs.js";
import { lineageLine } from "./lineage.js";
import { readyMade, readyMadeText } from "../domains.js";

/** Returns {element, update(job), fail(text), focus()}. */
export function jobHeading() {
  const title = h("h1", { class: "job-heading", tabindex: "-1" }, "Loading job…");
  const pillSlot = h("span", { class: "pill-slot" });
  const lineage = lineageLine();
  const sweepLink = h("a", { class: "small sweep-link", hidden: true }, "Part of a sweep: compare its runs →");
  const element = h("div", { class: "job-top" },
    h("a", { href: "#/jobs", class: "back small" }, "← All jobs"),
    h("div", { class: "title-row" }, title, pillSlot), sweepLink, lineage.element);

  function update(job) {
    const { source, target } = readyMade(job) ? readyMadeText(job) : promptText(job);
    fill(title, h("span", { class: "prompt" }, source), h("span", { class: "arrow", "aria-hidden": "true" }, " → "),
      h("span", { class: "visually-hidden" }, " to "), h("span", { class: "prompt prompt-target" }, target));
    fill(pillSlot, statusPill(job.status));
    lineage.update(job);
    sweepLink.hidden = !job.sweep_id;
    if (job.sweep_id) sweepLink.href = `#/sweeps/${encodeURIComponent(job.sweep_id)}`;
    const pct = Math.round(fractionDone(job) * 100);
    document.title = `${source} → ${target} · ${job.status === "running" ? `${pct}%` : STATUS_LABEL[job.status] || job.status} — StyleGAN-NADA`;
  }

  return {
    element,
    update,
    fail: (text) => setText(title, text),
    focus: () => title.focus({ preventScroll: true }),
  };
}
