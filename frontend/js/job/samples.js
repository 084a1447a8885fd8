// The samples card: the selected step's image (base generator on top, adapted below), a
// scrubber over every sampled step, and a strip of thumbnails. It follows the newest
// sample until the user picks an older one; "Jump to latest" resumes following.
// Steps that can be downloaded (the snapshots of `snapshot_every`, and the final step once
// the job succeeded) are marked on the scrubber and the strip, the recommended one too
// (GET /jobs/{id}/snapshots: the rule is in docs/api.md); on such a step the card offers
// "Download this step" and, for a snapshot, "Continue from this step" (the continue card).

import { api, serviceHref } from "../api.js";
import { h, setText } from "../dom.js";
import { FINISHED, shortId } from "../format.js";

/**
 * id: the job's id (for sample URLs the job JSON leaves out); onContinueFrom(step): the
 * "Continue from this step" button (absent: no button). Returns {element, update(job)}.
 */
export function samplesCard({ id, onContinueFrom }) {
  const state = { job: null, samples: [], selected: -1, followLatest: true, downloads: new Map(), recommended: null };
  const image = h("img", { class: "sample-image", alt: "", decoding: "async" });
  const imageWrap = h("div", { class: "sample-frame", hidden: true },
    image, h("span", { class: "row-label row-label-top" }, "source"), h("span", { class: "row-label row-label-bottom" }, "adapted"));
  const caption = h("figcaption", { class: "sample-caption" });
  const empty = h("p", { class: "samples-empty muted" }, "The first sample appears after the first sampled step.");
  const marks = h("datalist", { id: `snapshot-marks-${id}` });
  const scrubber = h("input", { type: "range", min: 0, max: 0, step: 1, value: 0, class: "scrubber", "aria-label": "Sampled step", list: marks.id, hidden: true });
  const download = h("a", { class: "button button-small", "data-role": "download-step", hidden: true }, "Download this step");
  const continueFrom = h("button", { type: "button", class: "button button-small button-quiet", "data-role": "continue-from-step", hidden: true }, "Continue from this step");
  const recommendedNote = h("p", { class: "muted small", "data-role": "recommended-step", hidden: true });
  const stepActions = h("div", { class: "actions step-actions" }, download, continueFrom);
  const latestButton = h("button", { type: "button", class: "button button-small button-quiet", hidden: true }, "Jump to latest");
  const strip = h("ol", { class: "strip", "aria-label": "Every sampled step" });
  const element = h("section", { class: "panel samples-card", "aria-labelledby": "samples-heading" },
    h("div", { class: "panel-head" }, h("h2", { id: "samples-heading" }, "Samples"), h("span", { class: "muted small" }, "top: base generator · bottom: adapted"), h("span", { class: "spacer" }), latestButton),
    h("figure", { class: "sample-figure" }, imageWrap, empty, caption),
    h("div", { class: "scrub-row" }, scrubber, marks), stepActions, recommendedNote, strip);

  const urlOf = (s) => serviceHref(s.url) || api.sampleUrl(id, s.step);

  function select(index, { announce = false } = {}) {
    const s = state.samples[index];
    if (!s) return;
    state.selected = index;
    const src = urlOf(s);
    if (image.getAttribute("src") !== src) image.src = src;
    image.alt = `Step ${s.step}: images of the base generator (top row) and of the adapted generator (bottom row)`;
    const of = state.job && state.job.total_steps ? ` of ${state.job.total_steps}` : "";
    const latest = index === state.samples.length - 1 ? " · latest" : "";
    const kept = state.recommended === s.step ? " · recommended" : (state.downloads.has(s.step) ? " · downloadable" : "");
    setText(caption, s.step === 0 ? `Step 0, before training: both rows alike${latest}` : `Step ${s.step}${of}${latest}${kept}`);
    showStepActions(s.step);
    scrubber.value = String(index);
    scrubber.setAttribute("aria-valuetext", `step ${s.step}`);
    strip.querySelectorAll("button").forEach((b, i) => b.setAttribute("aria-pressed", String(i === index)));
    const thumb = strip.children[index];
    if (thumb && announce) thumb.scrollIntoView({ block: "nearest", inline: "nearest" });
    latestButton.hidden = state.followLatest || index === state.samples.length - 1;
  }

  /** The downloads of the job's kept steps: {step: url}; the final one is the checkpoint. */
  function downloadsOf(job) {
    const urls = new Map((job.snapshots || []).filter((x) => x && x.url).map((x) => [x.step, x.url]));
    if (job.checkpoint_url && job.total_steps) urls.set(job.total_steps, job.checkpoint_url);
    return urls;
  }

  function showStepActions(step) {
    const url = state.downloads.get(step);
    download.hidden = !url;
    continueFrom.hidden = true;
    if (!url) return;
    download.href = serviceHref(url);
    download.setAttribute("download", `nada-${shortId(id)}-step${step}.pt`);
    setText(download, state.recommended === step ? `Download this step (${step}, recommended)` : `Download this step (${step})`);
    const job = state.job || {};
    const last = step === job.total_steps; // the continue card's default already
    continueFrom.hidden = !onContinueFrom || last || job.status !== "succeeded";
    continueFrom.onclick = () => onContinueFrom(step);
  }

  /** The kept and recommended steps on the strip and the scrubber's tick marks. */
  function mark() {
    const ticks = [];
    state.samples.forEach((s, i) => {
      const thumb = strip.children[i] && strip.children[i].querySelector("button");
      if (!thumb) return;
      const kept = state.downloads.has(s.step);
      const recommended = state.recommended === s.step;
      thumb.dataset.snapshot = String(kept);
      thumb.dataset.recommended = String(recommended);
      setText(thumb.querySelector("span"), recommended ? `step ${s.step} ★` : (kept ? `step ${s.step} ⤓` : `step ${s.step}`));
      thumb.setAttribute("aria-label", `Show step ${s.step}${recommended ? " (recommended)" : ""}${kept ? ", downloadable" : ""}`);
      if (kept) ticks.push(h("option", { value: String(i), label: recommended ? `${s.step} ★` : String(s.step) }));
    });
    marks.replaceChildren(...ticks);
    const r = state.recommended;
    recommendedNote.hidden = r === null;
    setText(recommendedNote, r === null ? "" : `Recommended step: ${r} (★), the best direction among the kept steps whose content and diversity stay above the thresholds (docs/api.md).`);
  }

  function addThumb(s, index) {
    const thumb = h("img", { src: urlOf(s), alt: "", loading: "lazy", decoding: "async" });
    strip.append(h("li", {}, h("button", {
      type: "button", class: "thumb", "aria-pressed": "false", "aria-label": `Show step ${s.step}`,
      onclick: () => { state.followLatest = index === state.samples.length - 1; select(index); },
    }, thumb, h("span", {}, `step ${s.step}`))));
  }

  function update(job) {
    state.job = job;
    const list = (job.samples || []).filter((s) => s && s.step !== undefined).slice().sort((a, b) => a.step - b.step);
    const known = new Set(state.samples.map((s) => s.step));
    let added = false;
    for (const s of list) {
      if (known.has(s.step)) continue;
      added = true;
      state.samples.push(s);
      addThumb(s, state.samples.length - 1);
    }
    state.samples.sort((a, b) => a.step - b.step);
    state.downloads = downloadsOf(job);
    state.recommended = Number.isInteger(job.recommended_step) ? job.recommended_step : null;
    mark();
    const n = state.samples.length;
    imageWrap.hidden = n === 0;
    empty.hidden = n > 0;
    setText(empty, FINISHED.has(job.status) ? "No samples were written." : "The first sample appears after the first sampled step.");
    scrubber.hidden = n < 2;
    scrubber.max = String(Math.max(0, n - 1));
    if (!n) return;
    if (added && state.followLatest) select(n - 1, { announce: true });
    else if (state.selected < 0) select(n - 1);
    else select(state.selected);
  }

  scrubber.addEventListener("input", () => {
    const index = Number(scrubber.value);
    state.followLatest = index === state.samples.length - 1;
    select(index, { announce: true });
  });
  latestButton.addEventListener("click", () => {
    state.followLatest = true;
    select(state.samples.length - 1, { announce: true });
    scrubber.focus();
  });

  return { element, update };
}
