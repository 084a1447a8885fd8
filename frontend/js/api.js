// The service's REST API. Every URL is relative ("api/v1/...") and resolved against
// document.baseURI, so the page works at "/" and behind a proxy at "/some/prefix/".

export const API_PREFIX = "api/v1/";

/** Absolute URL of an API path: apiUrl("jobs", {limit: 5}) -> http://host/prefix/api/v1/jobs?limit=5 */
export function apiUrl(path, query) {
  const url = new URL(API_PREFIX + String(path).replace(/^\/+/, ""), document.baseURI);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  return url.href;
}

/**
 * A URL the service handed us (sample, checkpoint). Server-absolute "/api/v1/..." paths are
 * re-rooted at the page's base so they keep working behind a path prefix; full URLs and
 * other relative ones are resolved as they are.
 */
export function serviceHref(url) {
  if (!url) return null;
  const s = String(url);
  if (/^[a-z][a-z0-9+.-]*:/i.test(s)) return s;
  if (s.startsWith("/" + API_PREFIX)) return new URL(s.slice(1), document.baseURI).href;
  return new URL(s, document.baseURI).href;
}

export class ApiError extends Error {
  /**
   * status: HTTP status (0 when the service could not be reached).
   * fieldErrors: [{field, message}] from a 422, field being a JobCreate name ("steps",
   *   "clip_models") or null when the service did not say which.
   */
  constructor(status, message, { fieldErrors = [], body = null } = {}) {
    super(message);
    this.status = status;
    this.fieldErrors = fieldErrors;
    this.body = body;
  }
}

/**
 * Turn an error body into [{field, message}]. Accepts FastAPI's
 * {"detail": [{"loc": ["body", "steps"], "msg": "..."}]}, and the custom shapes a service
 * tends to use: {"detail": "..."}, {"detail": {"field", "message"}},
 * {"errors": [{"field", "message"}]}, {"error": {"field", "message"}}.
 */
export function fieldErrorsOf(body) {
  if (!body || typeof body !== "object") return [];
  const out = [];
  const push = (field, message) => {
    if (message === undefined || message === null || message === "") return;
    out.push({ field: field ?? null, message: String(message) });
  };
  const fromItem = (item) => {
    if (item === null || item === undefined) return;
    if (typeof item === "string") return push(null, item);
    if (Array.isArray(item.loc)) {
      // ["body", "clip_models", 0, "weight"] -> "clip_models"; ["body"] -> whole request.
      const path = item.loc.filter((p) => p !== "body" && p !== "query" && p !== "path");
      const field = path.length ? String(path[0]) : null;
      let msg = item.msg ?? item.message ?? "";
      // Pydantic prefixes "Value error, " to messages raised by validators.
      msg = String(msg).replace(/^Value error, /, "");
      return push(field, msg);
    }
    const field = item.field ?? item.name ?? item.param ?? (Array.isArray(item.path) ? item.path[0] : item.path);
    return push(field === undefined ? null : field, item.message ?? item.msg ?? item.detail ?? item.error);
  };
  const walk = (value) => {
    if (Array.isArray(value)) value.forEach(fromItem);
    else if (value && typeof value === "object") {
      if (Array.isArray(value.errors)) value.errors.forEach(fromItem);
      else fromItem(value);
    } else if (typeof value === "string") push(null, value);
  };
  if ("detail" in body) walk(body.detail);
  else if ("errors" in body) walk(body.errors);
  else if ("error" in body) walk(body.error);
  else if (body.message) push(body.field ?? null, body.message);
  return out;
}

function messageOf(status, body, statusText) {
  const errors = fieldErrorsOf(body);
  if (errors.length) {
    return errors.map((e) => (e.field && !e.message.startsWith(e.field) ? `${e.field}: ${e.message}` : e.message)).join("; ");
  }
  if (typeof body === "string" && body.trim()) return body.trim().slice(0, 300);
  return `${status} ${statusText || "error"}`;
}

/** fetch() that returns parsed JSON, or throws ApiError. `timeout` in ms (0 = none). */
export async function request(method, path, { body, query, timeout = 15000, signal } = {}) {
  const controller = new AbortController();
  const timer = timeout ? setTimeout(() => controller.abort(), timeout) : null;
  if (signal) signal.addEventListener("abort", () => controller.abort(), { once: true });
  let res;
  try {
    // FormData (a file upload) sets its own multipart Content-Type with the boundary.
    const form = typeof FormData !== "undefined" && body instanceof FormData;
    // X-Nada-Request: the service takes a change signed by the sign-in cookie only with this
    // header, which a form or another page's no-cors fetch cannot send (docs/security.md).
    const headers = { Accept: "application/json", "X-Nada-Request": "1" };
    if (body !== undefined && !form) headers["Content-Type"] = "application/json";
    res = await fetch(apiUrl(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : form ? body : JSON.stringify(body),
      signal: controller.signal,
      cache: "no-store",
    });
  } catch (err) {
    if (signal && signal.aborted) throw err;
    throw new ApiError(0, "The service could not be reached. Is it running?");
  } finally {
    if (timer) clearTimeout(timer);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!res.ok) {
    // The service has API tokens and this page holds none (or a revoked one): the sign-in
    // (signin.js) listens for this. POST /session answers 401 to a wrong token itself.
    if (res.status === 401 && path !== "session") window.dispatchEvent(new CustomEvent("nada:unauthorized"));
    throw new ApiError(res.status, messageOf(res.status, data, res.statusText), { fieldErrors: fieldErrorsOf(data), body: data });
  }
  return data;
}

