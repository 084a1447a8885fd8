// "Continue training": a succeeded adaptation trains on for more steps as a new job that
// starts from its weights and optimiser state (POST /jobs/{id}/continue). Shown once the
// job succeeded; on success the page goes to the new job. A job with snapshots
// (snapshot_every) may continue from one of them instead (`from_step`): the samples card's
// "Continue from this step" picks it here.

import { api } from "../api.js";
import { fill, h, uid } from "../dom.js";

const DEFAULT_STEPS = 100;

/** Returns {element, update(job), fromStep(step)}. */
export function continueCard({ id }) {
  const stepsId = uid("continue-steps");
  const lrId = uid("continue-lr");
  const fromId = uid("continue-from");
  const from = h("select", { id: fromId, "data-role": "continue-from" });
  const fromField = h("div", { class: "field", hidden: true }, h("label", { for: fromId }, "From step"), from);
  const steps = h("input", { id: stepsId, type: "number", min: "1", step: "1", value: String(DEFAULT_STEPS), required: true, "data-role": "continue-steps" });
  const lr = h("input", { id: lrId, type: "number", min: "0.000001", max: "1", step: "any", placeholder: "as before", "data-role": "continue-lr" });
  const error = h("p", { class: "field-error", role: "alert", "data-role": "continue-error" });
  const button = h("button", { type: "submit", class: "button button-primary", "data-role": "continue" }, "Continue training");
  const note = h("p", { class: "muted small" });
  const form = h("form", { class: "continue-form", novalidate: true },
    fromField,
    h("div", { class: "field" }, h("label", { for: stepsId }, "More steps"), steps),
    h("div", { class: "field" }, h("label", { for: lrId }, "Learning rate (optional)"), lr),
    error, h("div", { class: "actions" }, button));
  const element = h("section", { class: "panel", "aria-labelledby": "continue-heading", hidden: true },
    h("h2", { id: "continue-heading" }, "Continue training"), note, form);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(error);
    const body = { steps: Number(steps.value) };
    if (!Number.isInteger(body.steps) || body.steps < 1) {
      fill(error, "More steps must be a whole number, at least 1.");
      steps.focus();
      return;
    }
    if (lr.value.trim() !== "") body.lr = Number(lr.value);
    if (from.value !== "") body.from_step = Number(from.value);
    button.disabled = true;
    try {
      const child = await api.continueJob(id, body);
      location.hash = `#/jobs/${encodeURIComponent(child.id)}`;
    } catch (err) {
      const messages = err.fieldErrors && err.fieldErrors.length ? err.fieldErrors.map((e) => e.message) : [err.message];
      fill(error, messages.join(" "));
    } finally {
      button.disabled = false;
    }
  });

  function update(job) {
    element.hidden = !(job.status === "succeeded" && (job.kind || "adapt") === "adapt" && !job.resumable_expired);
    const last = job.step || job.total_steps || 0;
    fill(note, `From step ${last} (or a snapshot), with the same weights, optimiser state and sample images; the new job is a run of its own.`);
    const snapshots = (job.snapshots || []).map((s) => s.step).filter((s) => Number.isInteger(s) && s !== last);
    const chosen = from.value;
    const mark = (step) => (step === job.recommended_step ? " (recommended)" : "");
    fill(from, h("option", { value: "" }, `the last step (${last})${mark(last)}`),
      snapshots.map((step) => h("option", { value: String(step) }, `snapshot at step ${step}${mark(step)}`)));
    from.value = snapshots.includes(Number(chosen)) ? chosen : "";
    fromField.hidden = !snapshots.length;
  }

  /** Continue from `step` (a snapshot step), brought into view. */
  function fromStep(step) {
    if (![...from.options].some((o) => o.value === String(step))) return;
    from.value = String(step);
    element.scrollIntoView({ block: "nearest" });
    from.focus();
  }

  return { element, update, fromStep };
}
