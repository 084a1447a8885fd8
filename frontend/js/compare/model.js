// What a comparison shows, computed from the job JSONs alone (no DOM): the parameters that
// tell the jobs apart, the steps a shared slider can stop at, each job's sample and scores at
// a step, and the row order a score column sorts to. Worked out client-side so a hand-picked
// set of jobs compares as well as a sweep.

import { formatNumber } from "../schema.js";
import { SCORES, SCORE_NAMES } from "../job/scores.js";

// The parameters that fix a sample's latents and source row (worker/engine.py draws them
// from `seed`, renders them through `generator` at `sample_truncation`).
export const LATENT_PARAMS = ["generator", "seed", "n_samples", "sample_truncation"];

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/** A parameter's value as a label shows it: "0.002", "on", "ViT-B-32 × 1". */
export function paramText(name, v) {
  // Example images are named by sha256: a count reads better than 64 hex digits each.
  if ((name === "target_images" || name === "source_images") && Array.isArray(v)) return v.length === 1 ? "1 image" : `${v.length} images`;
  if (name === "clip_models" && Array.isArray(v)) return v.map((c) => `${c.name} × ${formatNumber(c.weight ?? 1)}`).join(", ");
  if (typeof v === "boolean") return v ? "on" : "off";
  if (typeof v === "number") return formatNumber(v);
  if (v === null || v === undefined) return "—";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/**
 * The parameter names whose values are not the same in every job, `first` (a sweep's
 * `varying`, its grid order) leading, the rest in the first job's order.
 */
export function differingParams(jobs, first = []) {
  const names = [];
  for (const job of jobs) for (const name of Object.keys(job.params || {})) if (!names.includes(name)) names.push(name);
  const differs = (name) => jobs.some((j) => !same((j.params || {})[name], (jobs[0].params || {})[name]));
  const out = first.filter((name) => names.includes(name) && differs(name));
  for (const name of names) if (!out.includes(name) && differs(name)) out.push(name);
  return out;
}

/** True when every job's samples are drawn from the same latents by the same base generator. */
export function sharesLatents(jobs) {
  return jobs.length > 0 && LATENT_PARAMS.every((name) => jobs.every((j) => same((j.params || {})[name], (jobs[0].params || {})[name])));
}

/** "layers=3 · lr=0.002" (or the prompts when nothing differs: a set of one job). */
export function jobLabel(job, differing) {
  if (!differing.length) {
    const p = job.params || {};
    return `${p.source_text || ""} → ${p.target_text || ""}`;
  }
  return differing.map((name) => `${name}=${paramText(name, (job.params || {})[name])}`).join(" · ");
}

export const samplesOf = (job) => (job.samples || []).filter((s) => s && Number.isFinite(s.step)).slice().sort((a, b) => a.step - b.step);

/** Every step at which some job wrote a sample, ascending. */
export function stepUnion(jobs) {
  return [...new Set(jobs.flatMap((j) => samplesOf(j).map((s) => s.step)))].sort((a, b) => a - b);
}

/** The job's sample at `step`, else its latest before it ({sample, exact}); null when none. */
export function sampleAt(job, step) {
  let found = null;
  for (const s of samplesOf(job)) if (s.step <= step) found = s;
  return found ? { sample: found, exact: found.step === step } : null;
}

/** The scores measured at `step` if the job has them there, else its final ones ({step, values, atStep}). */
export function scoresAt(job, step) {
  const history = (job.scores || []).filter((e) => e && e.values && Number.isFinite(e.step));
  if (!history.length) return null;
  const exact = history.find((e) => e.step === step);
  const entry = exact || history.reduce((a, b) => (b.step > a.step ? b : a));
  return { step: entry.step, values: entry.values, atStep: Boolean(exact) };
}

export function finalScores(job) {
  return scoresAt(job, Number.NaN);
}

/** The order a column header's first click sorts to: the better end of a score first (as the
 * service declares it: GET /params → scores). */
export function firstDirection(key) {
  const score = SCORES.find((s) => s.name === key);
  return score && score.higherIsBetter ? "descending" : "ascending";
}

/**
 * `jobs` in the order `key` sorts them ('score:<name>' at `step`, or 'param:<name>'); jobs
 * without a value go last either way, ties keep their given order.
 */
export function sortJobs(jobs, { key, direction, step }) {
  if (!key) return jobs.slice();
  const [kind, name] = key.split(":");
  const valueOf = (job) => {
    if (kind === "score") {
      const s = scoresAt(job, step);
      const v = s ? s.values[name] : undefined;
      return typeof v === "number" && Number.isFinite(v) ? v : undefined;
    }
    const v = (job.params || {})[name];
    return v === undefined || v === null ? undefined : v;
  };
  const sign = direction === "descending" ? -1 : 1;
  return jobs
    .map((job, index) => ({ job, index, v: valueOf(job) }))
    .sort((a, b) => {
      if (a.v === undefined || b.v === undefined) return (a.v === undefined) - (b.v === undefined) || a.index - b.index;
      const c = typeof a.v === "number" && typeof b.v === "number" ? a.v - b.v : String(paramText(name, a.v)).localeCompare(paramText(name, b.v), undefined, { numeric: true });
      return sign * c || a.index - b.index;
    })
    .map((x) => x.job);
}

// The score names (filled by loadScores(), as SCORES is).
export { SCORE_NAMES };
