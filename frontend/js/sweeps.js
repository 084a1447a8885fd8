// The sweeps list (#/sweeps): each sweep's prompts, what it varies, how many of its jobs
// stand where, linking to its comparison. Polls while a sweep is still running.

import { api, listOf } from "./api.js";
import { fill, h, setText } from "./dom.js";
import { STATUS_LABEL, ago, fullTime, shortId } from "./format.js";
import { every } from "./live.js";

function sweepRow(sweep) {
  const base = sweep.base || {};
  const first = (sweep.jobs || [])[0];
  const p = (first && first.params) || base;
  const counts = Object.entries(sweep.status || {}).map(([s, n]) => `${n} ${(STATUS_LABEL[s] || s).toLowerCase()}`).join(", ");
  const varying = (sweep.varying || []).map((name) => `${name} × ${(sweep.grid[name] || []).length}`).join(", ");
  return h("li", { class: "job-row sweep-row", "data-sweep-id": sweep.id, "data-done": String(Boolean(sweep.done)) },
    h("a", { class: "job-link", href: `#/sweeps/${encodeURIComponent(sweep.id)}` },
      h("span", { class: "job-title" },
        h("span", { class: "prompt" }, p.source_text || ""), h("span", { class: "arrow", "aria-hidden": "true" }, " → "),
        h("span", { class: "visually-hidden" }, " to "), h("span", { class: "prompt prompt-target" }, p.target_text || "")),
      h("span", { class: ["pill", sweep.done ? "pill-succeeded" : "pill-running"] }, sweep.done ? "Finished" : "Active"),
      h("span", { class: "job-foot" },
        h("span", { class: "job-where" }, `${sweep.count} jobs${varying ? ` · varies ${varying}` : ""} · ${counts}`),
        h("span", { class: "job-meta muted" }, `${shortId(sweep.id)} · `,
          h("time", { datetime: sweep.created_at || "", title: fullTime(sweep.created_at) }, ago(sweep.created_at))))));
}

/** Returns {element, stop()}. */
export function sweepsList() {
  const list = h("ul", { class: "job-list" });
  const empty = h("p", { class: "empty muted", hidden: true }, "No sweeps yet. To start one, open ", h("a", { href: "#/" }, "New job"), " and choose the parameters to vary under Advanced → “Sweep”.");
  const errorNote = h("p", { class: "inline-error", role: "status", hidden: true });
  const count = h("span", { class: "count muted" });
  const element = h("section", { class: "panel jobs-panel", "aria-labelledby": "sweeps-heading" },
    h("div", { class: "panel-head" }, h("h1", { id: "sweeps-heading", class: "jobs-heading" }, "Sweeps"), count),
    errorNote, list, empty);
  let shown = "";

  const stop = every(3000, async () => {
    try {
      const data = await api.listSweeps({ limit: 50 });
      errorNote.hidden = true;
      const sweeps = listOf(data);
      const key = JSON.stringify(sweeps.map((s) => [s.id, s.status, s.done, ago(s.created_at)]));
      if (key !== shown) {
        shown = key;
        fill(list, sweeps.map(sweepRow));
      }
      empty.hidden = sweeps.length > 0;
      setText(count, data && data.count ? `${data.count} sweep${data.count === 1 ? "" : "s"}` : "");
      return sweeps.some((s) => !s.done) ? 3000 : 15000;
    } catch (err) {
      errorNote.hidden = false;
      setText(errorNote, `Could not load the sweeps: ${err.message}`);
      return 10000;
    }
  });
  return { element, stop };
}
