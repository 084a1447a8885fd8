// The scores card: the objective scores (worker/scores.py) at each measured step, one
// small chart per score, from the job JSON's `scores` history. docs/engine.md explains them.
//
// Which scores there are, their titles, their hints and which end is better are the
// service's (GET /params → scores, declared once in nada/scores.py): `SCORES` and
// `SCORE_NAMES` are filled by loadScores() and read by the comparison view too.

import { api } from "../api.js";
import { lossChart } from "../chart.js";
import { fill, h } from "../dom.js";

// In the order a comparison reads them: {name, title, hint, higherIsBetter}. Empty until
// loadScores() has the service's list (the arrays are filled in place: importers keep them).
export const SCORES = [];
export const SCORE_NAMES = [];
let loading = null;

/** The service's scores, fetched once (again after a failure); resolves with SCORES. */
export function loadScores() {
  if (!loading) {
    loading = api.params().then((data) => {
      const served = (data && Array.isArray(data.scores) ? data.scores : []).filter((s) => s && typeof s.name === "string");
      SCORES.splice(0, SCORES.length, ...served.map((s) => ({
        name: s.name,
        title: s.label || s.name,
        hint: `${s.help || ""} (${s.higher_is_better ? "higher" : "lower"} is better)`.trim(),
        higherIsBetter: Boolean(s.higher_is_better),
      })));
      SCORE_NAMES.splice(0, SCORE_NAMES.length, ...SCORES.map((s) => s.name));
      return SCORES;
    });
    loading.catch(() => { loading = null; });
  }
  return loading;
}

/** {step, values}[] -> {name: [[step, value], ...]} for the scores that have values. */
export function scoreSeries(history) {
  const series = {};
  for (const entry of history || []) {
    for (const { name } of SCORES) {
      const v = entry && entry.values ? entry.values[name] : undefined;
      if (typeof v === "number" && Number.isFinite(v)) (series[name] ||= []).push([entry.step, v]);
    }
  }
  for (const points of Object.values(series)) points.sort((a, b) => a[0] - b[0]);
  return series;
}

/** Returns {element, update(job)}; hidden until a job has scores (and the service's list of them). */
export function scoresCard() {
  const grid = h("div", { class: "scores-grid" });
  const element = h("section", { class: "panel scores-card", "aria-labelledby": "scores-heading", hidden: true },
    h("h2", { id: "scores-heading" }, "Scores"),
    h("p", { class: "muted small" }, "Measured on held-out latents at each sample step (docs/engine.md)."),
    grid);
  let shown = "";

  let latest = null;
  function update(job) {
    latest = job;
    if (!SCORES.length) { // draw once the service's list arrives
      loadScores().then(() => { if (latest === job) update(job); }, () => {});
      return;
    }
    const series = scoreSeries(job.scores);
    const key = JSON.stringify(series);
    if (key === shown) return;
    shown = key;
    element.hidden = !Object.keys(series).length;
    fill(grid, SCORES.filter(({ name }) => series[name]).map(({ name, title, hint }) =>
      h("figure", { class: "score", "data-score": name },
        h("figcaption", {}, h("strong", {}, title), h("span", { class: "hint" }, ` ${hint}`)),
        lossChart({ [name]: series[name] }, { height: 120, what: title }))));
  }

  return { element, update };
}
