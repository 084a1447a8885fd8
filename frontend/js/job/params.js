// The parameters a job ran with (all but the prompts, which are its heading), and its
// id and times.

import { fill, h } from "../dom.js";
import { fullTime } from "../format.js";
import { formatNumber } from "../schema.js";

function paramValue(name, v) {
  if (name.endsWith("_images") && Array.isArray(v)) return v.length ? `${v.length} (shown under the heading)` : "none";
  if (name === "clip_models" && Array.isArray(v)) return v.map((c) => `${c.name} × ${formatNumber(c.weight ?? 1)}`).join(", ");
  if (typeof v === "boolean") return v ? "on" : "off";
  if (typeof v === "number") return formatNumber(v);
  if (v === null || v === undefined) return "—";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

const pairs = (rows) => rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]);

/** Returns {element, update(job)}. */
export function paramsCard() {
  const list = h("dl", { class: "params" });
  const element = h("section", { class: "panel", "aria-labelledby": "params-heading" },
    h("h2", { id: "params-heading" }, "Parameters"), list);

  function update(job) {
    const rows = Object.entries(job.params || {}).filter(([k]) => k !== "source_text" && k !== "target_text");
    fill(list, pairs(rows.map(([k, v]) => [k, paramValue(k, v)])));
  }

  return { element, update };
}

/** Returns {element, update(job)}. */
export function timesCard() {
  const list = h("dl", { class: "params times" });
  const element = h("section", { class: "panel", "aria-label": "Times" }, list);

  function update(job) {
    const rows = [["Job", String(job.id)], ["Created", fullTime(job.created_at)], ["Started", fullTime(job.started_at)], ["Finished", fullTime(job.finished_at)]];
    fill(list, pairs(rows.filter(([, v]) => v)));
  }

  return { element, update };
}
