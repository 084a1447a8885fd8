// The job parameters the form offers, as the service declares them.
//
// One declaration: GET /api/v1/params serves nada/params.py's `param(...)` declarations —
// type, default, range, unit, choices, help text, label and group of every field, in
// declaration order — so a parameter added there appears in the form (and is checked
// here) without touching the page.

import { api } from "./api.js";

/**
 * Load the field specs. Each spec is one entry of GET /params: {name, type: "string" |
 * "integer" | "number" | "boolean" | "clip_models", required, default (absent when
 * required), min, max (when bounded), unit, choices, maxLength (prompts), minItems,
 * maxItems and weight: {min, max} (clip_models), help, label, group, flag}.
 *
 * Returns {fields: {name: spec}, order: [names], groups: [{name, title}]} (groups in the
 * order the page shows them).
 */
export async function loadSchema() {
  const data = await api.params();
  if (!data || !Array.isArray(data.fields)) {
    throw new Error("The service's parameter list (GET /api/v1/params) has no fields.");
  }
  const fields = {};
  for (const spec of data.fields) fields[spec.name] = spec;
  return {
    fields,
    order: data.fields.map((spec) => spec.name),
    groups: Array.isArray(data.groups) ? data.groups : [],
  };
}

/** "1 – 5000", "≥ 0", "1e−6 – 1" — the allowed range as people read it. */
export function rangeText(spec) {
  const lo = spec.min;
  const hi = spec.max;
  const fmt = (v) => formatNumber(v);
  if (lo !== undefined && hi !== undefined) return `${fmt(lo)} – ${fmt(hi)}`;
  if (lo !== undefined) return `≥ ${fmt(lo)}`;
  if (hi !== undefined) return `≤ ${fmt(hi)}`;
  return "";
}

/** An input's value: plain JS number text ("0.002", "1e-7"), which number inputs accept. */
export function numberText(v) {
  return v === undefined || v === null ? "" : String(v);
}

/** A number as people read it: "0.002", "1e−6", "2147483647". */
export function formatNumber(v) {
  if (typeof v !== "number") return String(v);
  if (v !== 0 && Math.abs(v) < 0.001) return v.toExponential().replace("e-", "e−");
  if (Number.isInteger(v)) return String(v);
  return String(+v.toPrecision(6));
}

/** Client-side check of one numeric value, worded like nada.params ("steps must be 1..5000 (got 0)"). */
export function checkNumber(spec, raw) {
  const text = String(raw).trim();
  if (text === "") return spec.required || spec.default !== undefined ? `${spec.name} must be a number` : null;
  const value = Number(text);
  if (!Number.isFinite(value)) return `${spec.name} must be a number (got ${text})`;
  if (spec.type === "integer" && !Number.isInteger(value)) return `${spec.name} must be a whole number (got ${text})`;
  const lo = spec.min;
  const hi = spec.max;
  if ((lo !== undefined && value < lo) || (hi !== undefined && value > hi)) {
    return `${spec.name} must be ${rangeText(spec).replace(" – ", "..")} (got ${text})`;
  }
  return null;
}
