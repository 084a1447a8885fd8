// The CLIP models list editor (name × weight rows) and the names offered for it.

import { listOf } from "./api.js";
import { h, setText, uid } from "./dom.js";
import { checkNumber, formatNumber, numberText, rangeText } from "./schema.js";

/** Names offered for CLIP models, from GET /clip-models in whatever shape it comes. */
export function clipNames(data) {
  const names = [];
  const randomOf = new Set(); // 'random' weights are accepted for every architecture
  const addArch = (arch, tags) => {
    for (const tag of tags || []) names.push(`${arch}:${tag}`);
    if (!(tags || []).includes("random")) names.push(`${arch}:random`);
  };
  const items = Array.isArray(data) || (data && (Array.isArray(data.data) || Array.isArray(data.items))) ? listOf(data) : null;
  if (items) {
    for (const item of items) {
      if (typeof item === "string") names.push(item);
      else if (item && typeof item.name === "string" && !Array.isArray(item.pretrained)) {
        // {name: "ViT-B-32:openai", architecture: "ViT-B-32", pretrained: "openai"}
        names.push(item.name);
        const arch = item.architecture || item.arch;
        if (arch) randomOf.add(arch);
      } else if (item && (item.pretrained || item.tags || item.weights)) addArch(item.arch || item.architecture || item.name, item.pretrained || item.tags || item.weights);
    }
    for (const arch of randomOf) names.push(`${arch}:random`);
  } else if (data && typeof data === "object") {
    for (const [arch, tags] of Object.entries(data)) if (Array.isArray(tags)) addArch(arch, tags);
  }
  return [...new Set(names)];
}

/** name -> {availability, availability_note} from GET /clip-models (empty if it has none). */
export function clipAvailability(data) {
  const found = {};
  const items = data && Array.isArray(data.data) ? data.data : Array.isArray(data) ? data : [];
  for (const item of items) if (item && typeof item.name === "string" && item.availability) found[item.name] = item;
  return found;
}

const BADGE = { cached: "cached", downloadable: "download", manual: "manual: not on this server" };

/**
 * The clip_models field: one row (name, weight) per model, up to spec.maxItems.
 * spec: the field spec from GET /params (label, help, default, maxItems, weight: {min,
 * max}); names: suggestions. Returns {element, control} (control: get/set/check/error/
 * focus/reset).
 */
