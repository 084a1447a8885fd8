// "Show it": example images of the target (and, folded away, of the source) beside the text
// prompts ("Describe it"). Images are uploaded the moment they are dropped or picked
// (POST /images), so a refused file is named at once and Start only sends their ids
// (target_images, source_images). When the target has both text and images, a slider sets
// the images' share (image_weight). The fields' names, limits and help come from
// GET /params like every other field; this module only owns how they are edited.

import { api, apiUrl } from "./api.js";
import { h, setText, uid } from "./dom.js";
import { PHOTO_TYPES, photoProblem } from "./job/photo-form.js";
import { formatNumber } from "./schema.js";

export const IMAGE_FIELDS = ["target_images", "source_images"];
export const OWNED_FIELDS = [...IMAGE_FIELDS, "image_weight"]; // the generic form leaves these alone

/** The URL of an uploaded image (the pool's copy). */
export const poolImageUrl = (id) => apiUrl(`images/${encodeURIComponent(id)}.png`);

/**
 * One side's images: a drop zone with a file picker and thumbnails with remove buttons.
 * spec: the field's entry of GET /params. Returns {element, control, onChange(fn)};
 * control is what form.js keeps for every field (get/set/error/focus/reset/check).
 */
function imagesField(spec, { title, note }) {
  let ids = [];
  let pending = 0; // uploads on their way
  const listeners = [];
  const max = spec.maxItems || 16;
  const buttonId = uid(`${spec.name}-choose`);
  const hintId = uid(`${spec.name}-hint`);
  const errorId = uid(`${spec.name}-error`);
  const input = h("input", { type: "file", multiple: true, accept: PHOTO_TYPES.join(","), hidden: true, tabindex: "-1", "data-role": "image-input" });
  // The button carries the field's declared label (and so its name); its text says what it does.
  const choose = h("button", { type: "button", id: buttonId, class: "button button-small", "aria-describedby": `${hintId} ${errorId}` }, "Choose images…");
  const status = h("span", { class: "muted small", role: "status" });
  const thumbs = h("ul", { class: "example-thumbs", "aria-label": `${title}: chosen images` });
  const error = h("div", { class: "field-error", id: errorId, "data-error-for": spec.name });
  const zone = h("div", { class: "drop-zone example-zone", "data-role": "drop-zone" },
    h("div", { class: "drop-text" },
      h("p", { class: "drop-title" }, h("strong", {}, "Drop images here"), h("span", { class: "muted" }, " or "), choose),
      h("span", { class: "hint", id: hintId }, `${note} JPEG, PNG or WebP; up to ${max}. `,
        spec.help ? h("span", { class: "muted" }, `(${spec.help})`) : null),
      status),
    input);
  const element = h("div", { class: "field field-wide examples-field", "data-field": spec.name },
    h("label", { for: buttonId }, spec.label || title), zone, thumbs, error);

  const changed = () => listeners.forEach((fn) => fn(ids));
  const showError = (msg) => {
    setText(error, msg || "");
    zone.classList.toggle("has-error", Boolean(msg));
  };
  const showStatus = () => setText(status, pending ? "Uploading…" : ids.length ? `${ids.length} image${ids.length === 1 ? "" : "s"}` : "");

  function render() {
    thumbs.replaceChildren(...ids.map((id, i) => h("li", { class: "example-thumb", "data-image": id },
      h("img", { src: poolImageUrl(id), alt: `${title} image ${i + 1}`, loading: "lazy" }),
      h("button", { type: "button", class: "example-remove", "aria-label": `Remove ${title.toLowerCase()} image ${i + 1}`, title: "Remove",
        onclick: () => { ids = ids.filter((x) => x !== id); render(); changed(); choose.focus(); } }, "×"))));
    showStatus();
  }

  async function add(files) {
    showError("");
    const list = Array.from(files || []);
    if (!list.length) return;
    const problem = list.map((f) => photoProblem(f)).find(Boolean);
    if (problem) return showError(problem.replace("the photo", "an image"));
    if (ids.length + list.length > max) return showError(`at most ${max} images (${ids.length} chosen)`);
    pending += 1;
    showStatus();
    try {
      const uploaded = await api.uploadImages(list);
      for (const item of uploaded.data || []) if (!ids.includes(item.id)) ids.push(item.id);
      render();
      changed();
    } catch (err) {
      showError(err.fieldErrors && err.fieldErrors.length ? err.fieldErrors.map((e) => e.message).join("; ") : err.message);
    } finally {
      pending -= 1;
      showStatus();
    }
  }

  choose.addEventListener("click", () => input.click());
  input.addEventListener("change", () => { add(input.files); input.value = ""; });
  zone.addEventListener("click", (e) => { if (e.target === zone) input.click(); });
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
    add(e.dataTransfer && e.dataTransfer.files);
  });

  const control = {
    container: element,
    get: () => [...ids],
    set: (v) => { ids = Array.isArray(v) ? v.filter((x) => typeof x === "string") : []; render(); changed(); },
    check: () => (pending ? `${spec.name}: wait until the images are uploaded` : null),
    error: showError,
    focus: () => choose.focus(),
    reset: () => showError(""),
  };
  return { element, control, onChange: (fn) => listeners.push(fn), count: () => ids.length };
}

