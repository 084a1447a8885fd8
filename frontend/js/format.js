// How job facts read on screen: durations, times, statuses, progress.

export const ACTIVE = new Set(["queued", "running"]);
export const FINISHED = new Set(["succeeded", "failed", "canceled"]);

export const STATUS_LABEL = {
  queued: "Queued",
  running: "Running",
  succeeded: "Done",
  failed: "Failed",
  canceled: "Canceled",
};

export const STAGE_LABEL = {
  loading: "Loading models",
  selecting: "Selecting layers",
  training: "Training",
  saving: "Saving",
  // a photo's inversion and edit (js/job/photo.js)
  aligning: "Aligning the face",
  encoding: "Encoding",
  refining: "Refining",
  rendering: "Rendering",
};

/** 75 -> "1 min 15 s"; 4000 -> "1 h 7 min". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const hours = Math.floor(m / 60);
  return m % 60 ? `${hours} h ${m % 60} min` : `${hours} h`;
}

export function parseTime(value) {
  if (!value) return null;
  const t = typeof value === "number" ? value * (value < 1e12 ? 1000 : 1) : Date.parse(value);
  return Number.isFinite(t) ? new Date(t) : null;
}

/** "just now", "3 min ago", "yesterday 14:02", "12 Mar 09:30". */
export function ago(value) {
  const date = parseTime(value);
  if (!date) return "";
  const seconds = (Date.now() - date.getTime()) / 1000;
  if (seconds < 10) return "just now";
  if (seconds < 3600) return `${duration(seconds).replace(/ \d+ s$/, "")} ago`;
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (seconds < 86400 && new Date().getDate() === date.getDate()) return `today ${time}`;
  return `${date.toLocaleDateString([], { day: "numeric", month: "short" })} ${time}`;
}

export function fullTime(value) {
  const date = parseTime(value);
  return date ? date.toLocaleString() : "";
}

/** Fraction done in 0..1 (a finished job is 1 whatever its step). */
export function fractionDone(job) {
  if (job.status === "succeeded") return 1;
  const total = Number(job.total_steps || (job.params && job.params.steps) || 0);
  if (!total) return 0;
  return Math.min(1, Math.max(0, Number(job.step || 0) / total));
}

/** One line on where a job stands: "Queued · #2 in line", "Training · 40 s left". */
export function whereText(job) {
  if (job.status === "queued") {
    const pos = job.queue_position;
    return Number.isFinite(pos) && pos !== null ? (pos <= 1 ? "Next in line" : `#${pos} in line`) : "Waiting for a worker";
  }
  if (job.status === "running") {
    const stage = STAGE_LABEL[job.stage] || "Starting";
    const eta = job.eta_seconds;
    return eta !== null && eta !== undefined && Number.isFinite(eta) ? `${stage} · ${duration(eta)} left` : stage;
  }
  if (job.status === "succeeded") {
    const took = tookSeconds(job);
    return took !== null ? `Finished in ${duration(took)}` : "Finished";
  }
  if (job.status === "failed") return (job.error && (job.error.message || job.error.code)) || "Failed";
  if (job.status === "canceled") return job.step ? `Canceled at step ${job.step}` : "Canceled before training";
  return job.status || "";
}

export function tookSeconds(job) {
  const start = parseTime(job.started_at);
  const end = parseTime(job.finished_at);
  return start && end ? (end - start) / 1000 : null;
}

export function promptText(job) {
  const p = job.params || job;
  // An image-guided job may have no text on either side: say what stands in for it.
  const images = (list, what) => (Array.isArray(list) && list.length ? `${list.length} ${what} image${list.length === 1 ? "" : "s"}` : "");
  const target = p.target_text || job.target_text || images(p.target_images, "example");
  const source = p.source_text || job.source_text || images(p.source_images, "source") || (target && p.target_images && p.target_images.length ? "its own samples" : "");
  return { source, target };
}

export function shortId(id) {
  const s = String(id || "");
  return s.length > 10 ? s.slice(0, 8) : s;
}
