// The form of "Try it on a photo": a drop zone whose button opens the file picker, "already
// aligned", the refinement steps and Start. It checks what it can before anything is sent
// (the service checks again and its refusals are shown as they come: showErrors).

import { fill, h, setText, uid } from "../dom.js";
import { checkNumber, rangeText } from "../schema.js";

export const PHOTO_TYPES = ["image/jpeg", "image/png", "image/webp"];
// What the service accepts, as GET /inversions/params serves it (applyLimits): its photo
// size cap and the declaration of refine_steps (nada/photo_params.py: range, default). The
// page has no copy of its own: until the service answers, nothing is checked here and the
// service's defaults apply; larger photos are refused here once the cap is known, before a
// long upload ends in 413. The service checks everything again (413, 422).
const LIMITS = {
  maxPhotoMb: null, // NADA_MAX_PHOTO_MB
  refineSteps: null, // the served field: {name, type, min, max, default, ...}
};

/** Take the service's limits (the body of GET /inversions/params). */
export function applyLimits(params) {
  if (params && typeof params.max_photo_mb === "number") LIMITS.maxPhotoMb = params.max_photo_mb;
  const steps = params && (params.fields || []).find((f) => f.name === "refine_steps");
  if (steps) LIMITS.refineSteps = steps;
}

/** 2_400_000 -> "2.3 MiB"; 5120 -> "5 KiB". */
export function sizeText(bytes) {
  if (bytes >= 1 << 20) return `${+(bytes / (1 << 20)).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KiB`;
  return `${bytes} bytes`;
}

/** Why this file cannot be sent, worded like the service; null when it may be. */
export function photoProblem(file) {
  if (!file) return "choose a photo first";
  if (file.type && !PHOTO_TYPES.includes(file.type)) {
    return `the photo must be a JPEG, PNG or WebP image (got ${file.type})`;
  }
  if (LIMITS.maxPhotoMb !== null && file.size > LIMITS.maxPhotoMb * (1 << 20)) {
    return `the photo is larger than the ${LIMITS.maxPhotoMb} MiB limit (${sizeText(file.size)})`;
  }
  if (file.size === 0) return "the photo is an empty file";
  return null;
}

/**
 * onSubmit({file, align, refine_steps}) is called once the page's checks pass (refine_steps
 * undefined: left to the service's default).
 * Returns {element, setBusy(bool), showErrors([{field, message}]), focus()}.
 */
