// One job: progress, the sampled source/adapted pairs with a scrubber over every sampled
// step, the loss chart, the selected layers, the parameters, cancel and downloads, and,
// once it succeeded, "Explore" (seeds, style mixing, videos) and "Try it on a photo".
// Each section is a module in job/ that builds its element once and updates it in place
// from each fresh job JSON; this file lays them out and wires the live updates
// (SSE-driven, or polled) to them.

import { fill, h, toast } from "./dom.js";
import { statusBanner } from "./job/banner.js";
import { checkpointsCard } from "./job/checkpoints.js";
import { continueCard } from "./job/continue.js";
import { examplesCard } from "./job/examples.js";
import { exploreCard } from "./job/explore.js";
import { jobHeading } from "./job/heading.js";
import { layersCard } from "./job/layers.js";
import { lossCard } from "./job/loss.js";
import { scoresCard } from "./job/scores.js";
import { paramsCard, timesCard } from "./job/params.js";
import { photoCard } from "./job/photo.js";
import { progressCard } from "./job/progress.js";
import { samplesCard } from "./job/samples.js";
import { webhookCard } from "./job/webhook.js";
import { followJob } from "./live.js";
import { readyMade } from "./domains.js";

/**
 * Mount the view for job `id` into `main`. ctx.onRerun(params) opens the form prefilled.
 * Returns stop() (closes the event streams).
 */
export function mountJobView(main, id, ctx) {
  const heading = jobHeading();
  const examples = examplesCard({ id });
  const banner = statusBanner();
  const progress = progressCard({ id, onJob: (job) => render(job), onRerun: ctx.onRerun });
  const samples = samplesCard({ id, onContinueFrom: (step) => more.fromStep(step) });
  const loss = lossCard();
  const scores = scoresCard();
  const layers = layersCard();
  const checkpoints = checkpointsCard();
  const params = paramsCard();
  const more = continueCard({ id });
  const times = timesCard();
  const webhook = webhookCard({ id });
  const photo = photoCard({ jobId: id });
  const explore = exploreCard({ jobId: id });
  const sections = [heading, examples, banner, progress, samples, explore, photo, loss, scores, layers, checkpoints, params, times, more, webhook];

  fill(main,
    h("div", { class: "job-view" },
      heading.element,
      examples.element,
      banner.element,
      h("div", { class: "columns" },
        h("div", { class: "col-main" }, progress.element, samples.element, explore.element, photo.element),
        h("div", { class: "col-side" }, more.element, loss.element, scores.element, layers.element, checkpoints.element, webhook.element, params.element, times.element))));
  heading.focus();

  function render(job) {
    main.dataset.jobStatus = job.status;
    for (const section of sections) section.update(job);
    // A ready-made domain trained nothing here: no samples, charts, layers or continuation.
    if (readyMade(job)) for (const section of [examples, samples, loss, scores, layers, checkpoints, more]) section.element.hidden = true;
  }

  let seenJob = false;
  const stopFollowing = followJob(id, {
    onJob: (job) => { seenJob = true; render(job); },
    onEvent: (type, data) => {
      // The stream starts from the job's first event, so this also rebuilds the history
      // that the job JSON (latest losses only) does not keep.
      if (type === "progress" && data && typeof data === "object" && data.losses && Number.isFinite(data.step)) {
        loss.addProgress(data.step, data.losses);
      }
    },
    onMode: progress.setMode,
    onError: (err) => {
      if (err.status === 404) {
        fill(main, h("section", { class: "panel not-found" }, h("h1", {}, "No such job"),
          h("p", {}, `The service has no job “${id}”. It may have been deleted.`), h("a", { href: "#/jobs" }, "← All jobs")));
      } else if (!seenJob) {
        heading.fail("Could not load the job");
        banner.showError(err.message);
      } else toast(`Connection trouble: ${err.message}`, "error", 3000);
    },
  });
  return () => { stopFollowing(); photo.stop(); explore.stop(); };
}
