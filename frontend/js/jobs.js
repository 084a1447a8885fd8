// The jobs list: every job, newest first, with its prompt, status, progress and queue
// position or ETA. Polls while visible (fast while something is active) and updates rows
// in place, so focus and scrolling survive the refresh.

import { api, listOf } from "./api.js";
import { h, setText } from "./dom.js";
import { ACTIVE, STATUS_LABEL, ago, fractionDone, fullTime, parseTime, promptText, shortId, whereText } from "./format.js";
import { compareSelection, withSweepLink } from "./jobs-compare.js";
import { every } from "./live.js";

const FILTERS = ["", "queued", "running", "succeeded", "failed", "canceled"];
const PAGE = 25;

export function statusPill(status) {
  return h("span", { class: ["pill", `pill-${status}`], "data-status": status }, STATUS_LABEL[status] || status || "—");
}

export function progressBar(job, { label } = {}) {
  const pct = Math.round(fractionDone(job) * 100);
  return h("div", {
    class: ["progress", `progress-${job.status}`], role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100,
    "aria-valuenow": pct, "aria-label": label || "Progress",
  }, h("div", { class: "progress-fill", style: `width: ${pct}%` }));
}

function stepText(job) {
  const total = job.total_steps || (job.params && job.params.steps);
  return total ? `${job.step || 0}/${total}` : "";
}

// GET /params' fields by name, asked once: a row names what its job changed from their defaults.
let fieldsOnce = null;
function paramFields() {
  if (!fieldsOnce) {
    fieldsOnce = api.params().then((schema) => new Map(((schema && schema.fields) || []).map((f) => [f.name, f])),
      () => { fieldsOnce = null; return new Map(); });
  }
  return fieldsOnce;
}

const IN_TITLE = new Set(["source_text", "target_text", "generator"]); // shown already

function valueText(value) {
  if (!Array.isArray(value)) return String(value);
  if (value.length && typeof value[0] === "object") return value.map((m) => m.name).join("+"); // CLIP models
  return value.length ? `${value.length} image${value.length === 1 ? "" : "s"}` : "none";
}

/** "lr 0.01", "seed 3", ...: the parameters of `params` that differ from the defaults. */
export function changedParams(params, fields) {
  const out = [];
  for (const [name, field] of fields) {
    if (IN_TITLE.has(name) || !params || !(name in params) || field.default === undefined) continue;
    if (JSON.stringify(params[name]) !== JSON.stringify(field.default)) out.push(`${name} ${valueText(params[name])}`);
  }
  return out;
}

function jobRow(job, fields) {
  const { source, target } = promptText(job);
  const gen = job.params && job.params.generator;
  const changed = (job.kind || "adapt") === "adapt" ? changedParams(job.params, fields).join(", ") : "";
  return h("li", { class: "job-row", "data-job-id": job.id, "data-status": job.status },
    h("a", { class: "job-link", href: `#/jobs/${encodeURIComponent(job.id)}` },
      h("span", { class: "job-title" },
        h("span", { class: "prompt" }, source), h("span", { class: "arrow", "aria-hidden": "true" }, " → "),
        h("span", { class: "visually-hidden" }, " to "), h("span", { class: "prompt prompt-target" }, target)),
      statusPill(job.status),
      progressBar(job, { label: `Progress of ${source} to ${target}` }),
      h("span", { class: "job-foot" },
        h("span", { class: "job-where" }, whereText(job)),
        h("span", { class: "job-meta muted" },
          [h("span", { class: "job-id", title: job.id }, `#${shortId(job.id)}`), stepText(job) && `step ${stepText(job)}`, gen,
            changed && h("span", { class: "job-changed", title: "parameters changed from the defaults" }, changed),
            h("time", { datetime: job.created_at || "", title: fullTime(job.created_at) }, ago(job.created_at))]
            .filter(Boolean).flatMap((x, i) => (i ? [" · ", x] : [x]))))));
}

