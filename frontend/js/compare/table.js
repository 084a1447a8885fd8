// The comparison's numbers: the parameters that differ, the status, and the five scores
// per job, at the shared step when the job measured there, else its final ones (marked),
// and its recommended step (snapshot_every; the rule is in docs/api.md) as a button that
// moves the shared slider there.
// A column header is a button: it sorts this table and the grid together.

import { h } from "../dom.js";
import { statusPill } from "../jobs.js";
import { SCORES } from "../job/scores.js";
import { jobLabel, paramText, scoresAt } from "./model.js";

const ARROW = { ascending: " ▲", descending: " ▼", none: "" };

/**
 * Returns {element, update({jobs, differing, step, sort})}; onSort(key) on a header click,
 * onStep(step) on a recommended step's button.
 */
export function compareTable({ onSort, onStep }) {
  const table = h("table", { class: "compare-table" });
  const element = h("div", { class: "table-scroll" }, table);

  function update({ jobs, differing, step, sort }) {
    const focused = document.activeElement && table.contains(document.activeElement) ? document.activeElement.dataset.sortKey : null;
    const columns = [
      ...differing.map((name) => ({ key: `param:${name}`, text: name, title: `sort by ${name}` })),
      ...SCORES.map(({ name, hint }) => ({ key: `score:${name}`, text: name, title: hint })),
    ];
    const th = ({ key, text, title }) => {
      const state = sort.key === key ? sort.direction : "none";
      return h("th", { scope: "col", "aria-sort": state, "data-key": key, class: key.startsWith("score:") && "num" },
        h("button", { type: "button", class: "sort-button", "data-sort-key": key, title, onclick: () => onSort(key) }, text, h("span", { "aria-hidden": "true" }, ARROW[state])));
    };
    const head = h("tr", {},
      h("th", { scope: "col" }, "Job"),
      columns.filter((c) => c.key.startsWith("param:")).map(th),
      h("th", { scope: "col" }, "Status"),
      h("th", { scope: "col", class: "num", title: "the best direction among the job's snapshots that keep content and diversity (docs/api.md)" }, "Recommended step"),
      columns.filter((c) => c.key.startsWith("score:")).map(th));
    const body = jobs.map((job) => {
      const scores = scoresAt(job, step);
      return h("tr", { "data-job-id": job.id },
        h("th", { scope: "row" }, h("a", { href: `#/jobs/${encodeURIComponent(job.id)}` }, jobLabel(job, differing))),
        differing.map((name) => h("td", {}, paramText(name, (job.params || {})[name]))),
        h("td", {}, statusPill(job.status)),
        h("td", { class: "num", "data-role": "recommended-step" }, Number.isInteger(job.recommended_step)
          ? h("button", { type: "button", class: "sort-button", title: `show step ${job.recommended_step}`, onclick: () => onStep(job.recommended_step) }, `${job.recommended_step} ★`)
          : "—"),
        SCORES.map(({ name }) => {
          const v = scores ? scores.values[name] : undefined;
          const shown = typeof v === "number" && Number.isFinite(v);
          return h("td", {
            class: ["num", scores && !scores.atStep && "at-other-step"], "data-score": name,
            title: shown && !scores.atStep ? `measured at step ${scores.step} (none at step ${step})` : null,
          }, shown ? v.toFixed(3) : "—");
        }));
    });
    table.replaceChildren(
      h("caption", { class: "visually-hidden" }, "Parameters and scores of the compared jobs; the column buttons sort"),
      h("thead", {}, head), h("tbody", {}, body));
    if (focused) {
      const again = table.querySelector(`[data-sort-key="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
  }

  return { element, update };
}
