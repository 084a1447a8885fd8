// The "new job" form: prompts with presets, the base generator, and every engine
// parameter under "Advanced" with its default and allowed range. What each field is called,
// its hint, range, unit, choices and group all come from the service's declaration
// (GET /api/v1/params, see schema.js); only the presets are the page's own. Errors — ours
// or the service's 422 — appear next to the field they concern.

import { api, ApiError } from "./api.js";
import { clipModelsField } from "./clip-field.js";
import { OWNED_FIELDS, examplesBlock } from "./examples-field.js";
import { h, setText, toast, uid } from "./dom.js";
import { checkNumber, formatNumber, numberText, rangeText } from "./schema.js";

// The first job of a fresh install: everything it needs is made from a seed (a random
// generator, random CLIP weights), so it downloads nothing and needs no GPU, and its few
// steps, sample steps and scores on 8 latents end in seconds on a CPU. Random weights draw
// noise-like images: it shows the mechanics (samples, scores, the result), not a domain.
// README.md ("What a first job needs") gives the same as a `nada adapt` command.
export const FIRST_JOB_PRESET = {
  label: "Try it without downloads",
  hint: "A demo of the mechanics: random generator and CLIP weights, nothing to download, "
    + "under a minute on a CPU. Random weights draw noise-like images, not a real domain.",
  source: "photo",
  target: "sketch",
  params: {
    generator: "random-32",
    clip_models: [{ name: "nada-tiny:random", weight: 1 }],
    steps: 12,
    layers: 3,
    reselect_every: 4,
    probe_batch: 4,
    sample_every: 4,
    score_latents: 8,
  },
};

// Prompt pairs people actually use with StyleGAN-NADA (from the paper and its demos); they
// keep the form's generator (ffhq-1024 by default).
export const PRESETS = [
  { source: "photo", target: "sketch" },
  { source: "face", target: "Shrek" },
  { source: "face", target: "anime painting" },
  { source: "face", target: "Pixar cartoon" },
  { source: "face", target: "zombie" },
];

// The prompts and the generator open the form; every other group is under "Advanced".
const BASIC_GROUP = "prompt";

/** The short badge of a model's availability on this server (GET /generators, /clip-models). */
export function availabilityBadge(item) {
  const state = item && item.availability;
  if (state === "downloadable") return "download";
  if (state === "manual") return "manual: not on this server";
  return state === "cached" ? "cached" : "";
}

/** The line under the generator select: what it draws, its family and license (GET
 * /generators; NVIDIA's files are non-commercial), and its availability (with the size). */
function generatorFacts(g) {
  const family = g.family === "stylegan3" ? "StyleGAN3" : "";
  return [g.description, g.domain, family, g.license, g.random ? "" : availabilityText(g)].filter(Boolean).join(" · ");
}

/** The sentence under the select: the badge's meaning, in the server's words. */
function availabilityText(item) {
  if (!item || !item.availability) return "";
  const note = item.availability_note ? `: ${item.availability_note}` : "";
  return { cached: "Cached on this server", downloadable: "Downloaded on first use", manual: "Not available on this server" }[item.availability] + note;
}

/**
 * Build the form. ctx: {schema (loadSchema()), generators: [..], randomSizes: [..],
 * clipModels: [names], prefill: params|null, onCreated(job)}. Returns the <form> element.
 */
