// The webhook card: where the job's events go and how each delivery fared (GET
// /jobs/{id}/deliveries: event, state, every attempt's status or error). Hidden for a job
// without a webhook. Fetched again as the job changes, at most every two seconds.

import { api } from "../api.js";
import { fill, h } from "../dom.js";

const REFRESH_MS = 2000;

function attemptText(a) {
  if (a.error) return a.status ? `${a.status}: ${a.error}` : a.error;
  return `${a.status} in ${Math.round(a.latency_ms)} ms`;
}

/** Returns {element, update(job)}. */
export function webhookCard({ id }) {
  const target = h("p", { class: "muted small", "data-role": "webhook-url" });
  const list = h("ul", { class: "deliveries", "data-role": "deliveries" });
  const element = h("section", { class: "panel", "aria-labelledby": "webhook-heading", hidden: true },
    h("h2", { id: "webhook-heading" }, "Webhook"), target, list);
  let last = 0;
  let pending = null;

  async function refresh() {
    last = Date.now();
    let data;
    try {
      data = await api.deliveries(id);
    } catch {
      return; // shown again at the next update
    }
    fill(list, (data.data || []).map((d) => {
      const tries = d.attempts || [];
      const lastTry = tries[tries.length - 1];
      const state = d.state === "pending" && tries.length ? "retrying" : d.state;
      return h("li", { "data-event": d.event, "data-state": d.state },
        h("strong", {}, d.event), " ",
        h("span", { class: `badge badge-${d.state}` }, state),
        h("span", { class: "muted small" },
          ` ${tries.length} ${tries.length === 1 ? "attempt" : "attempts"}`,
          lastTry ? ` · last: ${attemptText(lastTry)}` : ""));
    }));
  }

  function update(job) {
    element.hidden = !job.webhook;
    if (!job.webhook) return;
    target.textContent = `${job.webhook.url} · ${job.webhook.events.join(", ")}`;
    const wait = Math.max(0, REFRESH_MS - (Date.now() - last));
    if (pending) return;
    pending = setTimeout(() => { pending = null; refresh(); }, wait);
  }

  return { element, update };
}
