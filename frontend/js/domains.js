// "Ready-made domains" on the home view: generators others adapted with StyleGAN-NADA
// (GET /domains), each with a "Use" button that makes a finished job of it without training
// (POST /domains/{name}/jobs) and opens that job: its photo and explore cards work as for a
// trained one. Also what the job view says of such a job (readyMade, readyMadeText).

import { request } from "./api.js";
import { fill, h, toast } from "./dom.js";

const AVAILABLE = { cached: "on this server", downloadable: "downloaded on first use", manual: "not available here" };

/** Whether `job` is a ready-made domain's job (jobs/kinds.py 'domain'): nothing was trained. */
export function readyMade(job) {
  return Boolean(job) && job.kind === "domain";
}

/** {source, target} for the job view's heading of a ready-made job: base → domain. */
export function readyMadeText(job) {
  const params = job.params || {};
  return { source: params.generator || "base", target: `ready-made ${params.domain || "domain"}` };
}

function row(domain, onCreated) {
  const usable = domain.availability !== "manual";
  const button = h("button", { type: "button", class: "button button-small", disabled: !usable,
    "aria-label": `Use ${domain.name}` }, "Use");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      onCreated(await request("POST", `domains/${encodeURIComponent(domain.name)}/jobs`, { timeout: 30000 }));
    } catch (err) {
      toast(`Could not use ${domain.name}: ${err.message}`, "error", 5000);
      button.disabled = false;
    }
  });
  const prompts = domain.target_text ? `${domain.source_text} → ${domain.target_text}` : "";
  return h("li", { class: "domain", "data-domain": domain.name },
    h("div", {},
      h("strong", {}, domain.name), " ",
      h("span", { class: "muted small" }, `${domain.description} · base ${domain.base} (${domain.size} px)`),
      prompts ? h("div", { class: "small" }, prompts) : null,
      h("div", { class: "small muted" }, `${AVAILABLE[domain.availability] || domain.availability}`,
        domain.availability_note ? ` — ${domain.availability_note}` : "",
        domain.license ? ` · License: ${domain.license}` : "")),
    button);
}

/** The home view's panel. opts.onCreated(job) opens the new (or earlier) job. Returns {element}. */
export function domainsPanel({ onCreated }) {
  const list = h("ul", { class: "domains-list" }, h("li", { class: "muted" }, "Loading…"));
  const element = h("section", { class: "panel domains-panel", "aria-labelledby": "domains-heading" },
    h("div", { class: "panel-head" }, h("h2", { id: "domains-heading" }, "Ready-made domains")),
    h("p", { class: "muted small" }, "Generators already adapted by others: use one like a finished job (try it on a photo, explore, compare) without training."),
    list);
  request("GET", "domains").then((body) => {
    const data = (body && Array.isArray(body.data)) ? body.data : [];
    fill(list, ...(data.length ? data.map((d) => row(d, onCreated)) : [h("li", { class: "muted" }, "None on this server.")]));
  }).catch((err) => fill(list, h("li", { class: "muted" }, `Could not load them: ${err.message}`)));
  return { element };
}
