// The scores card: the objective scores (worker/scores.py) at each measured step, one
// small chart per score, from the job JSON's `scores` history. docs/engine.md explains them.

import { lossChart } from "../chart.js";
import { fill, h } from "../dom.js";

// In the order a comparison reads them, with what "good" looks like.
export const SCORES = [
  { name: "direction", title: "Direction agreement", hint: "images moved along the text's direction (higher is better)" },
  { name: "target", title: "Target similarity", hint: "closer to the target text than the source was (above 0)" },
  { name: "content", title: "Content kept", hint: "each image still shows what it showed (1 = unchanged)" },
  { name: "diversity", title: "Diversity", hint: "variety kept; well below 1 means collapse toward one image" },
  { name: "loss", title: "Loss (moving average)", hint: "the training loss, smoothed" },
];

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

/** Returns {element, update(job)}; hidden until a job has scores. */
export function scoresCard() {
  const grid = h("div", { class: "scores-grid" });
  const element = h("section", { class: "panel scores-card", "aria-labelledby": "scores-heading", hidden: true },
    h("h2", { id: "scores-heading" }, "Scores"),
    h("p", { class: "muted small" }, "Measured on held-out latents at each sample step (docs/engine.md)."),
    grid);
  let shown = "";

  function update(job) {
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