export function clipModelsField(spec, { names = [], availability = {} } = {}) {
  const label = spec.label || spec.name || "CLIP models";
  const maxItems = spec.maxItems || 4;
  const weightSpec = { name: "weight", type: "number", min: 0, max: 100, ...(spec.weight || {}) };
  const listId = uid("clip-names");
  // Each suggestion carries its availability badge (the label browsers show beside it).
  const badgeOf = (name) => {
    const found = availability[name] || availability[name.includes(":") ? name : `${name}:openai`];
    return found ? BADGE[found.availability] || "" : "";
  };
  const datalist = h("datalist", { id: listId }, names.map((n) => h("option", { value: n, label: badgeOf(n) || undefined, "data-availability": (availability[n] || {}).availability })));
  const rows = h("div", { class: "clip-rows" });
  const addButton = h("button", { type: "button", class: "button button-small button-quiet" }, "+ Add CLIP model");
  const legendId = uid("clip-legend");
  const hintId = uid("clip-hint");
  const errorId = uid("clip-error");
  const error = h("div", { class: "field-error", id: errorId, "data-error-for": "clip_models" });
  const defaults = Array.isArray(spec.default) ? spec.default : [{ name: "ViT-B-32", weight: 1 }];

  function renumber() {
    [...rows.children].forEach((row, i) => {
      row.querySelector(".clip-name").setAttribute("aria-label", `CLIP model ${i + 1} name`);
      row.querySelector(".clip-weight").setAttribute("aria-label", `CLIP model ${i + 1} weight (${rangeText(weightSpec)})`);
      row.querySelector(".clip-remove").setAttribute("aria-label", `Remove CLIP model ${i + 1}`);
      row.querySelector(".clip-remove").disabled = rows.children.length <= 1;
    });
    addButton.disabled = rows.children.length >= maxItems;
  }
  function addRow(name = "", weight = weightSpec.default ?? 1) {
    const nameInput = h("input", { class: "clip-name", type: "text", list: listId, value: name, placeholder: "ViT-B-32:openai", autocomplete: "off", spellcheck: "false", "aria-describedby": `${hintId} ${errorId}` });
    const weightInput = h("input", { class: "clip-weight", type: "number", step: "any", min: weightSpec.min, max: weightSpec.max, value: numberText(weight), inputmode: "decimal", "aria-describedby": `${hintId} ${errorId}` });
    const remove = h("button", { type: "button", class: "button button-icon clip-remove", title: "Remove" }, "×");
    const badge = h("span", { class: "clip-badge badge small" });
    const showBadge = () => {
      const text = badgeOf(nameInput.value.trim());
      setText(badge, text);
      badge.hidden = !text;
      badge.dataset.availability = (availability[nameInput.value.trim()] || {}).availability || "";
    };
    const row = h("div", { class: "clip-row" }, h("span", { class: "clip-name-cell" }, nameInput, badge), h("span", { class: "clip-times", "aria-hidden": "true" }, "×"), weightInput, remove);
    remove.addEventListener("click", () => { row.remove(); renumber(); addButton.focus(); });
    for (const el of [nameInput, weightInput]) el.addEventListener("input", () => showError(""));
    nameInput.addEventListener("input", showBadge);
    showBadge();
    rows.append(row);
    renumber();
    return nameInput;
  }
  function setRows(list) {
    rows.replaceChildren();
    for (const c of list) addRow(c.name, c.weight ?? 1);
    if (!list.length) addRow();
  }
  function showError(msg) {
    setText(error, msg || "");
    fieldset.classList.toggle("has-error", Boolean(msg));
    rows.querySelectorAll("input").forEach((el) => (msg ? el.setAttribute("aria-invalid", "true") : el.removeAttribute("aria-invalid")));
  }
  addButton.addEventListener("click", () => addRow("", 1).focus());
  const fieldset = h("fieldset", { class: "field field-wide clip-field", "data-field": "clip_models", "aria-labelledby": legendId, "aria-describedby": hintId },
    h("legend", { id: legendId }, label),
    rows, datalist,
    h("div", { class: "clip-actions" }, addButton),
    h("div", { class: "hint", id: hintId }, h("span", { class: "hint-range" }, `up to ${maxItems} · weight ${rangeText(weightSpec)}`),
      spec.help ? ` ${spec.help}.` : "", " Names read architecture:weights, e.g. ViT-B-32:openai. Default ",
      defaults.map((c) => `${c.name} × ${formatNumber(c.weight)}`).join(" + "), "."),
    error);
  setRows(defaults);
  const control = {
    container: fieldset,
    get: () => [...rows.children].map((row) => ({
      name: row.querySelector(".clip-name").value.trim(),
      weight: Number(row.querySelector(".clip-weight").value),
    })),
    set: (list) => setRows(Array.isArray(list) ? list : defaults),
    check: () => {
      for (const row of rows.children) {
        const name = row.querySelector(".clip-name").value.trim();
        if (!name) return "clip_models entries need a model name";
        const w = row.querySelector(".clip-weight").value;
        const bad = checkNumber(weightSpec, w);
        if (bad) return `weight of ${name} must be ${rangeText(weightSpec).replace(" – ", "..")} (got ${w.trim() || "nothing"})`;
      }
      return null;
    },
    error: showError,
    focus: () => rows.querySelector("input").focus(),
    reset: () => { setRows(defaults); showError(""); },
  };
  return { element: fieldset, control };
}