/** "Images 60% · text 40%". */
const shareText = (w) => `Images ${Math.round(w * 100)}% · text ${Math.round((1 - w) * 100)}%`;

function weightField(spec) {
  const id = uid(spec.name);
  const hintId = uid(`${spec.name}-hint`);
  const value = typeof spec.default === "number" ? spec.default : 0.5;
  const input = h("input", { type: "range", id, name: spec.name, min: spec.min ?? 0, max: spec.max ?? 1, step: 0.05, value: String(value), "aria-describedby": hintId });
  const out = h("output", { for: id, class: "small" }, shareText(value));
  const error = h("div", { class: "field-error", "data-error-for": spec.name });
  const chip = `${formatNumber(spec.min ?? 0)} – ${formatNumber(spec.max ?? 1)} · default ${formatNumber(value)}`;
  const element = h("div", { class: "field image-weight", "data-field": spec.name, hidden: true },
    h("label", { for: id }, spec.label || "Image weight"), input, out,
    h("div", { class: "hint", id: hintId }, h("span", { class: "hint-range" }, chip), spec.help ? ` ${spec.help}` : null), error);
  input.addEventListener("input", () => setText(out, shareText(Number(input.value))));
  const set = (v) => { input.value = String(typeof v === "number" ? v : value); setText(out, shareText(Number(input.value))); };
  const control = {
    container: element,
    get: () => (element.hidden ? undefined : Number(input.value)),
    set,
    error: (msg) => setText(error, msg || ""),
    focus: () => input.focus(),
    reset: () => set(value),
  };
  return { element, control };
}

/**
 * The image half of the prompts. fields: GET /params' specs by name; prompts: form.js's
 * controls of source_text and target_text (their checks are relaxed: a target may be
 * images only, and then needs no source text). Returns {element, controls} or null when
 * the service has no image fields.
 */
export function examplesBlock(fields, prompts) {
  if (!fields.target_images) return null;
  const target = imagesField(fields.target_images, { title: "Target", note: "Pictures of what it should make." });
  const source = fields.source_images
    ? imagesField(fields.source_images, { title: "Source", note: "Pictures of what it makes now; without them, its own samples." })
    : null;
  const weight = fields.image_weight ? weightField(fields.image_weight) : null;
  const textOf = (name) => (prompts[name] ? String(prompts[name].get() || "").trim() : "");

  const update = () => {
    if (weight) weight.element.hidden = !(textOf("target_text") && target.count());
  };
  target.onChange(update);
  if (prompts.target_text && prompts.target_text.input) prompts.target_text.input.addEventListener("input", update);
  if (prompts.target_text) {
    prompts.target_text.check = () => (textOf("target_text") || target.count() ? null : "target_text must not be empty (or show example images)");
  }
  if (prompts.source_text) {
    prompts.source_text.check = () => (textOf("source_text") || !textOf("target_text") ? null : "source_text must not be empty");
  }

  // Folded away: most jobs leave the source to the generator's own samples.
  const sourceToggle = source ? h("button", { type: "button", class: "button button-small button-quiet examples-source-toggle", "aria-expanded": "false" }, "Source images (optional)") : null;
  const sourceBox = source ? h("div", { class: "examples-source" }, sourceToggle, source.element) : null;
  const openSource = (open) => {
    sourceToggle.setAttribute("aria-expanded", String(open));
    source.element.hidden = !open;
  };
  if (source) {
    source.element.id = uid("source-images");
    sourceToggle.setAttribute("aria-controls", source.element.id);
    sourceToggle.addEventListener("click", () => openSource(sourceToggle.getAttribute("aria-expanded") !== "true"));
    openSource(false);
  }
  const element = h("section", { class: "examples", "aria-label": "Show it: example images" },
    h("h3", { class: "examples-title" }, "Show it ", h("span", { class: "muted small" }, "— with example images, instead of or besides the text")),
    target.element, weight && weight.element, sourceBox);
  const controls = { target_images: target.control };
  if (source) {
    controls.source_images = source.control;
    source.onChange((ids) => { if (ids.length) openSource(true); });
  }
  if (weight) controls.image_weight = weight.control;
  update();
  return { element, controls, update };
}
