// The job parameters the form offers: their defaults and allowed ranges.
//
// One source of truth: the service's own OpenAPI schema (the request body of POST
// /api/v1/jobs), which the backend derives from nada/params.py. When that cannot be read
// (an old service, a proxy that hides it), params.json — a copy of nada/params.py that a
// test keeps equal — stands in, limited to the fields the API is documented to accept.

import { fetchOpenApi } from "./api.js";

// Fields POST /api/v1/jobs is documented to accept, used only without an OpenAPI schema.
const DOCUMENTED_FIELDS = [
  "source_text", "target_text", "generator", "clip_models", "steps", "layers", "selection",
  "include_torgb", "probe_steps", "batch_size", "lr", "sample_every", "checkpoint_every",
  "mixing", "seed",
];

/**
 * Spec of one field: {name, type: "integer"|"number"|"string"|"boolean"|"array",
 * default, min, max, exclusiveMin, exclusiveMax, enum, maxLength, required,
 * weight: {min, max} (clip_models), maxItems (clip_models), description}.
 */
function fromFallback(json) {
  const fields = {};
  for (const [name, f] of Object.entries(json.fields)) {
    fields[name] = { name, ...f, required: name === "source_text" || name === "target_text" };
  }
  return fields;
}

function deref(doc, schema) {
  let s = schema;
  for (let i = 0; s && s.$ref && i < 10; i++) {
    const path = s.$ref.replace(/^#\//, "").split("/");
    s = path.reduce((node, key) => (node ? node[key] : undefined), doc);
  }
  return s || {};
}

/** Optional[X] is anyOf [X, null] in OpenAPI 3.1; take X and keep the outer default/title. */
function unwrap(doc, schema) {
  let s = deref(doc, schema);
  const branches = s.anyOf || s.oneOf || (s.allOf && s.allOf.length === 1 ? s.allOf : null);
  if (branches) {
    const real = branches.map((b) => deref(doc, b)).filter((b) => b.type !== "null");
    if (real.length >= 1) {
      const { anyOf, oneOf, allOf, ...outer } = s;
      s = { ...real[0], ...outer, nullable: real.length < branches.length };
    }
  }
  return s;
}

function specFromSchema(doc, name, raw, required) {
  const s = unwrap(doc, raw);
  const spec = { name, required };
  let type = s.type;
  if (Array.isArray(type)) type = type.find((t) => t !== "null");
  if (s.enum || s.const !== undefined) {
    spec.enum = s.enum || [s.const];
    type = type || "string";
  }
  spec.type = type || "string";
  if ("default" in s) spec.default = s.default;
  if (typeof s.minimum === "number") spec.min = s.minimum;
  if (typeof s.maximum === "number") spec.max = s.maximum;
  if (typeof s.exclusiveMinimum === "number") spec.exclusiveMin = s.exclusiveMinimum;
  if (typeof s.exclusiveMaximum === "number") spec.exclusiveMax = s.exclusiveMaximum;
  if (typeof s.maxLength === "number") spec.maxLength = s.maxLength;
  if (typeof s.maxItems === "number") spec.maxItems = s.maxItems;
  if (typeof s.minItems === "number") spec.minItems = s.minItems;
  if (s.description) spec.description = s.description;
  if (spec.type === "array" && s.items) {
    const item = unwrap(doc, s.items);
    const weight = item.properties && unwrap(doc, item.properties.weight);
    if (weight) {
      spec.weight = {};
      if (typeof weight.minimum === "number") spec.weight.min = weight.minimum;
      if (typeof weight.maximum === "number") spec.weight.max = weight.maximum;
      if ("default" in weight) spec.weight.default = weight.default;
    }
  }
  return spec;
}

/** The request body schema of POST .../jobs, wherever the service mounted it. */
function jobCreateSchema(doc) {
  for (const [path, ops] of Object.entries(doc.paths || {})) {
    if (!/\/jobs\/?$/.test(path) || !ops.post) continue;
    const content = ops.post.requestBody && ops.post.requestBody.content;
    const body = content && (content["application/json"] || Object.values(content)[0]);
    if (body && body.schema) return deref(doc, body.schema);
  }
  const schemas = (doc.components && doc.components.schemas) || {};
  return schemas.JobCreate || null;
}

/**
 * Load the field specs. Returns {fields: {name: spec}, order: [names], source: "openapi"|"fallback"}.
 * A value the OpenAPI schema leaves out (a range on a plain int) is filled from params.json.
 */
export async function loadSchema() {
  const fallbackJson = await fetch(new URL("../params.json", import.meta.url).href).then((r) => r.json());
  const fallback = fromFallback(fallbackJson);
  try {
    const doc = await fetchOpenApi();
    const body = jobCreateSchema(doc);
    if (!body || !body.properties) throw new Error("no JobCreate schema");
    const required = new Set(body.required || []);
    const fields = {};
    for (const [name, raw] of Object.entries(body.properties)) {
      const spec = specFromSchema(doc, name, raw, required.has(name));
      const fb = fallback[name] || {};
      for (const key of ["default", "min", "max", "maxLength", "maxItems", "enum", "weight"]) {
        if (spec[key] === undefined && fb[key] !== undefined) spec[key] = fb[key];
      }
      if (fb.type === "integer" && spec.type === "number") spec.type = "integer";
      fields[name] = spec;
    }
    return { fields, order: Object.keys(body.properties), source: "openapi" };
  } catch (err) {
    console.info("Using the built-in parameter table:", err.message);
    const fields = {};
    for (const name of DOCUMENTED_FIELDS) if (fallback[name]) fields[name] = fallback[name];
    return { fields, order: DOCUMENTED_FIELDS, source: "fallback" };
  }
}

/** "1 – 5000", "≥ 0", "1e−6 – 1" — the allowed range as people read it. */
export function rangeText(spec) {
  const lo = spec.min ?? spec.exclusiveMin;
  const hi = spec.max ?? spec.exclusiveMax;
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
  if (spec.type === "integer" && !Number.isInteger(value)) return `${spec.name} must be an integer (got ${text})`;
  const lo = spec.min;
  const hi = spec.max;
  if ((lo !== undefined && value < lo) || (hi !== undefined && value > hi)
      || (spec.exclusiveMin !== undefined && value <= spec.exclusiveMin)
      || (spec.exclusiveMax !== undefined && value >= spec.exclusiveMax)) {
    return `${spec.name} must be ${rangeText(spec).replace(" – ", "..")} (got ${text})`;
  }
  return null;
}