export function jobForm(ctx) {
  const { schema } = ctx;
  const fields = schema.fields;
  const controls = {}; // name -> {get(), set(v), error(msg), focus(), container}
  const formError = h("div", { class: "form-error", role: "alert", hidden: true });

  // ---- one labelled control with its hint and its error slot ------------------------
  function fieldShell(name, labelText, control, hintText, { wide = false, inline = false } = {}) {
    const hintId = uid(`${name}-hint`);
    const errorId = uid(`${name}-error`);
    const error = h("div", { class: "field-error", id: errorId, "data-error-for": name });
    const hint = hintText ? h("div", { class: "hint", id: hintId }, hintText) : null;
    control.setAttribute("aria-describedby", [hint ? hintId : null, errorId].filter(Boolean).join(" "));
    const label = h("label", { for: control.id }, labelText);
    const shell = h("div", { class: ["field", wide && "field-wide", inline && "field-inline"], "data-field": name },
      inline ? [control, label] : [label, control], hint, error);
    const showError = (msg) => {
      setText(error, msg || "");
      shell.classList.toggle("has-error", Boolean(msg));
      if (msg) control.setAttribute("aria-invalid", "true");
      else control.removeAttribute("aria-invalid");
    };
    control.addEventListener("input", () => showError(""));
    return { shell, showError };
  }

  const labelOf = (spec) => spec.label || spec.name;

  /** "1 – 5000 steps · default 300" as a chip, then the declared help text. */
  function hintFor(spec) {
    const parts = [];
    const unit = spec.unit ? ` ${spec.unit}` : "";
    const range = rangeText(spec);
    if (range) parts.push(range + unit);
    if (spec.default !== undefined && spec.default !== null && typeof spec.default !== "object") {
      const value = typeof spec.default === "boolean" ? (spec.default ? "on" : "off") : formatNumber(spec.default);
      parts.push(`default ${value}${range || typeof spec.default !== "number" ? "" : unit}`);
    }
    const head = parts.join(" · ");
    return [head && h("span", { class: "hint-range" }, head), spec.help && ` ${spec.help}`];
  }

  function numberControl(spec) {
    const input = h("input", {
      id: uid(spec.name), name: spec.name, type: "number", inputmode: spec.type === "integer" ? "numeric" : "decimal",
      step: spec.type === "integer" ? "1" : "any", min: spec.min, max: spec.max, value: numberText(spec.default),
      required: spec.required || undefined,
    });
    const { shell, showError } = fieldShell(spec.name, labelOf(spec), input, hintFor(spec));
    controls[spec.name] = {
      container: shell,
      get: () => {
        const text = input.value.trim();
        return text === "" ? undefined : Number(text);
      },
      set: (v) => { input.value = numberText(v); },
      check: () => checkNumber(spec, input.value),
      error: showError,
      focus: () => input.focus(),
      reset: () => { input.value = numberText(spec.default); showError(""); },
    };
    return shell;
  }

  function choiceControl(spec) {
    const select = h("select", { id: uid(spec.name), name: spec.name },
      spec.choices.map((v) => h("option", { value: v, selected: v === spec.default }, v)));
    const { shell, showError } = fieldShell(spec.name, labelOf(spec), select, hintFor(spec));
    controls[spec.name] = {
      container: shell, get: () => select.value, set: (v) => { select.value = v; }, error: showError,
      focus: () => select.focus(), reset: () => { select.value = spec.default ?? spec.choices[0]; showError(""); },
    };
    return shell;
  }

  function boolControl(spec) {
    const box = h("input", { id: uid(spec.name), name: spec.name, type: "checkbox", checked: Boolean(spec.default) });
    const { shell, showError } = fieldShell(spec.name, labelOf(spec), box, hintFor(spec), { inline: true });
    controls[spec.name] = {
      container: shell, get: () => box.checked, set: (v) => { box.checked = Boolean(v); }, error: showError,
      focus: () => box.focus(), reset: () => { box.checked = Boolean(spec.default); showError(""); },
    };
    return shell;
  }

  function textControl(spec) {
    const input = h("input", { id: uid(spec.name), name: spec.name, type: "text", value: spec.default ?? "", maxlength: spec.maxLength });
    const { shell, showError } = fieldShell(spec.name, labelOf(spec), input, hintFor(spec));
    controls[spec.name] = {
      container: shell, get: () => input.value, set: (v) => { input.value = v ?? ""; }, error: showError,
      focus: () => input.focus(), reset: () => { input.value = spec.default ?? ""; showError(""); },
    };
    return shell;
  }

  function controlFor(spec) {
    if (spec.type === "clip_models") {
      const { element, control } = clipModelsField(spec, { names: ctx.clipModels, availability: ctx.clipAvailability });
      controls[spec.name] = control;
      return element;
    }
    if (spec.choices) return choiceControl(spec);
    if (spec.type === "boolean") return boolControl(spec);
    if (spec.type === "integer" || spec.type === "number") return numberControl(spec);
    if (spec.type === "string") return textControl(spec);
    return null; // a structured field this page does not know how to edit: leave it to the default
  }

  // ---- prompts and generator -------------------------------------------------------
  function promptControl(name, placeholder) {
    const spec = fields[name] || { name, maxLength: 300 };
    const input = h("input", {
      id: uid(name), name, type: "text", required: true, maxlength: spec.maxLength, placeholder,
      autocomplete: "off", spellcheck: "true", class: "prompt-input",
    });
    const { shell, showError } = fieldShell(name, labelOf(spec), input, null);
    controls[name] = {
      container: shell, get: () => input.value, set: (v) => { input.value = v ?? ""; }, error: showError,
      focus: () => input.focus(), input,
      check: () => (input.value.trim() ? null : `${name} must not be empty`),
      reset: () => showError(""),
    };
    return shell;
  }

  function generatorControl() {
    const spec = fields.generator || { name: "generator", default: "ffhq-1024" };
    const gens = [
      ...(ctx.generators || []),
      ...(ctx.randomSizes || []).map((size) => ({ name: `random-${size}`, size, description: "Seeded random weights: no download, for trying the service out.", random: true })),
    ];
    const known = gens.map((g) => g.name);
    // The availability badge (GET /generators): a manual one cannot be used here, so it is
    // shown but disabled; the note under the select says why.
    const usable = (g) => g.availability !== "manual";
    const option = (g) => h("option", { value: g.name, disabled: !usable(g), "data-availability": g.availability || "cached" },
      [g.size ? `${g.name}  (${g.size}×${g.size})` : g.name, g.random ? "" : availabilityBadge(g)].filter(Boolean).join("  · "));
    const pretrained = gens.filter((g) => !g.random);
    const random = gens.filter((g) => g.random);
    const select = h("select", { id: uid("generator"), name: "generator" },
      random.length ? h("optgroup", { label: "Pretrained" }, pretrained.map(option)) : pretrained.map(option),
      random.length ? h("optgroup", { label: "Random weights (no download)" }, random.map(option)) : null,
      h("option", { value: "__other" }, "Other…"));
    const other = h("input", { type: "text", class: "generator-other", placeholder: "registry name or random-<size>", "aria-label": "Generator name", hidden: true, spellcheck: "false" });
    const describe = h("div", { class: "generator-desc muted" });
    const update = () => {
      other.hidden = select.value !== "__other";
      const g = gens.find((x) => x.name === select.value);
      setText(describe, g ? generatorFacts(g) : select.value === "__other" ? "Any generator the service can load; it answers with the known names if not." : "");
    };
    select.addEventListener("change", () => { update(); if (!other.hidden) other.focus(); });
    const set = (v) => {
      if (v && known.includes(v)) select.value = v;
      else if (v) { select.value = "__other"; other.value = v; }
      update();
    };
    const { shell, showError } = fieldShell("generator", labelOf(spec), select, describe);
    const control = h("div", { class: "generator-control" });
    shell.replaceChild(control, select);
    control.append(select, other);
    other.addEventListener("input", () => showError(""));
    // The default, unless this server cannot use it: then the first generator it can.
    const initialGenerator = () => {
      const byDefault = gens.find((g) => g.name === spec.default);
      if (byDefault && usable(byDefault)) return spec.default;
      return (gens.find(usable) || {}).name || spec.default;
    };
    set(initialGenerator());
    controls.generator = {
      container: shell, get: () => (select.value === "__other" ? other.value.trim() : select.value), set,
      error: showError, focus: () => (other.hidden ? select : other).focus(),
      reset: () => { set(initialGenerator()); showError(""); },
    };
    return shell;
  }

  // ---- assemble ----------------------------------------------------------------------
  /** A preset's prompts, and its parameters over the form's (the rest keep their values). */
  function applyPreset(p) {
    controls.source_text.set(p.source);
    controls.target_text.set(p.target);
    controls.source_text.error("");
    controls.target_text.error("");
    for (const [name, v] of Object.entries(p.params || {})) {
      if (!controls[name]) continue;
      controls[name].set(v);
      controls[name].error("");
    }
    controls.target_text.focus();
  }
  const firstHintId = uid("first-job-hint");
  const firstJob = h("div", { class: "first-job" },
    h("button", { type: "button", class: "button first-job-button", "data-preset": "first-job", "aria-describedby": firstHintId, onclick: () => applyPreset(FIRST_JOB_PRESET) }, FIRST_JOB_PRESET.label),
    h("span", { class: "hint", id: firstHintId }, FIRST_JOB_PRESET.hint));
  const presets = h("div", { class: "presets", role: "group", "aria-label": "Presets" },
    h("span", { class: "presets-label muted" }, "Try"),
    PRESETS.map((p) => h("button", { type: "button", class: "chip", onclick: () => applyPreset(p) },
      p.source, h("span", { class: "arrow", "aria-hidden": "true" }, " → "), h("span", { class: "visually-hidden" }, " to "), p.target)));

  const swap = h("button", { type: "button", class: "button button-icon swap", title: "Swap source and target", "aria-label": "Swap source and target" }, "⇄");
  swap.addEventListener("click", () => {
    const s = controls.source_text.get();
    controls.source_text.set(controls.target_text.get());
    controls.target_text.set(s);
  });

  const promptRow = h("div", { class: "prompt-row" },
    promptControl("source_text", "e.g. photo"),
    swap,
    promptControl("target_text", "e.g. sketch"));
  // "Show it": example images beside (or instead of) the text, and the images' weight.
  const examples = examplesBlock(fields, controls);
  if (examples) Object.assign(controls, examples.controls);
  // A prompt-group field beyond these three gets a plain control under the generator.
  const moreBasic = schema.order
    .filter((n) => fields[n].group === BASIC_GROUP && !["source_text", "target_text", "generator", ...OWNED_FIELDS].includes(n))
    .map((n) => controlFor(fields[n]));

  // "Advanced": the other groups in the declared order; a group the service does not
  // list (a newer field) still shows, under "Other".
  const advancedNames = schema.order.filter((n) => fields[n].group !== BASIC_GROUP && !OWNED_FIELDS.includes(n));
  const titled = schema.groups.filter((g) => g.name !== BASIC_GROUP);
  const listed = new Set(titled.map((g) => g.name));
  const groups = [
    ...titled.map((g) => ({ title: g.title, fields: advancedNames.filter((n) => fields[n].group === g.name) })),
    { title: "Other", fields: advancedNames.filter((n) => !listed.has(fields[n].group)) },
  ].filter((g) => g.fields.length);
  // ---- "Sweep" (the last part of "Advanced"): vary some parameters, one job per ------
  // combination (POST /sweeps).
  // Values as the CLI's `nada sweep` takes them: numbers and choices comma-separated,
  // prompts '|'-separated (a prompt may hold commas).
  const sweepable = () => schema.order.filter((n) => {
    const s = fields[n];
    return controls[n] && (s.choices || s.type === "integer" || s.type === "number" || n === "source_text" || n === "target_text");
  });
  const sweepRows = h("div", { class: "sweep-rows" });
  const sweepCount = h("span", { class: "sweep-count", "aria-live": "polite" });
  const sweepStart = h("button", { type: "button", class: "button", hidden: true });
  const rows = []; // {name(), raw(), error(msg), focus(), li}

  function splitValues(name, raw) {
    const sep = fields[name].type === "string" && !fields[name].choices ? "|" : ",";
    return raw.split(sep).map((s) => s.trim()).filter((s) => s !== "");
  }

  /** {grid, errors}: each row's values typed as the parameter is; errors by row. */
  function sweepGrid() {
    const grid = {};
    const errors = [];
    for (const row of rows) {
      const name = row.name();
      const spec = fields[name];
      const values = splitValues(name, row.raw());
      if (!values.length) { errors.push({ row, message: "Give at least one value." }); continue; }
      if (name in grid) { errors.push({ row, message: `${labelOf(spec)} is already varied above.` }); continue; }
      if (spec.type === "integer" || spec.type === "number") {
        const bad = values.map((v) => ({ v, m: checkNumber(spec, v) })).find((x) => x.m);
        if (bad) { errors.push({ row, message: `${bad.v}: ${bad.m}` }); continue; }
        grid[name] = values.map(Number);
      } else if (spec.choices) {
        const bad = values.find((v) => !spec.choices.includes(v));
        if (bad) { errors.push({ row, message: `${bad} is not one of ${spec.choices.join(", ")}.` }); continue; }
        grid[name] = values;
      } else grid[name] = values;
    }
    return { grid, errors };
  }

  function updateSweepCount() {
    const counts = rows.map((r) => splitValues(r.name(), r.raw()).length);
    const n = counts.reduce((a, b) => a * b, 1);
    sweepStart.hidden = rows.length === 0;
    sweepStart.disabled = n === 0; // a row without values yet
    setText(sweepStart, `Start ${n} job${n === 1 ? "" : "s"}`);
    sweepStart.dataset.count = String(n);
    setText(sweepCount, rows.length ? `${counts.join(" × ")} = ${n} job${n === 1 ? "" : "s"}` : "");
  }

  function addSweepRow(initial) {
    const id = uid("sweep-param");
    const valuesId = uid("sweep-values");
    const errorId = uid("sweep-error");
    const select = h("select", { id, class: "sweep-param", "aria-label": "Parameter to vary" },
      sweepable().map((n) => h("option", { value: n, selected: n === initial }, labelOf(fields[n]))));
    const input = h("input", { id: valuesId, type: "text", class: "sweep-values", "aria-label": "Values", "aria-describedby": errorId, autocomplete: "off", spellcheck: "false" });
    const error = h("div", { class: "field-error", id: errorId });
    const remove = h("button", { type: "button", class: "button button-small button-quiet", "aria-label": "Stop varying this parameter" }, "Remove");
    const li = h("div", { class: "sweep-row" }, select, input, remove, error);
    const placeholder = () => {
      const spec = fields[select.value];
      input.placeholder = spec.choices ? spec.choices.join(", ") : spec.type === "string" ? "sketch | oil painting" : "e.g. 3, 6, 9";
      li.dataset.param = select.value;
      error.dataset.errorFor = `grid.${select.value}`;
    };
    const row = {
      li, name: () => select.value, raw: () => input.value, focus: () => input.focus(),
      error: (msg) => { setText(error, msg || ""); li.classList.toggle("has-error", Boolean(msg)); if (msg) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid"); },
    };
    select.addEventListener("change", () => { placeholder(); row.error(""); updateSweepCount(); });
    input.addEventListener("input", () => { row.error(""); updateSweepCount(); });
    remove.addEventListener("click", () => { rows.splice(rows.indexOf(row), 1); li.remove(); updateSweepCount(); addButton.focus(); });
    placeholder();
    rows.push(row);
    sweepRows.append(li);
    updateSweepCount();
    return row;
  }
  const addButton = h("button", { type: "button", class: "button button-small" }, "Add a parameter to vary");
  addButton.addEventListener("click", () => {
    const used = rows.map((r) => r.name());
    // The next engine parameter under "Advanced" not varied yet (layers, steps, lr, …).
    const names = sweepable();
    addSweepRow(names.find((n) => !used.includes(n) && advancedNames.includes(n)) || names[0]).focus();
  });
  const sweepSection = h("fieldset", { class: "sweep-section" }, h("legend", {}, "Sweep"),
    h("p", { class: "hint" }, "One job per combination of the values, then compared side by side; every other field is shared by all of them. Numbers and choices are comma-separated; prompts are separated by “|”."),
    sweepRows, h("div", { class: "sweep-actions" }, addButton, sweepCount, sweepStart));

  const resetButton = h("button", { type: "button", class: "button button-small button-quiet" }, "Reset to defaults");
  resetButton.addEventListener("click", () => {
    for (const n of advancedNames) controls[n] && controls[n].reset();
    controls.generator.reset();
    toast("Advanced settings reset to the defaults.");
  });
  const advanced = h("details", { class: "advanced" },
    h("summary", {}, h("span", {}, "Advanced"), h("span", { class: "summary-note muted" }, `${advancedNames.length} engine parameters, defaults from the service`)),
    h("div", { class: "advanced-body" },
      groups.map((g) => h("fieldset", { class: "group" }, h("legend", {}, g.title),
        h("div", { class: "grid" }, g.fields.map((n) => controlFor(fields[n]))))),
      sweepSection, h("div", { class: "advanced-actions" }, resetButton)));

  const submit = h("button", { type: "submit", class: "button button-primary" }, "Start adaptation");
  const form = h("form", { class: "job-form", novalidate: true, "aria-label": "New adaptation job" },
    firstJob, presets, examples && h("h3", { class: "examples-title" }, "Describe it"), promptRow,
    examples && examples.element, generatorControl(), moreBasic, advanced, formError,
    h("div", { class: "form-actions" }, submit,
      h("span", { class: "muted small" }, "Runs on the service's worker (a GPU where it has one); samples appear as it trains.")));

  function clearErrors() {
    for (const c of Object.values(controls)) c.error("");
    formError.hidden = true;
    formError.replaceChildren();
  }

  /** Show [{field, message}] next to their fields; the rest above the button. Focus the first. */
  function showErrors(errors) {
    const loose = [];
    let first = null;
    for (const { field, message } of errors) {
      const c = field && controls[field];
      if (c) {
        c.error(message);
        if (!first) first = c;
      } else loose.push(field ? `${field}: ${message}` : message);
    }
    if (loose.length) {
      formError.hidden = false;
      formError.replaceChildren(h("strong", {}, "The service refused this job."), h("ul", {}, loose.map((m) => h("li", {}, m))));
    }
    if (first) {
      if (advanced.contains(first.container)) advanced.open = true;
      first.focus();
      first.container.scrollIntoView({ block: "center", behavior: "smooth" });
    } else if (loose.length) formError.scrollIntoView({ block: "center" });
  }

  function values() {
    const body = {};
    for (const name of schema.order) {
      const c = controls[name];
      if (!c) continue;
      const v = c.get();
      if (v !== undefined && v !== "") body[name] = v;
    }
    return body;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const local = Object.entries(controls)
      .map(([field, c]) => ({ field, message: c.check ? c.check() : null }))
      .filter((e) => e.message);
    if (local.length) return showErrors(local);
    submit.disabled = true;
    setText(submit, "Submitting…");
    try {
      const job = await api.createJob(values());
      ctx.onCreated(job);
    } catch (err) {
      if (err instanceof ApiError && err.fieldErrors.length) showErrors(err.fieldErrors);
      else showErrors([{ field: null, message: err.message }]);
    } finally {
      submit.disabled = false;
      setText(submit, "Start adaptation");
    }
  });

  /** A sweep's 422: a grid entry's message on its row, a base field's on that field. */
  function showSweepErrors(err) {
    const detail = err.body && Array.isArray(err.body.detail) ? err.body.detail : [];
    const rest = [];
    let first = null;
    for (const item of detail) {
      const loc = Array.isArray(item.loc) ? item.loc.filter((p) => p !== "body") : [];
      const msg = String(item.msg ?? item.message ?? "").replace(/^Value error, /, "");
      const row = loc[0] === "grid" && rows.find((r) => r.name() === loc[1]);
      if (row) { row.error(msg); first = first || row; continue; }
      const name = loc[0] === "base" ? loc[1] : loc[0];
      rest.push({ field: controls[name] ? name : null, message: controls[name] ? msg : [loc.join("."), msg].filter(Boolean).join(": ") });
    }
    if (!detail.length) rest.push(...(err.fieldErrors && err.fieldErrors.length ? err.fieldErrors : [{ field: null, message: err.message }]));
    if (rest.length) showErrors(rest);
    if (first && !rest.some((e) => e.field)) { advanced.open = true; first.focus(); }
  }

  sweepStart.addEventListener("click", async () => {
    clearErrors();
    for (const r of rows) r.error("");
    const { grid, errors } = sweepGrid();
    for (const e of errors) e.row.error(e.message);
    if (errors.length) return errors[0].row.focus();
    const local = Object.entries(controls)
      .filter(([field]) => !(field in grid))
      .map(([field, c]) => ({ field, message: c.check ? c.check() : null }))
      .filter((e) => e.message);
    if (local.length) return showErrors(local);
    const base = values();
    for (const name of Object.keys(grid)) delete base[name];
    sweepStart.disabled = true;
    setText(sweepStart, "Submitting…");
    try {
      const sweep = await api.createSweep({ base, grid });
      (ctx.onSweepCreated || (() => {}))(sweep);
    } catch (err) {
      if (err instanceof ApiError && err.status === 422) showSweepErrors(err);
      else showErrors([{ field: null, message: err.message }]);
    } finally {
      updateSweepCount();
    }
  });

  if (ctx.prefill) {
    for (const [name, v] of Object.entries(ctx.prefill)) if (controls[name]) controls[name].set(v);
    if (examples) examples.update();
    advanced.open = true;
  }
  return form;
}
