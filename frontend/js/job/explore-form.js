// The form of "Explore": what to draw (seeds, style mixing, a video), the truncation and
// domain strength sliders, and each mode's fields. Ranges and defaults come from GET /renders/params (setFields); the
// page checks the seed lists' syntax, the service everything (its 422s are shown under
// their fields: showErrors).

import { h, setText, uid } from "../dom.js";

export const MODES = [
  { value: "seeds", label: "Seeds side by side" },
  { value: "mix", label: "Style mixing" },
  { value: "video", label: "Video" },
  { value: "domains", label: "Through domains" },
];
const VIDEO_MODES = ["video", "domains"]; // the modes that make a video (frames, fps, format)

// The service's defaults until GET /renders/params answers (nada/render_params.py).
const DEFAULTS = { truncation: 0.7, strength: 1, crossover: 4, frames: 24, fps: 24 };
const MAX_SEED = 2 ** 31 - 1;

/** "0-3, 9" -> [0, 1, 2, 3, 9]; throws Error naming what is wrong. */
export function parseSeeds(text) {
  const seeds = [];
  for (const part of String(text).split(",").map((p) => p.trim()).filter(Boolean)) {
    const range = /^(\d+)\s*-\s*(\d+)$/.exec(part);
    if (range) {
      const [first, last] = [Number(range[1]), Number(range[2])];
      if (last < first || last - first > 64) throw new Error(`“${part}” is not a short rising range`);
      for (let s = first; s <= last; s += 1) seeds.push(s);
    } else if (/^\d+$/.test(part)) seeds.push(Number(part));
    else throw new Error(`“${part}” is not a seed (whole numbers: 1, 5, 9 or 0-3)`);
  }
  if (!seeds.length) throw new Error("name at least one seed");
  const big = seeds.find((s) => s > MAX_SEED);
  if (big !== undefined) throw new Error(`seeds are 0..${MAX_SEED} (got ${big})`);
  return seeds;
}

/** The W+ entries of a StyleGAN2 generator drawing `size` px: two per resolution from 8 px
 * up, and two at 4 px (1024 px: 18). Crossover is below it. */
export function wplusCount(size) {
  return 2 * Math.log2(size) - 2;
}

/** The size in px of generator `name` ("random-32", or a name GET /generators lists), or null. */
export function generatorSize(name, catalogue) {
  const random = /^random-(\d+)$/.exec(name || "");
  if (random) return Number(random[1]);
  const found = ((catalogue && catalogue.data) || []).find((g) => g.name === name);
  return found ? found.size : null;
}

function field(name, label, input, hint) {
  const error = h("span", { class: "field-error", id: uid(`explore-${name}-error`) });
  input.setAttribute("aria-describedby", error.id);
  const hintEl = h("span", { class: "hint" }, hint || "");
  const element = h("div", { class: "field", "data-field": name }, h("label", { for: input.id }, label), input, hintEl, error);
  return { name, input, error, hint: hint || "", hintEl, element };
}

function textInput(name, value) {
  return h("input", { type: "text", id: uid(`explore-${name}`), name, value, autocomplete: "off", spellcheck: "false" });
}

function numberInput(name, value) {
  return h("input", { type: "number", id: uid(`explore-${name}`), name, value: String(value), step: "1" });
}

/**
 * onSubmit(body) is called with the request body of POST /jobs/{id}/renders once the page's
 * checks pass. Returns {element, setBusy(bool), showErrors([{field, message}]), setFields(params),
 * setGeneratorSize(px), setBlendChoices([{id, label}])}.
 */
