// The banner under the heading: why a job failed, that it was canceled, that it is done,
// or that its worker went silent (`stalled`: running, no heartbeat for over a lease), or
// that retention removed its files (`files_expired`: the downloads and pictures are gone).
// Hidden while the job is queued or running as it should.

import { fill, h } from "../dom.js";
import { STAGE_LABEL, duration, tookSeconds } from "../format.js";

/** A failure's operator details (`error.details`: the variables and commands that fix it),
 * collapsed under "Details"; null when there are none. `open` keeps it open on a redraw. */
export function failureDetails(err, { open = false } = {}) {
  if (!err || !err.details) return null;
  return h("details", { class: "error-details small", open: open || undefined },
    h("summary", {}, "Details (for the operator)"),
    h("pre", { class: "error-details-text" }, err.details));
}

/** Returns {element, update(job), showError(message)}. */
export function statusBanner() {
  const element = h("div", { class: "banner", hidden: true });

  function show(kind, role, ...children) {
    element.hidden = false;
    element.classList.add(`banner-${kind}`);
    element.setAttribute("role", role);
    fill(element, ...children);
  }

  function update(job) {
    element.className = "banner";
    if (job.status === "failed") {
      const err = job.error || {};
      const wasOpen = Boolean(element.querySelector("details.error-details[open]"));
      show("failed", "alert", h("strong", {}, "This job failed. "), err.message || "The worker gave no reason.",
        err.code ? h("span", { class: "error-code" }, ` (${err.code})`) : null,
        h("div", { class: "small muted" }, job.stage ? `During: ${STAGE_LABEL[job.stage] || job.stage}${job.step ? `, after step ${job.step}` : ""}.` : ""),
        failureDetails(err, { open: wasOpen }));
    } else if (job.status === "canceled") {
      show("canceled", "status", h("strong", {}, "Canceled. "),
        job.step ? `Stopped after step ${job.step} of ${job.total_steps || "?"}; no final checkpoint was written.` : "It never started training.");
    } else if (job.files_expired) {
      show("expired", "status", h("strong", {}, "Files expired. "),
        "The service's retention removed this job's files (checkpoint, pictures); its record, parameters and scores stay.");
    } else if (job.status === "succeeded") {
      const took = tookSeconds(job);
      show("succeeded", "status", h("strong", {}, "Done. "), `The adapted generator is ready${took !== null ? ` (trained in ${duration(took)})` : ""}.`);
    } else if (job.status === "running" && job.stalled) {
      const silent = (Date.now() - Date.parse(job.heartbeat_at || job.started_at)) / 1000;
      show("stalled", "status", h("strong", {}, "Stalled. "),
        `No word from the worker for ${duration(silent) || "a while"}${job.step ? ` (last at step ${job.step})` : ""}. ` +
        "It may be stuck or unable to write (a full disk); the job is started again once the service can record that.");
    } else {
      element.hidden = true;
      element.replaceChildren();
    }
  }

  /** The job could not be loaded at all (shown before any job JSON arrived). */
  function showError(message) {
    element.hidden = false;
    element.className = "banner banner-failed";
    fill(element, message);
  }

  return { element, update, showError };
}
