// A comparison taken away: a CSV of parameters and final scores (for a spreadsheet or a
// notebook), and one PNG contact sheet of the rows with their labels (for a report). Both
// are made in the page from what it already has; nothing new is asked of the service.

import { finalScores, jobLabel, paramText, sampleAt, scoresAt, SCORE_NAMES } from "./model.js";

/** RFC 4180 quoting, and a leading ' on text a spreadsheet would run as a formula (a prompt "=1+1"). */
function cell(value) {
  if (value === undefined || value === null) return "";
  let text = String(value);
  if (typeof value === "string" && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One line per job: id, each differing parameter, status, steps run, each final score. */
export function comparisonCsv(jobs, differing) {
  const header = ["id", ...differing, "status", "steps_run", ...SCORE_NAMES];
  const lines = [header.map(cell).join(",")];
  for (const job of jobs) {
    const scores = finalScores(job);
    const values = scores ? scores.values : {};
    const params = differing.map((name) => {
      const v = (job.params || {})[name];
      return typeof v === "number" || typeof v === "string" ? v : paramText(name, v);
    });
    lines.push([job.id, ...params, job.status, job.step ?? 0, ...SCORE_NAMES.map((n) => values[n])].map(cell).join(","));
  }
  return lines.join("\r\n") + "\r\n";
}

/** Hand `blob` to the browser as a download called `name`. */
export function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function loadImage(src) {
  const img = new Image();
  img.decoding = "async";
  img.src = src;
  return img.decode().then(() => img);
}

// A sample PNG is the source row over the adapted row with a 2-pixel gutter
// (worker/samples.py image_grid): each row is (height - 2) / 2 pixels tall.
const GUTTER = 2;
const rowHeight = (img) => Math.floor((img.naturalHeight - GUTTER) / 2);

const PAD = 16;
const LABEL = 34; // a label's two lines above its row
const MIN_WIDTH = 560;

/**
 * One PNG of the rows at `step` in the order shown: a title, the shared source row when
 * there is one, then each job's label, scores and adapted row. Resolves to a Blob.
 * urlOf(job, sample) -> the sample's (same-origin) URL, so the canvas stays exportable.
 */
export async function contactSheet({ jobs, differing, step, sharedSource, title, urlOf }) {
  const rows = await Promise.all(jobs.map(async (job) => {
    const at = sampleAt(job, step);
    const img = at ? await loadImage(urlOf(job, at.sample)).catch(() => null) : null;
    return { job, at, img };
  }));
  const imgs = rows.map((r) => r.img).filter(Boolean);
  const widest = Math.max(64, ...imgs.map((i) => i.naturalWidth));
  const scale = Math.max(1, Math.floor(MIN_WIDTH / widest)); // small samples drawn whole-pixel larger
  const width = Math.max(MIN_WIDTH, widest * scale) + 2 * PAD;
  // With a shared source row each job shows its adapted half; otherwise its whole sample.
  const shownHeight = (img) => (sharedSource ? rowHeight(img) : img.naturalHeight);
  const heights = rows.map((r) => (r.img ? shownHeight(r.img) * scale : 24));
  const sourceHeight = sharedSource && imgs.length ? rowHeight(imgs[0]) * scale + LABEL : 0;
  const height = PAD + 28 + sourceHeight + heights.reduce((a, b) => a + b + LABEL + 8, 0) + PAD;

  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, width, height);
  ctx.textBaseline = "top";
  const text = (s, x, y, { size = 13, bold = false, colour = "#1b1f24" } = {}) => {
    ctx.font = `${bold ? "600 " : ""}${size}px system-ui, sans-serif`;
    ctx.fillStyle = colour;
    ctx.fillText(s, x, y, width - x - PAD);
  };
  // `h` pixel rows of a sample (its bottom ones, or its top ones), drawn at (PAD, y).
  const drawRows = (img, h, y, fromTop = false) => {
    const sy = fromTop ? 0 : img.naturalHeight - h;
    ctx.drawImage(img, 0, sy, img.naturalWidth, h, PAD, y, img.naturalWidth * scale, h * scale);
  };

  let y = PAD;
  text(title, PAD, y, { size: 16, bold: true });
  y += 28;
  if (sourceHeight) {
    text("source (base generator, the same latents for every row)", PAD, y + 10, { colour: "#57606a" });
    drawRows(imgs[0], rowHeight(imgs[0]), y + LABEL - 4, true);
    y += sourceHeight;
  }
  rows.forEach(({ job, at, img }, i) => {
    const where = !at ? "not reached" : at.exact ? `step ${at.sample.step}` : `step ${at.sample.step} (latest before ${step})`;
    text(`${jobLabel(job, differing)}  ·  ${where}`, PAD, y, { bold: true });
    const scores = scoresAt(job, step);
    const line = scores ? SCORE_NAMES.filter((n) => typeof scores.values[n] === "number").map((n) => `${n} ${scores.values[n].toFixed(3)}`).join("   ") : job.status;
    text(line, PAD, y + 16, { size: 11, colour: "#57606a" });
    y += LABEL - 4;
    if (img) drawRows(img, shownHeight(img), y);
    else {
      ctx.fillStyle = "#eaeef2";
      ctx.fillRect(PAD, y, width - 2 * PAD, heights[i]);
      text("no sample yet", PAD + 8, y + 6, { size: 11, colour: "#57606a" });
    }
    y += heights[i] + 12;
  });
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("the browser could not encode the sheet"))), "image/png"));
}
