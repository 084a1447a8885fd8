// The comparison view: a sweep (#/sweeps/<id>) or a hand-picked set of jobs
// (#/compare?jobs=<id>,<id>) side by side. One slider moves every job to the same training
// step; the grid shows each job's adapted images there, the table its parameters and scores;
// a score column sorts both. It re-reads the jobs every few seconds while any is still
// queued or running, and stops when all have finished or the view is left.
// Everything comes from the existing endpoints (GET /jobs/{id}, GET /sweeps/{id}).

import { api, serviceHref } from "./api.js";
import { fill, h, setText, toast } from "./dom.js";
import { ACTIVE, shortId } from "./format.js";
import { every } from "./live.js";
import { comparisonCsv, contactSheet, download } from "./compare/export.js";
import { compareGrid } from "./compare/grid.js";
import { differingParams, firstDirection, sharesLatents, sortJobs, stepUnion } from "./compare/model.js";
import { compareTable } from "./compare/table.js";
import { loadScores } from "./job/scores.js";
import { sweepsList } from "./sweeps.js";

const POLL_MS = 3000;
const MAX_JOBS = 64; // a hand-typed address could name any number

/** Reads a set of jobs: {jobs, varying, missing: [ids]}. */
function jobsSource(ids) {
  return async () => {
    const results = await Promise.all(ids.map((id) => api.getJob(id).catch((err) => {
      if (err.status === 404) return null;
      throw err;
    })));
    return { jobs: results.filter(Boolean), varying: [], missing: ids.filter((_, i) => !results[i]) };
  };
}

function sweepSource(id) {
  return async () => {
    const sweep = await api.getSweep(id);
    return { jobs: sweep.jobs || [], varying: sweep.varying || [], missing: [], sweep };
  };
}

/** Mount the comparison of what `load()` returns. Returns stop(). */
function mountComparisonOf(main, { load, title, fileStem, back }) {
  const state = { jobs: [], varying: [], steps: [], stepIndex: -1, followLast: true, sort: { key: null, direction: "none" } };
  const heading = h("h1", { class: "compare-heading", tabindex: "-1" }, title);
  const summary = h("p", { class: "muted small compare-summary" });
  const note = h("p", { class: "inline-error", role: "status", hidden: true });
  const slider = h("input", { type: "range", min: 0, max: 0, step: 1, value: 0, class: "scrubber compare-slider", "aria-label": "Training step of every job", disabled: true });
  const stepText = h("output", { class: "compare-step-text" }, "No samples yet");
  const grid = compareGrid();
  const table = compareTable({ onSort: sortBy, onStep: showStep });
  const csvButton = h("button", { type: "button", class: "button button-small", disabled: true, onclick: saveCsv }, "Download CSV");
  const sheetButton = h("button", { type: "button", class: "button button-small", disabled: true, onclick: saveSheet }, "Download contact sheet (PNG)");

  fill(main, h("div", { class: "compare-view" },
    h("div", { class: "job-top" }, back, h("div", { class: "title-row" }, heading), summary, note),
    h("section", { class: "panel compare-panel", "aria-label": "Samples of every job at one step" },
      h("div", { class: "compare-controls" },
        h("label", { class: "compare-slider-label" }, h("span", { class: "small" }, "Step, every job"), slider),
        stepText, h("span", { class: "spacer" }), csvButton, sheetButton),
      grid.element),
    h("section", { class: "panel", "aria-labelledby": "compare-table-heading" },
      h("h2", { id: "compare-table-heading" }, "Parameters and scores"),
      h("p", { class: "muted small" }, "Scores at the chosen step where a job measured one there, else its final ones (in grey). docs/engine.md, “Comparing runs”, says how to read them."),
      table.element)));
  heading.focus({ preventScroll: true });

  const step = () => (state.stepIndex >= 0 ? state.steps[state.stepIndex] : Number.NaN);
  const differing = () => differingParams(state.jobs, state.varying);
  // "Sweep 1a2b3c4d: photo → sketch" when every job has the same prompts.
  const fullTitle = () => {
    const diff = differing();
    const p = (state.jobs[0] && state.jobs[0].params) || {};
    return diff.includes("source_text") || diff.includes("target_text") || !state.jobs.length ? title : `${title}: ${p.source_text} → ${p.target_text}`;
  };
  const urlOf = (job, sample) => serviceHref(sample.url) || api.sampleUrl(job.id, sample.step);
  const ordered = () => sortJobs(state.jobs, { ...state.sort, step: step() });

  function render() {
    const diff = differing();
    const jobs = ordered();
    const shared = sharesLatents(state.jobs);
    const s = step();
    setText(heading, fullTitle());
    slider.disabled = state.steps.length < 2;
    slider.max = String(Math.max(0, state.steps.length - 1));
    slider.value = String(Math.max(0, state.stepIndex));
    slider.setAttribute("aria-valuetext", Number.isFinite(s) ? `step ${s}` : "no samples yet");
    setText(stepText, Number.isFinite(s) ? `Step ${s}${state.stepIndex === state.steps.length - 1 ? " · latest" : ""}` : "No samples yet");
    grid.update({ jobs, differing: diff, step: s, shared, urlOf });
    table.update({ jobs, differing: diff, step: s, sort: state.sort });
    csvButton.disabled = !jobs.length;
    sheetButton.disabled = !state.steps.length;
    const active = state.jobs.filter((j) => ACTIVE.has(j.status)).length;
    setText(summary, [
      `${state.jobs.length} job${state.jobs.length === 1 ? "" : "s"}`,
      diff.length ? `differing in ${diff.join(", ")}` : "with the same parameters",
      active ? `${active} still queued or running` : "all finished",
      shared ? "same sample latents" : "sample latents differ: each row shows its own source",
    ].join(" · "));
  }

  function sortBy(key) {
    const direction = state.sort.key === key
      ? (state.sort.direction === "ascending" ? "descending" : "ascending")
      : firstDirection(key.split(":")[1]);
    state.sort = { key, direction };
    render();
  }

  /** The shared slider to `step` (a job's recommended one), or the last sampled step before it. */
  function showStep(target) {
    const index = state.steps.findLastIndex((s) => s <= target);
    if (index < 0) return;
    state.stepIndex = index;
    state.followLast = index === state.steps.length - 1;
    render();
  }

  slider.addEventListener("input", () => {
    state.stepIndex = Number(slider.value);
    state.followLast = state.stepIndex === state.steps.length - 1;
    render();
  });

  function saveCsv() {
    download(new Blob([comparisonCsv(ordered(), differing())], { type: "text/csv" }), `${fileStem}.csv`);
  }

  async function saveSheet() {
    sheetButton.disabled = true;
    try {
      const s = step();
      const blob = await contactSheet({ jobs: ordered(), differing: differing(), step: s, sharedSource: sharesLatents(state.jobs), title: `${fullTitle()} · step ${s}`, urlOf });
      download(blob, `${fileStem}-step-${s}.png`);
    } catch (err) {
      toast(`Could not make the contact sheet: ${err.message}`, "error");
    } finally {
      sheetButton.disabled = !state.steps.length;
    }
  }

  let stopped = false;
  const stopPoll = every(POLL_MS, async () => {
    try {
      const [data] = await Promise.all([load(), loadScores().catch(() => [])]); // the score columns
      if (stopped) return undefined;
      note.hidden = !data.missing.length;
      setText(note, data.missing.length ? `No such job: ${data.missing.map(shortId).join(", ")} (deleted?)` : "");
      state.jobs = data.jobs;
      state.varying = data.varying;
      state.steps = stepUnion(state.jobs);
      if (state.followLast || state.stepIndex >= state.steps.length) state.stepIndex = state.steps.length - 1;
      render();
      if (!state.jobs.some((j) => ACTIVE.has(j.status))) stop(); // nothing will change any more
    } catch (err) {
      if (stopped) return undefined;
      note.hidden = false;
      setText(note, err.status === 404 ? "No such sweep. It may have been deleted." : `Could not load the jobs: ${err.message}`);
      if (err.status === 404) stop(); // anything else may pass: try again at the next tick
    }
    return POLL_MS;
  });

  function stop() {
    stopped = true;
    stopPoll();
  }
  return stop;
}

