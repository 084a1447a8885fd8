// One job: progress, the sampled source/adapted pairs with a scrubber over every sampled
// step, the loss chart, the selected layers, the parameters, cancel and downloads.
// Built once, then updated in place from each fresh job JSON (SSE-driven, or polled).

import { api, serviceHref } from "./api.js";
import { lossChart, lossSeries, mergeSeries } from "./chart.js";
import { fill, h, setText, toast } from "./dom.js";
import { ACTIVE, FINISHED, STAGE_LABEL, STATUS_LABEL, duration, fractionDone, fullTime, promptText, shortId, tookSeconds, whereText } from "./format.js";
import { progressBar, statusPill } from "./jobs.js";
import { followJob } from "./live.js";
import { formatNumber } from "./schema.js";

function fileSafe(text) {
  return String(text).toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 40) || "x";
}

function paramValue(name, v) {
  if (name === "clip_models" && Array.isArray(v)) return v.map((c) => `${c.name} × ${formatNumber(c.weight ?? 1)}`).join(", ");
  if (typeof v === "boolean") return v ? "on" : "off";
  if (typeof v === "number") return formatNumber(v);
  if (v === null || v === undefined) return "—";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function layerName(l) {
  return typeof l === "string" ? l : (l && (l.name || l.layer)) || JSON.stringify(l);
}

/**
 * Mount the view for job `id` into `main`. ctx.onRerun(params) opens the form prefilled.
 * Returns stop() (closes the event stream).
 */
export function mountJobView(main, id, ctx) {
  const state = { job: null, samples: [], selected: -1, followLatest: true, series: {}, mode: "" };

  // ---- skeleton ----------------------------------------------------------------------
  const title = h("h1", { class: "job-heading", tabindex: "-1" }, "Loading job…");
  const pillSlot = h("span", { class: "pill-slot" });
  const modeBadge = h("span", { class: "mode muted small", hidden: true });
  const banner = h("div", { class: "banner", hidden: true });

  const bar = h("div", { class: "progress-slot" });
  const stepLine = h("div", { class: "step-line" });
  const whereLine = h("div", { class: "where-line muted" });
  const cancelButton = h("button", { type: "button", class: "button button-danger", hidden: true }, "Cancel job");
  const downloadLink = h("a", { class: "button button-primary", hidden: true, "data-role": "checkpoint" }, "Download adapted generator (.pt)");
  const rerunButton = h("button", { type: "button", class: "button button-quiet" }, "New job with these settings");
  const deleteButton = h("button", { type: "button", class: "button button-quiet button-danger-text", hidden: true }, "Delete");
  const progressCard = h("section", { class: "panel progress-card", "aria-label": "Progress" },
    h("div", { class: "progress-head" }, stepLine, modeBadge), bar, whereLine,
    h("div", { class: "actions" }, cancelButton, downloadLink, rerunButton, deleteButton));

  const image = h("img", { class: "sample-image", alt: "", decoding: "async" });
  const imageWrap = h("div", { class: "sample-frame", hidden: true },
    image, h("span", { class: "row-label row-label-top" }, "source"), h("span", { class: "row-label row-label-bottom" }, "adapted"));
  const sampleCaption = h("figcaption", { class: "sample-caption" });
  const samplesEmpty = h("p", { class: "samples-empty muted" }, "The first sample appears after the first sampled step.");
  const scrubber = h("input", { type: "range", min: 0, max: 0, step: 1, value: 0, class: "scrubber", "aria-label": "Sampled step", hidden: true });
  const latestButton = h("button", { type: "button", class: "button button-small button-quiet", hidden: true }, "Jump to latest");
  const strip = h("ol", { class: "strip", "aria-label": "Every sampled step" });
  const samplesCard = h("section", { class: "panel samples-card", "aria-labelledby": "samples-heading" },
    h("div", { class: "panel-head" }, h("h2", { id: "samples-heading" }, "Samples"), h("span", { class: "muted small" }, "top: base generator · bottom: adapted"), h("span", { class: "spacer" }), latestButton),
    h("figure", { class: "sample-figure" }, imageWrap, samplesEmpty, sampleCaption),
    h("div", { class: "scrub-row" }, scrubber), strip);

  const chartSlot = h("div", { class: "chart-slot" });
  const lossCard = h("section", { class: "panel", "aria-labelledby": "loss-heading" }, h("h2", { id: "loss-heading" }, "Loss"), chartSlot);
  const layersSlot = h("div", { class: "layers" });
  const layersCard = h("section", { class: "panel", "aria-labelledby": "layers-heading" },
    h("h2", { id: "layers-heading" }, "Selected layers"), layersSlot);
  const checkpointsSlot = h("ul", { class: "checkpoints" });
  const checkpointsCard = h("section", { class: "panel", "aria-labelledby": "ckpt-heading", hidden: true },
    h("h2", { id: "ckpt-heading" }, "Checkpoints"), checkpointsSlot);
  const paramsSlot = h("dl", { class: "params" });
  const paramsCard = h("section", { class: "panel", "aria-labelledby": "params-heading" },
    h("h2", { id: "params-heading" }, "Parameters"), paramsSlot);
  const timesSlot = h("dl", { class: "params times" });

  fill(main,
    h("div", { class: "job-view" },
      h("div", { class: "job-top" },
        h("a", { href: "#/jobs", class: "back small" }, "← All jobs"),
        h("div", { class: "title-row" }, title, pillSlot)),
      banner,
      h("div", { class: "columns" },
        h("div", { class: "col-main" }, progressCard, samplesCard),
        h("div", { class: "col-side" }, lossCard, layersCard, checkpointsCard, paramsCard,
          h("section", { class: "panel", "aria-label": "Times" }, timesSlot)))));
  title.focus({ preventScroll: true });

  // ---- samples -----------------------------------------------------------------------
  function selectSample(index, { announce = false } = {}) {
    const s = state.samples[index];
    if (!s) return;
    state.selected = index;
    const src = serviceHref(s.url) || api.sampleUrl(id, s.step);
    if (image.getAttribute("src") !== src) image.src = src;
    image.alt = `Step ${s.step}: images of the base generator (top row) and of the adapted generator (bottom row)`;
    const of = state.job && state.job.total_steps ? ` of ${state.job.total_steps}` : "";
    const latest = index === state.samples.length - 1 ? " · latest" : "";
    setText(sampleCaption, s.step === 0 ? `Step 0, before training: both rows alike${latest}` : `Step ${s.step}${of}${latest}`);
    scrubber.value = String(index);
    scrubber.setAttribute("aria-valuetext", `step ${s.step}`);
    strip.querySelectorAll("button").forEach((b, i) => b.setAttribute("aria-pressed", String(i === index)));
    const current = strip.children[index];
    if (current && announce) current.scrollIntoView({ block: "nearest", inline: "nearest" });
    latestButton.hidden = state.followLatest || index === state.samples.length - 1;
  }

  function updateSamples(samples) {
    const list = (samples || []).filter((s) => s && s.step !== undefined).slice().sort((a, b) => a.step - b.step);
    const known = new Set(state.samples.map((s) => s.step));
    let added = false;
    for (const s of list) {
      if (known.has(s.step)) continue;
      added = true;
      state.samples.push(s);
      const index = state.samples.length - 1;
      const thumb = h("img", { src: serviceHref(s.url) || api.sampleUrl(id, s.step), alt: "", loading: "lazy", decoding: "async" });
      strip.append(h("li", {}, h("button", {
        type: "button", class: "thumb", "aria-pressed": "false", "aria-label": `Show step ${s.step}`,
        onclick: () => { state.followLatest = index === state.samples.length - 1; selectSample(index); },
      }, thumb, h("span", {}, `step ${s.step}`))));
    }
    state.samples.sort((a, b) => a.step - b.step);
    const n = state.samples.length;
    imageWrap.hidden = n === 0;
    samplesEmpty.hidden = n > 0;
    setText(samplesEmpty, state.job && FINISHED.has(state.job.status)
      ? "No samples were written."
      : "The first sample appears after the first sampled step.");
    scrubber.hidden = n < 2;
    scrubber.max = String(Math.max(0, n - 1));
    if (!n) return;
    if (added && state.followLatest) selectSample(n - 1, { announce: true });
    else if (state.selected < 0) selectSample(n - 1);
    else selectSample(state.selected);
  }

  scrubber.addEventListener("input", () => {
    const index = Number(scrubber.value);
    state.followLatest = index === state.samples.length - 1;
    selectSample(index, { announce: true });
  });
  latestButton.addEventListener("click", () => {
    state.followLatest = true;
    selectSample(state.samples.length - 1, { announce: true });
    scrubber.focus();
  });

  // ---- the rest of the view ----------------------------------------------------------
  function updateBanner(job) {
    banner.className = "banner";
    if (job.status === "failed") {
      const err = job.error || {};
      banner.hidden = false;
      banner.classList.add("banner-failed");
      banner.setAttribute("role", "alert");
      fill(banner, h("strong", {}, "This job failed. "), err.message || "The worker gave no reason.",
        err.code ? h("span", { class: "error-code" }, ` (${err.code})`) : null,
        h("div", { class: "small muted" }, job.stage ? `During: ${STAGE_LABEL[job.stage] || job.stage}${job.step ? `, after step ${job.step}` : ""}.` : ""));
    } else if (job.status === "canceled") {
      banner.hidden = false;
      banner.classList.add("banner-canceled");
      banner.setAttribute("role", "status");
      fill(banner, h("strong", {}, "Canceled. "), job.step ? `Stopped after step ${job.step} of ${job.total_steps || "?"}; no final checkpoint was written.` : "It never started training.");
    } else if (job.status === "succeeded") {
      banner.hidden = false;
      banner.classList.add("banner-succeeded");
      banner.setAttribute("role", "status");
      const took = tookSeconds(job);
      fill(banner, h("strong", {}, "Done. "), `The adapted generator is ready${took !== null ? ` (trained in ${duration(took)})` : ""}.`);
    } else {
      banner.hidden = true;
      banner.replaceChildren();
    }
  }

  function updateProgress(job) {
    fill(bar, progressBar(job, { label: "Training progress" }));
    const total = job.total_steps || (job.params && job.params.steps) || 0;
    const pct = Math.round(fractionDone(job) * 100);
    fill(stepLine,
      h("span", { class: "big" }, `${job.step || 0}`), h("span", { class: "muted" }, ` / ${total} steps`),
      h("span", { class: "pct" }, `${pct}%`));
    const bits = [];
    if (job.status === "running" && job.stage) bits.push(STAGE_LABEL[job.stage] || job.stage);
    if (job.status === "queued") bits.push(whereText(job));
    if (job.status === "running" && Number.isFinite(job.eta_seconds)) bits.push(`about ${duration(job.eta_seconds)} left`);
    if (job.status === "failed") {
      const took = tookSeconds(job);
      bits.push(`Failed${job.step ? ` at step ${job.step}` : " before training"}${took !== null ? `, after ${duration(took)}` : ""}`);
    } else if (FINISHED.has(job.status)) bits.push(whereText(job));
    setText(whereLine, bits.join(" · "));
  }

  function updateActions(job) {
    cancelButton.hidden = !ACTIVE.has(job.status);
    deleteButton.hidden = !FINISHED.has(job.status);
    const url = serviceHref(job.checkpoint_url);
    downloadLink.hidden = !url;
    if (url) {
      downloadLink.href = url;
      const { source, target } = promptText(job);
      downloadLink.setAttribute("download", `nada-${fileSafe(source)}-to-${fileSafe(target)}-${shortId(job.id)}.pt`);
    } else downloadLink.removeAttribute("href");
  }

  function updateLayers(job) {
    const layers = job.selected_layers || [];
    if (!layers.length) {
      fill(layersSlot, h("p", { class: "muted" }, job.status === "queued" ? "Chosen once training starts."
        : FINISHED.has(job.status) ? "None were selected." : "None reported yet."));
      return;
    }
    const k = job.params && job.params.layers;
    fill(layersSlot,
      h("p", { class: "muted small" }, `${layers.length} layer${layers.length === 1 ? "" : "s"} trained in the last step${k === 0 ? " (k = 0: every candidate)" : ""}.`),
      h("ul", { class: "chips" }, layers.map((l) => h("li", { class: "chip chip-static" }, layerName(l)))));
  }

  function updateCheckpoints(job) {
    const list = (job.checkpoints || []).filter((c) => c && c.url);
    checkpointsCard.hidden = list.length === 0;
    fill(checkpointsSlot, list.map((c) => h("li", {},
      h("a", { href: serviceHref(c.url), download: `nada-${shortId(job.id)}-step${c.step}.pt`, "data-role": "intermediate-checkpoint" }, `Step ${c.step}`),
      h("span", { class: "muted small" }, " .pt"))));
  }

  function updateParams(job) {
    const p = job.params || {};
    const rows = Object.entries(p).filter(([k]) => k !== "source_text" && k !== "target_text");
    fill(paramsSlot, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, paramValue(k, v))]));
    const t = [["Job", String(job.id)], ["Created", fullTime(job.created_at)], ["Started", fullTime(job.started_at)], ["Finished", fullTime(job.finished_at)]]
      .filter(([, v]) => v);
    fill(timesSlot, t.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  }

  // The event stream replays every progress event on connect: draw at most once a frame.
  let chartFrame = 0;
  function drawChartSoon() {
    if (chartFrame) return;
    const draw = () => {
      chartFrame = 0;
      const ended = state.job && FINISHED.has(state.job.status);
      fill(chartSlot, lossChart(state.series, ended ? { emptyText: "No training step finished." } : {}));
    };
    chartFrame = document.hidden ? setTimeout(draw, 250) : requestAnimationFrame(draw);
  }

  function updateChart(job) {
    if (job.step) mergeSeries(state.series, lossSeries(job.losses, job.step));
    drawChartSoon();
  }

  function updateTitle(job) {
    const { source, target } = promptText(job);
    fill(title, h("span", { class: "prompt" }, source), h("span", { class: "arrow", "aria-hidden": "true" }, " → "),
      h("span", { class: "visually-hidden" }, " to "), h("span", { class: "prompt prompt-target" }, target));
    fill(pillSlot, statusPill(job.status));
    const pct = Math.round(fractionDone(job) * 100);
    document.title = `${source} → ${target} · ${job.status === "running" ? `${pct}%` : STATUS_LABEL[job.status] || job.status} — StyleGAN-NADA`;
  }

  function render(job) {
    state.job = job;
    main.dataset.jobStatus = job.status;
    updateTitle(job);
    updateBanner(job);
    updateProgress(job);
    updateActions(job);
    updateSamples(job.samples);
    updateChart(job);
    updateLayers(job);
    updateCheckpoints(job);
    updateParams(job);
  }

  function setMode(mode) {
    state.mode = mode;
    modeBadge.hidden = mode === "stopped" || !mode;
    modeBadge.dataset.mode = mode;
    setText(modeBadge, mode === "live" ? "● Live" : mode === "polling" ? "Refreshing every 2 s" : "");
  }

  // ---- actions -----------------------------------------------------------------------
  cancelButton.addEventListener("click", async () => {
    cancelButton.disabled = true;
    setText(cancelButton, "Canceling…");
    try {
      render(await api.cancelJob(id).then((r) => (r && r.id ? r : api.getJob(id))));
      toast("Job canceled.");
    } catch (err) {
      toast(err.status === 409 ? "The job had already finished." : `Could not cancel: ${err.message}`, "error");
      api.getJob(id).then(render).catch(() => {});
    } finally {
      cancelButton.disabled = false;
      setText(cancelButton, "Cancel job");
    }
  });
  deleteButton.addEventListener("click", async () => {
    if (!window.confirm("Delete this job, its samples and its checkpoint?")) return;
    try {
      await api.deleteJob(id);
      toast("Job deleted.");
      location.hash = "#/jobs";
    } catch (err) {
      toast(`Could not delete: ${err.message}`, "error");
    }
  });
  rerunButton.addEventListener("click", () => ctx.onRerun(state.job ? state.job.params : null));

  // ---- live updates ------------------------------------------------------------------
  let seenJob = false;
  const stop = followJob(id, {
    onJob: (job) => { seenJob = true; render(job); },
    onEvent: (type, data) => {
      // The stream starts from the job's first event, so this also rebuilds the history
      // that the job JSON (latest losses only) does not keep.
      if (type === "progress" && data && typeof data === "object" && data.losses && Number.isFinite(data.step)) {
        mergeSeries(state.series, lossSeries(data.losses, data.step));
        drawChartSoon();
      }
    },
    onMode: setMode,
    onError: (err) => {
      if (err.status === 404) {
        fill(main, h("section", { class: "panel not-found" }, h("h1", {}, "No such job"),
          h("p", {}, `The service has no job “${id}”. It may have been deleted.`), h("a", { href: "#/jobs" }, "← All jobs")));
      } else if (!seenJob) {
        setText(title, "Could not load the job");
        banner.hidden = false;
        banner.className = "banner banner-failed";
        fill(banner, err.message);
      } else toast(`Connection trouble: ${err.message}`, "error", 3000);
    },
  });
  return stop;
}
