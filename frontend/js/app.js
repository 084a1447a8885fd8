// Entry point: hash routing (#/, #/jobs, #/jobs/<id>) so every view is linkable, the
// service's health in the header, and the data the form needs (schema, generators, CLIP models).

import { api, listOf } from "./api.js";
import { fill, h, setText } from "./dom.js";
import { clipAvailability, clipNames } from "./clip-field.js";
import { mountComparison } from "./compare.js";
import { domainsPanel } from "./domains.js";
import { jobForm } from "./form.js";
import { mountJobView } from "./job.js";
import { jobsList } from "./jobs.js";
import { every } from "./live.js";
import { loadSchema } from "./schema.js";
import { mountSignIn } from "./signin.js";

const main = document.getElementById("main");
let teardown = () => {};
let prefill = null;
let formData = null;

/** Schema, generators and CLIP models, fetched once (retried on the next visit if they failed). */
function loadFormData() {
  if (!formData) {
    formData = Promise.all([
      loadSchema(),
      api.generators(),
      api.clipModels().catch(() => []),
    ]).then(([schema, gens, clips]) => ({
      schema,
      generators: listOf(gens),
      randomSizes: (gens && Array.isArray(gens.random_sizes) ? gens.random_sizes : []),
      clipModels: clipNames(clips),
      clipAvailability: clipAvailability(clips),
    }));
    formData.catch(() => { formData = null; });
  }
  return formData;
}

function homeView() {
  const formSlot = h("section", { class: "panel form-panel", "aria-labelledby": "form-heading" },
    h("div", { class: "panel-head" }, h("h1", { id: "form-heading" }, "New adaptation")),
    h("p", { class: "lede muted" }, "Describe what the generator makes now and what it should make instead. CLIP steers a copy of the generator toward the target; you watch source and adapted images side by side as it trains."),
    h("p", { class: "loading muted" }, "Loading the service's generators and defaults…"));
  const jobs = jobsList({ compact: true });
  const domains = domainsPanel({ onCreated: (job) => { location.hash = `#/jobs/${encodeURIComponent(job.id)}`; } });
  fill(main, h("div", { class: "home" }, formSlot, jobs.element, domains.element));
  let alive = true;
  loadFormData().then((data) => {
    if (!alive) return;
    const form = jobForm({
      ...data,
      prefill,
      onCreated: (job) => { prefill = null; location.hash = `#/jobs/${encodeURIComponent(job.id)}`; },
      onSweepCreated: (sweep) => { prefill = null; location.hash = `#/sweeps/${encodeURIComponent(sweep.id)}`; },
    });
    formSlot.querySelector(".loading").replaceWith(form);
    prefill = null;
  }).catch((err) => {
    if (!alive) return;
    formSlot.querySelector(".loading").replaceWith(h("div", { class: "banner banner-failed", role: "alert" },
      h("strong", {}, "Could not load the form. "), err.message, " ",
      h("button", { type: "button", class: "button button-small", onclick: () => route() }, "Retry")));
  });
  return () => { alive = false; jobs.stop(); };
}

function jobsView() {
  const jobs = jobsList({ compact: false });
  fill(main, h("div", { class: "jobs-page" }, jobs.element));
  return jobs.stop;
}

function notFound() {
  fill(main, h("section", { class: "panel not-found" }, h("h1", {}, "Nothing here"),
    h("p", {}, "This address does not name a view."), h("a", { href: "#/" }, "← New job")));
  return () => {};
}

function route() {
  teardown();
  const hash = location.hash.replace(/^#\/?/, "");
  const parts = hash.split("/").filter(Boolean).map(decodeURIComponent);
  let nav = "";
  if (parts.length === 0) {
    document.title = "StyleGAN-NADA";
    teardown = homeView();
    nav = "home";
  } else if (parts[0] === "jobs" && parts.length === 1) {
    document.title = "Jobs — StyleGAN-NADA";
    teardown = jobsView();
    nav = "jobs";
  } else if (parts[0] === "jobs" && parts.length === 2) {
    teardown = mountJobView(main, parts[1], {
      onRerun: (params) => { prefill = params; location.hash = "#/"; },
    });
    nav = "jobs";
  } else if (parts[0] && /^(compare|sweeps)(\?|$)/.test(parts[0])) {
    // #/sweeps, #/sweeps/<id>, #/compare?jobs=<id>,<id> (picked in the jobs list: "Jobs")
    teardown = mountComparison(main, hash);
    nav = parts[0] === "sweeps" ? "sweeps" : "jobs";
  } else {
    teardown = notFound();
  }
  document.querySelectorAll("[data-nav]").forEach((a) => {
    if (a.dataset.nav === nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
}

function watchHealth() {
  const el = document.getElementById("health");
  const text = el.querySelector(".health-text");
  every(15000, async () => {
    try {
      const data = await api.health();
      const status = data && typeof data === "object" ? data.status : "ok";
      el.dataset.state = status === "ok" ? "ok" : "degraded";
      const down = data && typeof data === "object"
        ? Object.entries(data).filter(([, v]) => v === "unavailable").map(([k]) => k) : [];
      setText(text, down.length ? `Degraded: ${down.join(", ")} unavailable` : status === "ok" ? "Online" : `Service ${status}`);
      el.title = data && data.version ? `service version ${data.version}` : "";
    } catch (err) {
      el.dataset.state = "down";
      setText(text, err.status ? `Service error ${err.status}` : "Offline");
    }
  });
}

window.addEventListener("hashchange", () => {
  window.scrollTo(0, 0);
  route();
  // Move focus into the new view (the job view focuses its own heading) for keyboard users.
  if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
});
route();
watchHealth();
// After signing in (or out) the views reload what the missing token had refused.
mountSignIn(document.getElementById("account"), () => { formData = null; route(); });
