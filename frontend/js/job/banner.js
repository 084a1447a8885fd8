// The banner under the heading: why a job failed, that it was canceled, or that it is done.
// Hidden while the job is queued or running.

import { fill, h } from "../dom.js";
import { STAGE_LABEL, duration, tookSeconds } from "../format.js";

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
      show("failed", "alert", h("strong", {}, "This job failed. "), err.message || "The worker gave no reason.",
        err.code ? h("span", { class: "error-code" }, ` (${err.code})`) : null,
        h("div", { class: "small muted" }, job.stage ? `During: ${STAGE_LABEL[job.stage] || job.stage}${job.step ? `, after step ${job.step}` : ""}.` : ""));
    } else if (job.status === "canceled") {
      show("canceled", "status", h("strong", {}, "Canceled. "),
        job.step ? `Stopped after step ${job.step} of ${job.total_steps || "?"}; no final checkpoint was written.` : "It never started training.");
    } else if (job.status === "succeeded") {
      const took = tookSeconds(job);
      show("succeeded", "status", h("strong", {}, "Done. "), `The adapted generator is ready${took !== null ? ` (trained in ${duration(took)})` : ""}.`);
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
