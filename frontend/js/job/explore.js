// "Explore", on a succeeded adaptation job: chosen seeds drawn by the base generator and
// this job's adapted one with the same latents (source over adapted), style mixing grids,
// and interpolation videos (source | adapted). Each draw is a render job on the service's
// fast lane (POST /jobs/{id}/renders, followed like a job); the same request again answers
// with the earlier render at once.
//
// Parts: explore-form.js (modes, seeds, truncation). This file runs one render at a time:
// submit → follow → show the picture or the video with its download link.

import { api, serviceHref } from "../api.js";
import { h, setText } from "../dom.js";
import { ACTIVE, FINISHED, STAGE_LABEL, whereText } from "../format.js";
import { progressBar } from "../jobs.js";
import { followJob } from "../live.js";
import { exploreForm, generatorSize } from "./explore-form.js";

const WHAT = { seeds: "Drawing the seeds", mix: "Mixing styles", video: "Making the video", domains: "Making the video through domains" };

function statusText(render) {
  const what = WHAT[render.mode] || "Drawing";
  if (render.status === "queued") return `${what}: queued (${whereText(render).toLowerCase()}).`;
  if (render.status === "running") {
    const stage = (STAGE_LABEL[render.stage] || "starting").toLowerCase();
    return `${what}: ${stage}… ${render.step || 0} / ${render.total_steps || 0} ${render.mode === "video" ? "frames" : "pictures"}`; // domains: a step is a picture
  }
  return `${what}…`;
}

