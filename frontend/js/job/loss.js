// The loss card: every loss term over the steps, drawn as an inline SVG chart. The job
// JSON carries only the latest losses; the event stream's progress events (replayed from
// the job's first event on connect) fill in the history through addProgress().

import { lossChart, lossSeries, mergeSeries } from "../chart.js";
import { fill, h } from "../dom.js";
import { FINISHED } from "../format.js";

/** Returns {element, update(job), addProgress(step, losses)}. */
export function lossCard() {
  const series = {};
  let ended = false;
  const slot = h("div", { class: "chart-slot" });
  const element = h("section", { class: "panel", "aria-labelledby": "loss-heading" }, h("h2", { id: "loss-heading" }, "Loss"), slot);

  // A replayed stream brings many progress events at once: draw at most once a frame.
  let frame = 0;
  function drawSoon() {
    if (frame) return;
    const draw = () => {
      frame = 0;
      fill(slot, lossChart(series, ended ? { emptyText: "No training step finished." } : {}));
    };
    frame = document.hidden ? setTimeout(draw, 250) : requestAnimationFrame(draw);
  }

  function addProgress(step, losses) {
    mergeSeries(series, lossSeries(losses, step));
    drawSoon();
  }

  function update(job) {
    ended = FINISHED.has(job.status);
    if (job.step) mergeSeries(series, lossSeries(job.losses, job.step));
    drawSoon();
  }

  return { element, update, addProgress };
}
