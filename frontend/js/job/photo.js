// "Try it on a photo", on a succeeded adaptation job: the photo is put into the job's base
// generator once (an inversion: POST /inversions, followed like a job), then its code is
// drawn by this job's adapted generator (an edit: POST /jobs/{id}/edits). The inversion is
// remembered in this browser, so other jobs adapted from the same generator offer it under
// "Your photos" and only need the edit.
//
// Parts: photo-form.js (drop zone, options), photo-result.js (the pictures side by side),
// photo-edits.js (the latent edit sliders: age, smile, …), photo-list.js ("Your photos"),
// photo-memory.js (localStorage). This file runs one try at a time: upload → follow the
// inversion → ask for the edit → follow it; the sliders then ask for more edits of that code.

import { api, listOf } from "../api.js";
import { h, setText } from "../dom.js";
import { ACTIVE, FINISHED, STAGE_LABEL, duration, whereText } from "../format.js";
import { progressBar } from "../jobs.js";
import { followJob } from "../live.js";
import { failureDetails } from "./banner.js";
import { photoEdits } from "./photo-edits.js";
import { photoForm } from "./photo-form.js";
import { photoList } from "./photo-list.js";
import { forgetPhoto, rememberPhoto } from "./photo-memory.js";
import { photoResult } from "./photo-result.js";

class Stopped extends Error {}

/** "12 / 100 refinement steps · about 8 s left" */
function stepsText(job, kind) {
  if (kind === "edit" || !ACTIVE.has(job.status)) return "";
  const eta = job.status === "running" && Number.isFinite(job.eta_seconds) ? ` · about ${duration(job.eta_seconds)} left` : "";
  return `${job.step || 0} / ${job.total_steps || 0} refinement steps${eta}`;
}

/** One sentence for the live region: what the try is doing now (stage level, not per step). */
function statusText(job, kind, generator) {
  const what = kind === "edit" ? "Drawing the photo with this job's generator" : `Putting the photo into ${generator}`;
  if (job.status === "queued") return `${what}: queued (${whereText(job).toLowerCase()}).`;
  if (job.status === "running") return `${what}: ${(STAGE_LABEL[job.stage] || "starting").toLowerCase()}…`;
  return `${what}…`;
}