/** jobId: the adaptation job. Returns {element, update(job), stop()}. */
export function exploreCard({ jobId }) {
  let following = null; // stop() of the render being followed
  let tries = 0; // bumped by each render and by stop(): a stale one's callbacks do nothing

  const form = exploreForm({ onSubmit: (body) => start(body) });
  api.renderParams().then((params) => form.setFields(params), () => {});
  const status = h("p", { class: "explore-status", role: "status", "aria-live": "polite" });
  const bar = h("div", { class: "progress-slot" });
  const failure = h("div", { class: "explore-failure", role: "alert", hidden: true });
  const media = h("div", { class: "explore-media" });
  const caption = h("p", { class: "muted small explore-caption" });
  const links = h("div", { class: "explore-links" });
  const result = h("figure", { class: "explore-result", hidden: true }, media, h("figcaption", {}, caption, links));
  const element = h("section", { class: "panel explore-card", "aria-labelledby": "explore-heading", hidden: true },
    h("div", { class: "panel-head" }, h("h2", { id: "explore-heading" }, "Explore")),
    h("p", { class: "muted small explore-intro" }, "The same seeds through the base generator and this job's adapted one, side by side: pick seeds and a truncation, mix the styles of two seeds, or make a video."),
    form.element, status, bar, failure, result);

  function showFailure(message, code) {
    failure.hidden = false;
    failure.replaceChildren(h("strong", {}, "Could not draw it."), " ", message || "The worker gave no reason.",
      code ? h("span", { class: "error-code" }, ` (${code})`) : null);
  }

  function download(url, text) {
    const href = serviceHref(url);
    const name = href.split("/").pop();
    return h("a", { class: "button button-small", href, download: name, "data-role": `download-${name.split(".").pop()}` }, text);
  }

  function showResult(render) {
    result.hidden = false;
    const video = render.video_url && serviceHref(render.video_url);
    let shown;
    const domains = render.mode === "domains";
    const label = domains ? "Video through domains: the seeds while the weights move from the base generator to this job's domain and on"
      : "Interpolation video: base generator left, adapted right";
    if (video && render.params.format === "mp4") {
      shown = h("video", { src: video, controls: true, loop: true, muted: true, autoplay: true, playsinline: true,
        poster: serviceHref(render.image_url), "aria-label": label });
    } else if (video) {
      shown = h("img", { src: video, alt: `${label} (GIF)` });
    } else {
      const alt = render.mode === "mix" ? "Style mixing grids: the base generator's above, the adapted one's below"
        : "Each seed drawn by the base generator (top row) and the adapted one (bottom row)";
      shown = h("img", { src: serviceHref(render.image_url), alt });
    }
    media.replaceChildren(shown);
    const dialed = render.params.strength != null && render.params.strength !== 1
      ? ` The adapted side at strength ${Number(render.params.strength).toFixed(2)}.` : "";
    const frames = domains ? render.total_steps / render.params.domain_seeds.length : render.total_steps;
    const blended = (render.params.blend || []).length ? ", then the blended job's" : "";
    setText(caption, (domains
      ? `${frames} frames at ${render.params.fps} fps: the base generator, this job's domain${blended}.`
      : render.mode === "video"
      ? `${render.total_steps} frames at ${render.params.fps} fps; base generator left, adapted right.`
      : render.mode === "mix"
        ? "Rows: coarse styles from the row seed; columns: fine styles from the column seed. Base generator above, adapted below."
        : "Top: the base generator; bottom: this job's adapted generator.") + dialed);
    links.replaceChildren(...[video ? download(render.video_url, `Download ${render.params.format.toUpperCase()}`) : null,
      download(render.image_url, domains ? "Download the stops (PNG)" : video ? "Download keyframes (PNG)" : "Download PNG")].filter(Boolean));
  }

  function finish(render, attempt) {
    if (attempt !== tries) return;
    form.setBusy(false);
    bar.replaceChildren();
    if (render.status === "succeeded") {
      setText(status, "Done.");
      showResult(render);
    } else if (render.status === "canceled") setText(status, "Canceled.");
    else {
      setText(status, "Failed.");
      const err = render.error || {};
      showFailure(err.message, err.code);
    }
  }

  function show(render, attempt) {
    if (attempt !== tries) return;
    setText(status, statusText(render));
    bar.replaceChildren(ACTIVE.has(render.status) ? progressBar(render, { label: "Render progress" }) : "");
  }

  async function start(body) {
    tries += 1;
    const attempt = tries;
    if (following) following();
    following = null;
    failure.hidden = true;
    result.hidden = true;
    media.replaceChildren();
    form.setBusy(true);
    setText(status, "Sending…");
    let render;
    try {
      render = await api.createRender(jobId, body);
    } catch (err) {
      if (attempt !== tries) return;
      form.setBusy(false);
      setText(status, "");
      form.showErrors(err.fieldErrors && err.fieldErrors.length ? err.fieldErrors : [{ field: null, message: err.message }]);
      return;
    }
    if (attempt !== tries) return;
    if (FINISHED.has(render.status)) return finish(render, attempt);
    show(render, attempt);
    following = followJob(render.id, {
      load: () => api.getRender(render.id),
      onJob: (job) => (FINISHED.has(job.status) ? finish(job, attempt) : show(job, attempt)),
      onError: (err) => {
        if (attempt !== tries) return;
        if (err.status === 404) finish({ status: "failed", error: { message: "the render was deleted" } }, attempt);
        else setText(status, `Connection trouble (${err.message}); still trying…`);
      },
    });
  }

  let sized = false; // the generator's size asked for (crossover's range follows its W+)
  function update(job) {
    element.hidden = !(["adapt", "domain"].includes(job.kind || "adapt") && job.status === "succeeded");
    if (element.hidden || sized) return;
    sized = true;
    const name = job.params && job.params.generator;
    blendChoices(job.id, name);
    const size = generatorSize(name, null);
    if (size) form.setGeneratorSize(size);
    else api.generators().then((catalogue) => form.setGeneratorSize(generatorSize(name, catalogue)), () => {});
  }

  /** The finished jobs (adaptations, ready-made domains) on base `generator` but `id`: what
   *  this job may be blended with (the service checks again: 422 naming `blend`). */
  function blendChoices(id, generator) {
    const kinds = ["adapt", "domain"].map((kind) => api.listJobs({ kind, status: "succeeded", limit: 100 }).then((r) => r.data, () => []));
    Promise.all(kinds).then((lists) => {
      const jobs = lists.flat().filter((j) => j.id !== id && j.params && j.params.generator === generator);
      form.setBlendChoices(jobs.map((j) => ({ id: j.id, label: `${j.params.target_text || j.params.domain || "job"} (${j.id.slice(0, 8)})` })));
    });
  }

  /** The view is closing: stop following (the service finishes the render regardless). */
  function stop() {
    tries += 1;
    if (following) following();
    following = null;
  }

  return { element, update, stop };
}