// What a row shows; a row is rebuilt only when this changes (or the minute ticks over).
function signature(job) {
  return JSON.stringify([job.status, job.stage, job.step, job.total_steps, job.queue_position, job.eta_seconds, job.error, ago(job.created_at)]);
}

/**
 * The list element and its poller. opts: {compact: bool (home column), title}.
 * Returns {element, stop()}.
 */
export function jobsList({ compact = false } = {}) {
  let filter = "";
  let limit = compact ? 12 : PAGE;
  const rows = new Map(); // id -> {el, sig}
  const selection = compact ? null : compareSelection();
  const list = h("ul", { class: "job-list", "aria-live": "off" });
  const empty = h("p", { class: "empty muted", hidden: true });
  const count = h("span", { class: "count muted" });
  const more = h("button", { type: "button", class: "button button-small button-quiet", hidden: true }, "Show more");
  const errorNote = h("p", { class: "inline-error", role: "status", hidden: true });
  const filterSelect = h("select", { "aria-label": "Show jobs with status" },
    FILTERS.map((f) => h("option", { value: f }, f ? STATUS_LABEL[f] : "All statuses")));

  async function load() {
    const [data, fields] = await Promise.all([api.listJobs({ status: filter || undefined, limit, offset: 0 }), paramFields()]);
    errorNote.hidden = true;
    const jobs = listOf(data).slice().sort((a, b) => (parseTime(b.created_at) || 0) - (parseTime(a.created_at) || 0));
    const total = data && Number.isFinite(data.count) ? data.count : jobs.length;
    render(jobs, total, fields);
    return jobs.some((j) => ACTIVE.has(j.status)) ? 1500 : 5000;
  }

  function render(jobs, total, fields) {
    const seen = new Set();
    let prev = null;
    for (const job of jobs) {
      seen.add(job.id);
      const sig = signature(job) + fields.size;
      let entry = rows.get(job.id);
      if (!entry || entry.sig !== sig) {
        const row = withSweepLink(jobRow(job, fields), job);
        const el = selection ? selection.decorate(row, job) : row;
        if (entry) {
          const hadFocus = entry.el.contains(document.activeElement);
          entry.el.replaceWith(el);
          if (hadFocus) el.querySelector("a.job-link").focus();
        }
        entry = { el, sig };
        rows.set(job.id, entry);
      }
      // keep DOM order = newest first
      const want = prev ? prev.nextSibling : list.firstChild;
      if (want !== entry.el) list.insertBefore(entry.el, want);
      prev = entry.el;
    }
    for (const [id, entry] of rows) {
      if (!seen.has(id)) { entry.el.remove(); rows.delete(id); }
    }
    empty.hidden = jobs.length > 0;
    setText(empty, filter ? `No ${STATUS_LABEL[filter].toLowerCase()} jobs.` : "No jobs yet. Start one with the form.");
    setText(count, total ? `${total} job${total === 1 ? "" : "s"}` : "");
    more.hidden = compact || jobs.length >= total;
  }

  const poll = every(2000, async () => {
    try {
      return await load();
    } catch (err) {
      errorNote.hidden = false;
      setText(errorNote, `Could not refresh the list: ${err.message}`);
      return 5000;
    }
  });

  filterSelect.addEventListener("change", () => { filter = filterSelect.value; load().catch(() => {}); });
  more.addEventListener("click", () => { limit += PAGE; load().catch(() => {}); });

  const element = h("section", { class: ["panel", "jobs-panel", compact && "jobs-compact"], "aria-labelledby": "jobs-heading" },
    h("div", { class: "panel-head" },
      h(compact ? "h2" : "h1", { id: "jobs-heading", class: "jobs-heading" }, compact ? "Recent jobs" : "All jobs"), count,
      h("span", { class: "spacer" }),
      compact ? h("a", { href: "#/jobs", class: "small" }, "All jobs →") : [selection.button, filterSelect]),
    errorNote, list, empty, h("div", { class: "list-actions" }, more));
  return { element, stop: poll };
}
