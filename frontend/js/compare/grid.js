// The comparison's picture: one row per job with its adapted images at the shared step,
// under the source row drawn once when every job samples the same latents. A sample PNG is
// the source row over the adapted row (worker/samples.py); CSS crops it to the half a row
// shows (object-fit: cover in a frame one image-row tall), so no pixels are copied.

import { h, setText } from "../dom.js";
import { statusPill } from "../jobs.js";
import { jobLabel, sampleAt } from "./model.js";

const GUTTER = 2; // pixels between the two rows of a sample PNG

/** A frame showing `half` ('source', 'adapted' or 'both') of a sample PNG. */
function sampleFrame(half) {
  const img = h("img", { alt: "", decoding: "async" });
  const frame = h("div", { class: "compare-frame", "data-half": half }, img);
  img.addEventListener("load", () => {
    const w = img.naturalWidth;
    const rowH = (img.naturalHeight - GUTTER) / 2;
    frame.style.aspectRatio = half === "both" ? `${w} / ${img.naturalHeight}` : `${w} / ${rowH}`;
  });
  return { frame, img };
}

function setImage(img, src, alt) {
  if (img.getAttribute("src") !== src) img.src = src;
  img.alt = alt;
}

/** Returns {element, update({jobs, differing, step, shared, urlOf})}; rows keep their elements across updates. */
export function compareGrid() {
  const source = sampleFrame("source");
  const sourceRow = h("div", { class: "compare-row compare-source", hidden: true },
    h("div", { class: "compare-label" }, h("strong", {}, "Source"), h("span", { class: "muted small" }, " the base generator on the latents every row shares")),
    source.frame);
  const list = h("ol", { class: "compare-rows" });
  const rows = new Map(); // job id -> {li, name, where, pill, frame, img, missing, half}

  function rowFor(job, half) {
    let row = rows.get(job.id);
    if (row && row.half === half) return row;
    const { frame, img } = sampleFrame(half);
    const name = h("a", { class: "compare-name", href: `#/jobs/${encodeURIComponent(job.id)}` });
    const where = h("span", { class: "compare-step small" });
    const pill = h("span", { class: "pill-slot" });
    const missing = h("p", { class: "compare-missing muted small", hidden: true }, "Not reached: no sample at or before this step yet.");
    const li = h("li", { class: "compare-row", "data-job-id": job.id }, h("div", { class: "compare-label" }, name, where, pill), frame, missing);
    if (row) row.li.replaceWith(li);
    row = { li, name, where, pill, frame, img, missing, half, status: null };
    rows.set(job.id, row);
    return row;
  }

  function update({ jobs, differing, step, shared, urlOf }) {
    const half = shared ? "adapted" : "both";
    const seen = new Set();
    for (const job of jobs) {
      seen.add(job.id);
      const row = rowFor(job, half);
      const label = jobLabel(job, differing);
      setText(row.name, label);
      if (row.status !== job.status) {
        row.pill.replaceChildren(statusPill(job.status));
        row.status = job.status;
      }
      const at = sampleAt(job, step);
      row.li.dataset.sampleStep = at ? String(at.sample.step) : "";
      row.frame.hidden = !at;
      row.missing.hidden = Boolean(at);
      if (at) {
        const what = shared ? "adapted images" : "base (top) and adapted (bottom) images";
        setImage(row.img, urlOf(job, at.sample), `${label}: ${what} at step ${at.sample.step}`);
      }
      setText(row.where, !at ? "not reached" : at.exact ? `step ${at.sample.step}` : `step ${at.sample.step}, its latest before ${step}`);
      row.where.dataset.exact = String(Boolean(at && at.exact));
      list.append(row.li); // in the given order: re-appending moves it
    }
    for (const [id, row] of rows) if (!seen.has(id)) { row.li.remove(); rows.delete(id); }

    const first = shared ? jobs.map((j) => ({ job: j, at: sampleAt(j, step) })).find((x) => x.at) : null;
    sourceRow.hidden = !first;
    if (first) setImage(source.img, urlOf(first.job, first.at.sample), "Source images: the base generator on the shared latents");
  }

  const element = h("div", { class: "compare-grid" }, sourceRow, list);
  return { element, update };
}