const backLink = (href, text) => h("a", { href, class: "back small" }, text);

/**
 * The views under #/compare and #/sweeps: `hash` is the address after "#/". Returns the
 * view's stop().
 */
export function mountComparison(main, hash) {
  const [path, query = ""] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "sweeps" && parts.length === 1) {
    document.title = "Sweeps — StyleGAN-NADA";
    const list = sweepsList();
    fill(main, h("div", { class: "jobs-page" }, list.element));
    return list.stop;
  }
  if (parts[0] === "sweeps" && parts.length === 2) {
    document.title = `Sweep ${shortId(parts[1])} — StyleGAN-NADA`;
    return mountComparisonOf(main, {
      load: sweepSource(parts[1]), title: `Sweep ${shortId(parts[1])}`, fileStem: `sweep-${shortId(parts[1])}`,
      back: backLink("#/sweeps", "← All sweeps"),
    });
  }
  const ids = [...new Set((new URLSearchParams(query).get("jobs") || "").split(",").map((s) => s.trim()).filter(Boolean))].slice(0, MAX_JOBS);
  if (parts[0] === "compare" && parts.length === 1 && ids.length) {
    document.title = `Comparing ${ids.length} jobs — StyleGAN-NADA`;
    return mountComparisonOf(main, {
      load: jobsSource(ids), title: `Comparing ${ids.length} job${ids.length === 1 ? "" : "s"}`, fileStem: `compare-${ids.length}-jobs`,
      back: backLink("#/jobs", "← All jobs"),
    });
  }
  fill(main, h("section", { class: "panel not-found" }, h("h1", {}, "Nothing to compare"),
    h("p", {}, "Pick jobs in the list and press “Compare selected”, or open a sweep."),
    h("a", { href: "#/jobs" }, "← All jobs")));
  return () => {};
}