export function exploreForm({ onSubmit }) {
  const name = uid("explore-mode");
  const radios = MODES.map((m) => h("input", { type: "radio", name, value: m.value, checked: m.value === "seeds" }));
  const modeBox = h("fieldset", { class: "explore-modes" }, h("legend", {}, "Draw"),
    MODES.map((m, i) => h("label", { class: "explore-mode" }, radios[i], ` ${m.label}`)));

  const seeds = field("seeds", "Seeds", textInput("seeds", "0-3"), "One column per seed: 1, 5, 9 or 0-3.");
  const rows = field("row_seeds", "Row seeds", textInput("row_seeds", "0-2"), "Coarse styles: pose, face shape.");
  const cols = field("column_seeds", "Column seeds", textInput("column_seeds", "3-6"), "Fine styles: colours, texture.");
  const crossover = field("crossover", "Crossover", numberInput("crossover", DEFAULTS.crossover), "");
  const keyframes = field("keyframes", "Keyframe seeds", textInput("keyframes", "0-2"), "The video passes through them in order.");
  const domainSeeds = field("domain_seeds", "Video seeds", textInput("domain_seeds", "0-2"), "Fixed while the weights move: the base generator, this job's domain, then the blended job's.");
  const frames = field("frames", "Frames per transition", numberInput("frames", DEFAULTS.frames), "");
  const fps = field("fps", "Frames per second", numberInput("fps", DEFAULTS.fps), "");
  const formatSelect = h("select", { id: uid("explore-format"), name: "format" },
    h("option", { value: "mp4" }, "MP4 (H.264)"), h("option", { value: "gif" }, "GIF"));
  const format = field("format", "Format", formatSelect, "");
  const truncInput = h("input", { type: "range", id: uid("explore-truncation"), name: "truncation", min: "0", max: "1.5", step: "0.05", value: String(DEFAULTS.truncation) });
  const truncValue = h("output", { class: "explore-truncation-value", for: truncInput.id }, String(DEFAULTS.truncation));
  const truncation = field("truncation", "Truncation", truncInput, "Lower: more typical pictures; 1: the whole range; above 1: wilder.");
  truncation.element.querySelector("label").append(" ", truncValue);
  truncInput.addEventListener("input", () => setText(truncValue, Number(truncInput.value).toFixed(2)));
  // The domain's strength: the adapted row's weights, base (0) → adapted (1) and beyond.
  const strengthInput = h("input", { type: "range", id: uid("explore-strength"), name: "strength", min: "0", max: "1.5", step: "0.05", value: String(DEFAULTS.strength) });
  const strengthValue = h("output", { class: "explore-strength-value", for: strengthInput.id }, DEFAULTS.strength.toFixed(2));
  const strength = field("strength", "Strength", strengthInput, "The adapted row's domain: 0 draws the base generator, 1 this job's, more exaggerates it.");
  strength.element.querySelector("label").append(" ", strengthValue);
  strengthInput.addEventListener("input", () => setText(strengthValue, Number(strengthInput.value).toFixed(2)));

  // Blend: another finished job of this token on the same base generator, its domain added.
  const blendSelect = h("select", { id: uid("explore-blend"), name: "blend" }, h("option", { value: "" }, "None"));
  const blend = field("blend", "Blend with", blendSelect, "Another finished job on the same base generator: its domain is added to this one's.");
  const blendStrengthInput = h("input", { type: "number", id: uid("explore-blend-strength"), name: "blend_strength", value: "1", min: "0", max: "1.5", step: "0.05" });
  const blendStrength = field("blend_strength", "Its strength", blendStrengthInput, "");
  const blendBox = h("div", { class: "explore-fields explore-blend", hidden: true }, blend.element, blendStrength.element);

  const all = [seeds, rows, cols, crossover, keyframes, domainSeeds, frames, fps, format, truncation, strength, blend, blendStrength];
  const groups = {
    seeds: h("div", { class: "explore-fields", "data-mode": "seeds" }, seeds.element),
    mix: h("div", { class: "explore-fields", "data-mode": "mix", hidden: true }, rows.element, cols.element, crossover.element),
    video: h("div", { class: "explore-fields", "data-mode": "video", hidden: true }, keyframes.element),
    domains: h("div", { class: "explore-fields", "data-mode": "domains", hidden: true }, domainSeeds.element),
  };
  const clip = h("div", { class: "explore-fields", "data-mode": VIDEO_MODES.join(" "), hidden: true }, frames.element, fps.element, format.element);
  const button = h("button", { type: "submit", class: "button button-primary" }, "Render");
  const formError = h("div", { class: "form-error", role: "alert", hidden: true });
  const element = h("form", { class: "explore-form", novalidate: true, "aria-label": "What to draw" },
    modeBox, truncation.element, strength.element, blendBox, Object.values(groups), clip, formError, h("div", { class: "form-actions" }, button));

  const mode = () => radios.find((r) => r.checked).value;
  function showMode() {
    for (const [key, group] of Object.entries(groups)) group.hidden = key !== mode();
    clip.hidden = !VIDEO_MODES.includes(mode());
    setText(button, VIDEO_MODES.includes(mode()) ? "Make the video" : "Render");
  }
  radios.forEach((r) => r.addEventListener("change", showMode));

  function setError(name, message) {
    const f = all.find((x) => x.name === name);
    if (!f) return false;
    setText(f.error, message || "");
    f.element.classList.toggle("has-error", Boolean(message));
    if (message) f.input.setAttribute("aria-invalid", "true");
    else f.input.removeAttribute("aria-invalid");
    return true;
  }

  function clearErrors() {
    all.forEach((f) => setError(f.name, ""));
    formError.hidden = true;
    setText(formError, "");
  }

  function showErrors(errors) {
    clearErrors();
    const loose = [];
    for (const e of errors) if (!(e.field && setError(e.field, e.message))) loose.push(e.message);
    if (loose.length) {
      formError.hidden = false;
      setText(formError, loose.join("; "));
    }
    const first = all.find((f) => f.error.textContent);
    if (first) first.input.focus();
  }

  function seedList(f) {
    try {
      return parseSeeds(f.input.value);
    } catch (err) {
      setError(f.name, err.message);
      return null;
    }
  }

  element.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors();
    const body = { mode: mode(), truncation: Number(truncInput.value), strength: Number(strengthInput.value) };
    const lists = { seeds: [seeds], mix: [rows, cols], video: [keyframes], domains: [domainSeeds] }[body.mode];
    for (const f of lists) body[f.name] = seedList(f);
    if (body.mode === "mix") body.crossover = Number(crossover.input.value);
    if (VIDEO_MODES.includes(body.mode)) Object.assign(body, { frames: Number(frames.input.value), fps: Number(fps.input.value), format: formatSelect.value });
    if (blendSelect.value) body.blend = [{ job_id: blendSelect.value, strength: Number(blendStrengthInput.value) }];
    const bad = all.find((f) => f.error.textContent);
    if (bad) { bad.input.focus(); return; }
    onSubmit(body);
  });
  all.forEach((f) => f.input.addEventListener("input", () => setError(f.name, "")));

  let specs = []; // GET /renders/params' fields, once known
  let wplus = null; // the job's generator's W+ entries, once known: crossover's own bound

  /** The largest value of field `spec` for this job: crossover is below the W+ count. */
  function maxOf(spec) {
    return spec.name === "crossover" && wplus != null ? Math.min(spec.max, wplus - 1) : spec.max;
  }

  function showRanges() {
    for (const spec of specs) {
      if (spec.name === "strength") Object.assign(blendStrengthInput, { min: String(spec.min), max: String(spec.max) }); // a blend job's too
      const f = all.find((x) => x.name === spec.name);
      if (!f) continue;
      if (spec.type === "seeds") setText(f.hintEl, `${f.hint} ${spec.min}–${spec.max} seeds.`);
      else if (spec.min != null && spec.max != null && f.input.type !== "range") {
        const max = maxOf(spec);
        f.input.min = String(spec.min);
        f.input.max = String(max);
        setText(f.hintEl, `${spec.help}; ${spec.min}–${max}${max !== spec.max ? ` for this generator (${wplus} W+ entries)` : ""}.`);
      } else if (f.input.type === "range") {
        f.input.min = String(spec.min);
        f.input.max = String(spec.max);
      }
    }
  }

  /** The service's ranges (GET /renders/params' fields) as hints and input limits. */
  function setFields(params) {
    specs = (params && params.fields) || [];
    showRanges();
  }

  /** The job's generator draws `size` px (null: unknown): crossover's range follows its W+. */
  function setGeneratorSize(size) {
    wplus = size ? wplusCount(size) : null;
    showRanges();
  }

  function setBusy(busy) {
    button.disabled = busy;
  }

  /** The jobs this one may be blended with ([{id, label}]: finished, same base); none hides the picker. */
  function setBlendChoices(choices) {
    blendSelect.replaceChildren(h("option", { value: "" }, "None"), ...choices.map((c) => h("option", { value: c.id }, c.label)));
    blendBox.hidden = !choices.length;
  }

  showMode();
  return { element, setBusy, showErrors, setFields, setGeneratorSize, setBlendChoices };
}