/** jobId: the adaptation job. Returns {element, update(job), stop()}. */
export function photoCard({ jobId }) {
  let generator = null;
  let busy = false;
  let following = null; // {id, stop()} of the inversion or edit being followed
  let tries = 0; // bumped by each try and by stop(): a stale try's callbacks do nothing

  const form = photoForm({ onSubmit: (choice) => startUpload(choice) });
  // The service's limits and defaults; until they arrive (or if they never do) the form
  // uses the service's defaults, and the service checks everything again anyway.
  api.inversionParams().then((params) => form.setLimits(params), () => {});
  // What this server's model files allow (GET /weights): aligning needs the face detector,
  // and encoder "auto" a generator's encoder; without them the form uses what works.
  let noEncoder = [];
  api.weights().then((body) => {
    form.setAlignment(body.photo);
    noEncoder = (body.photo && body.photo.encoder_unavailable) || [];
  }, () => {});
  const list = photoList({ onUse: (entry) => startRemembered(entry) });
  const result = photoResult({ jobId });
  const edits = photoEdits({ onApply: (text) => startEdits(text) });
  let drawn = null; // the last inversion drawn here: what the sliders edit
  const generatorName = h("strong", {});
  // Photos go into StyleGAN2 generators only (the e4e encoder and latent.pt speak its W+).
  const familyNote = h("p", { class: "photo-family-note", "data-role": "photo-family", hidden: true });
  const status = h("p", { class: "photo-status", role: "status", "aria-live": "polite" });
  const steps = h("span", { class: "photo-steps muted small" });
  const bar = h("div", { class: "progress-slot" });
  const cancelButton = h("button", { type: "button", class: "button button-small button-danger", hidden: true }, "Cancel");
  const failure = h("div", { class: "photo-failure", role: "alert", hidden: true });
  const runFoot = h("div", { class: "photo-run-foot", hidden: true }, steps, cancelButton);
  const run = h("div", { class: "photo-run", hidden: true }, status, bar, runFoot);
  const element = h("section", { class: "panel photo-card", "aria-labelledby": "photo-heading", hidden: true },
    h("div", { class: "panel-head" }, h("h2", { id: "photo-heading" }, "Try it on a photo")),
    h("p", { class: "muted small photo-intro" }, "Your photo is put into the base generator ", generatorName,
      " once; then this job's adapted generator draws it. Other jobs adapted from the same generator can reuse it."),
    familyNote, form.element, list.element, run, failure, result.element, edits.element);

  function setBusy(value) {
    busy = value;
    form.setBusy(value);
    list.setBusy(value);
    edits.setBusy(value);
  }

  function showProgress(job, kind) {
    run.hidden = false;
    setText(status, statusText(job, kind, generator));
    setText(steps, stepsText(job, kind));
    bar.replaceChildren(progressBar(job, { label: kind === "edit" ? "Drawing progress" : "Refinement progress" }));
    cancelButton.hidden = !ACTIVE.has(job.status);
    runFoot.hidden = false;
  }

  function showFailure(strong, message, code, hint, err) {
    failure.hidden = false;
    // replaceChildren writes a null argument as the text "null": leave absent parts out.
    const parts = [h("strong", {}, strong), " ", message || "The worker gave no reason."];
    if (code) parts.push(h("span", { class: "error-code" }, ` (${code})`));
    if (hint) parts.push(h("div", { class: "small" }, hint));
    const details = failureDetails(err);
    if (details) parts.push(details);
    failure.replaceChildren(...parts);
  }

  /** Resolves with the job once it is finished; rejects with Stopped when stop() ends it. */
  function followUntilDone(id, load, onJob) {
    return new Promise((resolve, reject) => {
      let settled = false;
      let stopFollow = () => {};
      const settle = (fn, value) => {
        if (settled) return;
        settled = true;
        stopFollow();
        if (following && following.id === id) following = null;
        fn(value);
      };
      following = { id, stop: () => settle(reject, new Stopped()) };
      stopFollow = followJob(id, {
        load: () => load(id),
        onJob: (job) => { onJob(job); if (FINISHED.has(job.status)) settle(resolve, job); },
        onError: (err) => {
          if (err.status === 404) settle(reject, err);
          else setText(status, `Connection trouble (${err.message}); still trying…`);
        },
      });
    });
  }

  /** Follow an inversion to its end, then ask for the edit and follow that. */
  async function tryInversion(inversion, name, attempt) {
    const current = () => attempt === tries;
    result.showInversion(inversion, name);
    result.showEdit(null);
    let inv = inversion;
    if (!FINISHED.has(inv.status)) {
      inv = await followUntilDone(inv.id, api.getInversion, (job) => {
        if (!current()) return;
        showProgress(job, "inversion");
        result.showInversion(job, name);
      });
    }
    if (!current()) return;
    result.showInversion(inv, name);
    if (inv.status !== "succeeded") {
      forgetPhoto(inv.id);
      list.show(generator);
      result.showEdit(null, "No code to draw.");
      if (inv.status === "canceled") return finish("The inversion was canceled.");
      const err = inv.error || {};
      // No face found, or no face detector on this server: an aligned crop needs neither.
      const aligning = inv.params && inv.params.align !== false;
      const hint = aligning && (err.code === "invalid_input" || err.code === "model_unavailable")
        ? "If the photo is a face crop already, tick “Already aligned” and start again." : null;
      showFailure("The photo could not be put into the generator.", err.message, err.code, hint, err);
      return finish("The inversion failed.");
    }
    rememberPhoto({ id: inv.id, generator: inv.params.generator, thumb_url: inv.aligned_url, name, created_at: inv.created_at });
    list.show(generator);
    drawn = inv;
    edits.reset();
    await drawEdit(inv, "", attempt);
  }

  /** Ask for the edit of `inv` through this job with `editText` ("" : none), follow it. */
  async function drawEdit(inv, editText, attempt) {
    const current = () => attempt === tries;
    result.showEdit(null, "Drawing…");
    let edit = await api.createEdit(jobId, inv.id, editText);
    if (!current()) return;
    if (!FINISHED.has(edit.status)) {
      showProgress(edit, "edit");
      edit = await followUntilDone(edit.id, api.getEdit, (job) => {
        if (!current()) return;
        showProgress(job, "edit");
        result.showEdit(job, "Drawing…");
      });
    }
    if (!current()) return;
    result.showEdit(edit);
    edits.setReady(true);
    if (edit.status === "succeeded") return finish(editText ? `Done: your photo with ${editText} through this job's generator is below.` : "Done: your photo through this job's generator is below.");
    if (edit.status === "canceled") return finish("Drawing the photo was canceled.");
    const err = edit.error || {};
    showFailure("This job's generator could not draw the photo.", err.message, err.code, null, err);
    return finish("Drawing the photo failed.");
  }

  function finish(text) {
    setBusy(false);
    runFoot.hidden = true;
    setText(steps, "");
    bar.replaceChildren();
    run.hidden = false;
    setText(status, text);
  }

  function begin(text) {
    tries += 1;
    if (following) following.stop();
    failure.hidden = true;
    result.clear();
    drawn = null;
    edits.setReady(false);
    setBusy(true);
    run.hidden = false;
    bar.replaceChildren();
    setText(steps, "");
    runFoot.hidden = true;
    setText(status, text);
    return tries;
  }

  /** Errors of the try's requests (the edit's POST, a vanished inversion), said as they are. */
  function failed(err, attempt) {
    if (err instanceof Stopped || attempt !== tries) return;
    showFailure("Could not finish the try.", err.message, err.status ? `HTTP ${err.status}` : null);
    finish("Stopped.");
  }

  async function startUpload({ file, align, refine_steps }) {
    if (busy || !generator) return;
    const attempt = begin("Uploading the photo…");
    let inversion;
    try {
      const encoder = noEncoder.includes(generator) ? "none" : "auto";
      inversion = await api.createInversion(file, { generator, encoder, align, refine_steps });
    } catch (err) {
      if (attempt !== tries) return;
      finish("The photo was not accepted.");
      run.hidden = true;
      // 413 (too large) and 415 are about the file too; a refused photo's 422 names it.
      const field = err.status === 413 || err.status === 415 ? "file" : null;
      form.showErrors(!field && err.fieldErrors && err.fieldErrors.length ? err.fieldErrors : [{ field, message: err.message }]);
      return;
    }
    if (attempt !== tries) return;
    rememberPhoto({ id: inversion.id, generator, thumb_url: inversion.photo_url, name: file.name, created_at: inversion.created_at });
    showProgress(inversion, "inversion");
    try {
      await tryInversion(inversion, file.name, attempt);
    } catch (err) {
      failed(err, attempt);
    }
  }

  /** The sliders' edits of the photo drawn last: only the adapted picture is new. */
  async function startEdits(text) {
    if (busy || !drawn) return;
    tries += 1;
    const attempt = tries;
    if (following) following.stop();
    failure.hidden = true;
    setBusy(true);
    run.hidden = false;
    bar.replaceChildren();
    runFoot.hidden = true;
    setText(status, text ? `Drawing your photo with ${text}…` : "Drawing your photo without edits…");
    try {
      await drawEdit(drawn, text, attempt);
    } catch (err) {
      if (err.fieldErrors && err.fieldErrors.length) {
        showFailure("The edits were refused.", err.fieldErrors.map((e) => e.message).join(" "), `HTTP ${err.status}`);
        finish("Stopped.");
        return;
      }
      failed(err, attempt);
    }
  }

  async function startRemembered(entry) {
    if (busy) return;
    const attempt = begin(`Drawing ${entry.name || "your photo"} with this job's generator…`);
    try {
      const inversion = await api.getInversion(entry.id);
      if (attempt !== tries) return;
      if (ACTIVE.has(inversion.status)) showProgress(inversion, "inversion");
      await tryInversion(inversion, entry.name, attempt);
    } catch (err) {
      if (err.status === 404) {
        forgetPhoto(entry.id);
        list.show(generator);
      }
      failed(err, attempt);
    }
  }

  cancelButton.addEventListener("click", async () => {
    if (!following) return;
    cancelButton.disabled = true;
    try {
      await api.cancelJob(following.id);
      setText(status, "Canceling…");
    } catch (err) {
      // 409: it finished meanwhile; the follower sees the final state by itself.
      if (err.status !== 409) setText(status, `Could not cancel: ${err.message}`);
    } finally {
      cancelButton.disabled = false;
    }
  });

  function update(job) {
    const show = ["adapt", "domain"].includes(job.kind || "adapt") && job.status === "succeeded" && Boolean(job.params && job.params.generator);
    element.hidden = !show;
    if (!show || job.params.generator === generator) return;
    generator = job.params.generator;
    setText(generatorName, generator);
    edits.setGenerator(generator);
    list.show(generator);
    const asked = generator;
    api.generators().then((body) => {
      const entry = listOf(body).find((g) => g.name === asked);
      const family = entry && entry.family;
      const other = asked === generator && family && family !== "stylegan2";
      familyNote.hidden = !other;
      form.element.hidden = Boolean(other);
      if (other) list.element.hidden = true; // else the list shows itself when it has photos
      if (other) setText(familyNote, `${asked} is a ${family} generator: photos go into StyleGAN2 generators only (the photo encoder speaks StyleGAN2's latent space). Explore it with seeds instead.`);
    }, () => {});
  }

  /** The view is closing: stop following (the service finishes the work regardless). */
  function stop() {
    tries += 1;
    if (following) following.stop();
  }

  return { element, update, stop };
}