/** Lists come as [..] or {data: [..], count}; return the array either way. */
export function listOf(data) {
  if (Array.isArray(data)) return data;
  if (data && Array.isArray(data.data)) return data.data;
  if (data && Array.isArray(data.items)) return data.items;
  if (data && typeof data === "object") {
    for (const v of Object.values(data)) if (Array.isArray(v)) return v;
  }
  return [];
}

export const api = {
  health: () => request("GET", "healthz", { timeout: 5000 }),
  /** {tokens, owner}: whether the service needs a token, and whose this page carries. */
  session: () => request("GET", "session"),
  /** Sign in: the service sets a session id (not the token) as an HttpOnly cookie (never readable here). */
  signIn: (token) => request("POST", "session", { body: { token } }),
  signOut: () => request("DELETE", "session"),
  generators: () => request("GET", "generators"),
  clipModels: () => request("GET", "clip-models"),
  /** The auxiliary model files and what they allow (`photo.align`). */
  weights: () => request("GET", "weights"),
  params: () => request("GET", "params"),
  listJobs: (query) => request("GET", "jobs", { query }),
  getJob: (id) => request("GET", `jobs/${encodeURIComponent(id)}`),
  createJob: (body) => request("POST", "jobs", { body, timeout: 30000 }),
  cancelJob: (id) => request("POST", `jobs/${encodeURIComponent(id)}/cancel`),
  /** A new job that trains finished job `id` on: {steps (more), lr?, layers?, ...}. */
  continueJob: (id, body) => request("POST", `jobs/${encodeURIComponent(id)}/continue`, { body, timeout: 30000 }),
  deleteJob: (id) => request("DELETE", `jobs/${encodeURIComponent(id)}`),
  /** The job's webhook deliveries with their attempts. */
  deliveries: (id) => request("GET", `jobs/${encodeURIComponent(id)}/deliveries`),
  eventsUrl: (id) => apiUrl(`jobs/${encodeURIComponent(id)}/events`),
  sampleUrl: (id, step) => apiUrl(`jobs/${encodeURIComponent(id)}/samples/${step}.png`),
  checkpointUrl: (id) => apiUrl(`jobs/${encodeURIComponent(id)}/checkpoint`),
  /** Example images (POST /images: one `file` part each) -> {data: [{id, width, height, url}]}. */
  uploadImages: (files) => {
    const form = new FormData();
    for (const file of files) form.append("file", file, file.name || "image");
    return request("POST", "images", { body: form, timeout: 120000 });
  },
  /** A job's own copy of one of its example images. */
  jobImageUrl: (id, image) => apiUrl(`jobs/${encodeURIComponent(id)}/images/${encodeURIComponent(image)}.png`),
  /** A photo into a generator's W+: multipart `params` (JSON) + `file`. */
  createInversion: (file, params) => {
    const form = new FormData();
    form.append("params", JSON.stringify(params));
    form.append("file", file, file.name || "photo");
    return request("POST", "inversions", { body: form, timeout: 120000 });
  },
  /** The fields of an inversion's params and the service's photo limits. */
  inversionParams: () => request("GET", "inversions/params"),
  getInversion: (id) => request("GET", `inversions/${encodeURIComponent(id)}`),
  /** That inversion rendered through job `jobId`'s adapted generator (200: asked before),
   *  its code moved first by `edits` ("age=2,smile=-1"; "" or absent: none). */
  createEdit: (jobId, inversionId, edits = "") => request("POST", `jobs/${encodeURIComponent(jobId)}/edits`, { body: edits ? { inversion_id: inversionId, edits } : { inversion_id: inversionId }, timeout: 30000 }),
  /** The latent edit directions (age, smile, …) with their base generators and limits. */
  directions: () => request("GET", "directions"),
  getEdit: (id) => request("GET", `edits/${encodeURIComponent(id)}`),
  /** Seeds, style mixing or a video through job `jobId`'s two generators (200: asked before). */
  createRender: (jobId, body) => request("POST", `jobs/${encodeURIComponent(jobId)}/renders`, { body, timeout: 30000 }),
  getRender: (id) => request("GET", `renders/${encodeURIComponent(id)}`),
  /** The fields of a render with their ranges. */
  renderParams: () => request("GET", "renders/params"),
  /** Sweeps (one job per combination of a grid), each with its jobs in grid order. */
  listSweeps: (query) => request("GET", "sweeps", { query }),
  getSweep: (id) => request("GET", `sweeps/${encodeURIComponent(id)}`),
  /** One job per combination of `grid` ({name: [values]}) over `base`, all or nothing. */
  createSweep: (body) => request("POST", "sweeps", { body, timeout: 30000 }),
};
