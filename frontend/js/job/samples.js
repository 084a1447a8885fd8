// The samples card: the selected step's image (base generator on top, adapted below), a
// scrubber over every sampled step, and a strip of thumbnails. It follows the newest
// sample until the user picks an older one; "Jump to latest" resumes following.

import { api, serviceHref } from "../api.js";
import { h, setText } from "../dom.js";
import { FINISHED } from "../format.js";

/** id: the job's id (for sample URLs the job JSON leaves out). Returns {element, update(job)}. */
export function samplesCard({ id }) {
  const state = { job: null, samples: [], selected: -1, followLatest: true };
  const image = h("img", { class: "sample-image", alt: "", decoding: "async" });
  const imageWrap = h("div", { class: "sample-frame", hidden: true },
    image, h("span", { class: "row-label row-label-top" }, "source"), h("span", { class: "row-label row-label-bottom" }, "adapted"));
  const caption = h("figcaption", { class: "sample-caption" });
  const empty = h("p", { class: "samples-empty muted" }, "The first sample appears after the first sampled step.");
  const scrubber = h("input", { type: "range", min: 0, max: 0, step: 1, value: 0, class: "scrubber", "aria-label": "Sampled step", hidden: true });
  const latestButton = h("button", { type: "button", class: "button button-small button-quiet", hidden: true }, "Jump to latest");
  const strip = h("ol", { class: "strip", "aria-label": "Every sampled step" });
  const element = h("section", { class: "panel samples-card", "aria-labelledby": "samples-heading" },
    h("div", { class: "panel-head" }, h("h2", { id: "samples-heading" }, "Samples"), h("span", { class: "muted small" }, "top: base generator · bottom: adapted"), h("span", { class: "spacer" }), latestButton),
    h("figure", { class: "sample-figure" }, imageWrap, empty, caption),
    h("div", { class: "scrub-row" }, scrubber), strip);

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
    setText(caption, s.step === 0 ? `Step 0, before training: both rows alike${latest}` : `Step ${s.step}${of}${latest}`);
    scrubber.value = String(index);
    scrubber.setAttribute("aria-valuetext", `step ${s.step}`);
    strip.querySelectorAll("button").forEach((b, i) => b.setAttribute("aria-pressed", String(i === index)));
    const thumb = strip.children[index];
    if (thumb && announce) thumb.scrollIntoView({ block: "nearest", inline: "nearest" });
    latestButton.hidden = state.followLatest || index === state.samples.length - 1;
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
