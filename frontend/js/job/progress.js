// The progress card: step counter and transport badge, the progress bar, where the job
// stands (stage, queue place, ETA), and the actions: cancel, download, re-run, delete.

import { api, serviceHref } from "../api.js";
import { fill, h, setText, toast } from "../dom.js";
import { ACTIVE, FINISHED, STAGE_LABEL, duration, fractionDone, promptText, shortId, tookSeconds, whereText } from "../format.js";
import { progressBar } from "../jobs.js";

function fileSafe(text) {
  return String(text).toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 40) || "x";
}

/** "Training · about 40 s left", "Failed at step 12, after 3 s". */
function whereLineText(job) {
  const bits = [];
  if (job.status === "running" && job.stage) bits.push(STAGE_LABEL[job.stage] || job.stage);
  if (job.status === "queued") bits.push(whereText(job));
  if (job.status === "running" && Number.isFinite(job.eta_seconds)) bits.push(`about ${duration(job.eta_seconds)} left`);
  if (job.status === "failed") {
    const took = tookSeconds(job);
    bits.push(`Failed${job.step ? ` at step ${job.step}` : " before training"}${took !== null ? `, after ${duration(took)}` : ""}`);
  } else if (FINISHED.has(job.status)) bits.push(whereText(job));
  return bits.join(" · ");
}

/**
 * id: the job's id. onJob(job): a fresh job JSON an action got back (cancel).
 * onRerun(params): open the form with these parameters.
 * Returns {element, update(job), setMode("live" | "polling" | "stopped" | "")}.
 */
export function progressCard({ id, onJob, onRerun }) {
  let current = null;
  const modeBadge = h("span", { class: "mode muted small", hidden: true });
  const bar = h("div", { class: "progress-slot" });
  const stepLine = h("div", { class: "step-line" });
  const whereLine = h("div", { class: "where-line muted" });
  const cancelButton = h("button", { type: "button", class: "button button-danger", hidden: true }, "Cancel job");
  const downloadLink = h("a", { class: "button button-primary", hidden: true, "data-role": "checkpoint" }, "Download adapted generator (.pt)");
  // a modulation job's compact domain (docs/explore.md, "Domain files")
  const domainLink = h("a", { class: "button button-quiet", hidden: true, "data-role": "domain" }, "Download domain (domain.pt)");
  const rerunButton = h("button", { type: "button", class: "button button-quiet" }, "New job with these settings");
  const deleteButton = h("button", { type: "button", class: "button button-quiet button-danger-text", hidden: true }, "Delete");
  const element = h("section", { class: "panel progress-card", "aria-label": "Progress" },
    h("div", { class: "progress-head" }, stepLine, modeBadge), bar, whereLine,
    h("div", { class: "actions" }, cancelButton, downloadLink, domainLink, rerunButton, deleteButton));

  function update(job) {
    current = job;
    fill(bar, progressBar(job, { label: "Training progress" }));
    const total = job.total_steps || (job.params && job.params.steps) || 0;
    const pct = Math.round(fractionDone(job) * 100);
    fill(stepLine,
      h("span", { class: "big" }, `${job.step || 0}`), h("span", { class: "muted" }, ` / ${total} steps`),
      h("span", { class: "pct" }, `${pct}%`));
    setText(whereLine, whereLineText(job));

    cancelButton.hidden = !ACTIVE.has(job.status);
    deleteButton.hidden = !FINISHED.has(job.status);
    const url = serviceHref(job.checkpoint_url);
    downloadLink.hidden = !url;
    if (url) {
      downloadLink.href = url;
      const { source, target } = promptText(job);
      downloadLink.setAttribute("download", `nada-${fileSafe(source)}-to-${fileSafe(target)}-${shortId(job.id)}.pt`);
    } else downloadLink.removeAttribute("href");
    const domainUrl = serviceHref(job.domain_url);
    domainLink.hidden = !domainUrl;
    if (domainUrl) {
      domainLink.href = domainUrl;
      const { source, target } = promptText(job);
      domainLink.setAttribute("download", `nada-${fileSafe(source)}-to-${fileSafe(target)}-${shortId(job.id)}-domain.pt`);
    } else domainLink.removeAttribute("href");
  }

  function setMode(mode) {
    modeBadge.hidden = mode === "stopped" || !mode;
    modeBadge.dataset.mode = mode;
    setText(modeBadge, mode === "live" ? "● Live" : mode === "polling" ? "Refreshing every 2 s" : "");
  }

  cancelButton.addEventListener("click", async () => {
    cancelButton.disabled = true;
    setText(cancelButton, "Canceling…");
    try {
      onJob(await api.cancelJob(id).then((r) => (r && r.id ? r : api.getJob(id))));
      toast("Job canceled.");
    } catch (err) {
      toast(err.status === 409 ? "The job had already finished." : `Could not cancel: ${err.message}`, "error");
      api.getJob(id).then(onJob).catch(() => {});
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
  rerunButton.addEventListener("click", () => onRerun(current ? current.params : null));

  return { element, update, setMode };
}