export function photoForm({ onSubmit }) {
  let file = null;
  let previewUrl = null;
  const ids = { file: uid("photo-file"), fileInfo: uid("photo-file-info"), fileError: uid("photo-file-error"),
    steps: uid("photo-steps"), stepsHint: uid("photo-steps-hint"), stepsError: uid("photo-steps-error"), alignHint: uid("photo-align-hint"), alignNote: uid("photo-align-note") };

  // The native input stays out of sight and out of the tab order; the button opens it.
  const input = h("input", { type: "file", id: ids.file, name: "file", accept: PHOTO_TYPES.join(","), hidden: true, tabindex: "-1" });
  const chooseButton = h("button", { type: "button", class: "button", "aria-describedby": `${ids.fileInfo} ${ids.fileError}` }, "Choose a photo…");
  const preview = h("img", { class: "drop-preview", alt: "", hidden: true });
  const fileInfo = h("span", { id: ids.fileInfo, class: "drop-file small" }, "No photo chosen.");
  const fileError = h("p", { id: ids.fileError, class: "field-error" });
  const typesHint = h("span", { class: "hint" });
  const zone = h("div", { class: "drop-zone", "data-role": "drop-zone" },
    preview,
    h("div", { class: "drop-text" },
      h("p", { class: "drop-title" }, h("strong", {}, "Drop a photo here"), h("span", { class: "muted" }, " or "), chooseButton),
      fileInfo,
      typesHint),
    input);

  const alignBox = h("input", { type: "checkbox", id: uid("photo-aligned"), name: "aligned", "aria-describedby": `${ids.alignHint} ${ids.alignNote}` });
  // Said when this server cannot align faces (no face detector): why, and what it needs.
  const alignNote = h("span", { id: ids.alignNote, class: "hint photo-align-note", "data-role": "align-note", hidden: true });
  const steps = h("input", { type: "number", id: ids.steps, name: "refine_steps", step: 1,
    inputmode: "numeric", "aria-describedby": `${ids.stepsHint} ${ids.stepsError}` });
  const stepsRange = h("span", { class: "hint-range" });
  const stepsError = h("span", { id: ids.stepsError, class: "field-error" });
  const stepsField = h("div", { class: "field", "data-field": "refine_steps" },
    h("label", { for: ids.steps }, "Refinement steps"), steps,
    h("span", { id: ids.stepsHint, class: "hint" }, "Fewer = faster, more = closer likeness. ",
      stepsRange),
    stepsError);
  const startButton = h("button", { type: "submit", class: "button button-primary" }, "Start");
  const formError = h("div", { class: "form-error", role: "alert", hidden: true });
  const element = h("form", { class: "photo-form", novalidate: true, "aria-label": "Your photo" },
    h("div", { class: "field", "data-field": "file" }, zone, fileError),
    h("div", { class: "photo-options" },
      h("div", { class: "field field-inline", "data-field": "align" },
        alignBox, h("label", { for: alignBox.id }, "Already aligned (a cropped face)"),
        h("span", { id: ids.alignHint, class: "hint" }, "Skips finding and aligning the face: the photo is used as it is, cropped to its centre square."),
        alignNote),
      stepsField),
    formError,
    h("div", { class: "form-actions" }, startButton));

  function setFieldError(field, message) {
    if (field === "file") {
      setText(fileError, message || "");
      zone.classList.toggle("has-error", Boolean(message));
    } else if (field === "refine_steps") {
      setText(stepsError, message || "");
      stepsField.classList.toggle("has-error", Boolean(message));
      if (message) steps.setAttribute("aria-invalid", "true");
      else steps.removeAttribute("aria-invalid");
    }
  }

  function clearErrors() {
    setFieldError("file", "");
    setFieldError("refine_steps", "");
    formError.hidden = true;
    formError.replaceChildren();
  }

  /** Errors from the service ([{field, message}]): under the file or the steps, else above Start. */
  function showErrors(errors) {
    clearErrors();
    const rest = [];
    for (const e of errors) {
      // A refused photo is ['body', 'file']; a malformed `params` text field is about the photo's request too.
      if (e.field === "file") setFieldError("file", e.message);
      else if (e.field === "refine_steps") setFieldError("refine_steps", e.message);
      else rest.push(e.message);
    }
    if (rest.length) {
      formError.hidden = false;
      fill(formError, rest.length === 1 ? rest[0] : h("ul", {}, rest.map((m) => h("li", {}, m))));
    }
    if (fileError.textContent) chooseButton.focus();
    else if (stepsError.textContent) steps.focus();
  }

  function choose(chosen) {
    clearErrors();
    file = chosen || null;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    const problem = file ? photoProblem(file) : null;
    preview.hidden = true;
    if (file && !problem) {
      previewUrl = URL.createObjectURL(file);
      preview.src = previewUrl;
      preview.alt = `Preview of ${file.name || "the photo"}`;
      preview.hidden = false;
    }
    setText(fileInfo, file ? `${file.name || "photo"} · ${sizeText(file.size)}` : "No photo chosen.");
    if (problem) setFieldError("file", problem);
  }

  chooseButton.addEventListener("click", () => input.click());
  input.addEventListener("change", () => choose(input.files && input.files[0]));
  zone.addEventListener("click", (e) => { if (e.target === zone || e.target === preview) input.click(); });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (e) => {
      if (!e.dataTransfer || !Array.from(e.dataTransfer.types || []).includes("Files")) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
      zone.classList.add("drag-over");
    });
  }
  zone.addEventListener("dragleave", (e) => { if (!zone.contains(e.relatedTarget)) zone.classList.remove("drag-over"); });
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("drag-over");
    const dropped = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
    if (dropped) choose(dropped);
  });
  steps.addEventListener("input", () => setFieldError("refine_steps", ""));

  element.addEventListener("submit", (e) => {
    e.preventDefault();
    clearErrors();
    const fileProblem = photoProblem(file);
    const spec = LIMITS.refineSteps; // unknown yet: the service checks (and defaults) it
    const stepsProblem = spec ? checkNumber(spec, steps.value) : null;
    if (fileProblem) setFieldError("file", fileProblem);
    if (stepsProblem) setFieldError("refine_steps", stepsProblem);
    if (fileProblem) return chooseButton.focus();
    if (stepsProblem) return steps.focus();
    const text = steps.value.trim();
    onSubmit({ file, align: !alignBox.checked, refine_steps: text === "" ? undefined : Number(text) });
  });

  function setBusy(busy) {
    startButton.disabled = busy;
    setText(startButton, busy ? "Working…" : "Start");
  }

  let stepsTouched = false;
  steps.addEventListener("input", () => { stepsTouched = true; });

  /** Show the current LIMITS (again, after the service's arrive). */
  function showLimits() {
    const cap = LIMITS.maxPhotoMb !== null ? `, at most ${LIMITS.maxPhotoMb} MiB` : "";
    setText(typesHint, `JPEG, PNG or WebP${cap}: a face, ideally looking at the camera.`);
    const spec = LIMITS.refineSteps;
    if (!spec) return;
    setText(stepsRange, [rangeText(spec), spec.default !== undefined ? `default ${spec.default}` : ""].filter(Boolean).join(" · "));
    if (spec.min !== undefined) steps.min = String(spec.min);
    if (spec.max !== undefined) steps.max = String(spec.max);
    if (!stepsTouched && spec.default !== undefined) steps.value = String(spec.default);
  }
  showLimits();

  /** params: the body of GET /inversions/params. */
  function setLimits(params) {
    applyLimits(params);
    showLimits();
    if (file) choose(file); // a photo chosen meanwhile is checked against the real cap
  }

  /** photo: GET /weights' `photo`. Without a face detector, only aligned crops can be used:
   * "Already aligned" is turned on and kept on, and the note says what aligning needs. */
  function setAlignment(photo) {
    const can = !photo || photo.align !== false;
    alignNote.hidden = can;
    setText(alignNote, can ? "" : photo.align_note || "This server cannot align faces.");
    if (!can) alignBox.checked = true;
    alignBox.disabled = !can;
  }

  return { element, setBusy, showErrors, setLimits, setAlignment, focus: () => chooseButton.focus() };
}
