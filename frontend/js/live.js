// Following one job live: Server-Sent Events first, polling when the stream is unavailable.
//
// The events only say *that* something changed (and usually what); the job JSON stays the
// truth, so each event schedules a throttled re-read of GET /jobs/{id}. EventSource resends
// Last-Event-ID by itself when it reconnects, so a dropped connection loses nothing.

import { api } from "./api.js";

const EVENT_TYPES = ["queued", "started", "progress", "sample", "checkpoint", "snapshot", "succeeded", "failed", "canceled", "heartbeat", "message"];
const TERMINAL_EVENTS = new Set(["succeeded", "failed", "canceled"]);

/**
 * Follow job `id`. Calls onJob(job) with each fresh job JSON, onEvent(type, data) with each
 * stream event, onMode("live" | "polling" | "stopped") when the transport changes.
 * `load` reads the job (default GET /jobs/{id}; an inversion's or edit's own view adds its
 * picture URLs). Returns stop(). Stops by itself once the job is finished and its stream
 * has ended.
 */
export function followJob(id, { onJob, onEvent = () => {}, onMode = () => {}, onError = () => {}, load = () => api.getJob(id), pollMs = 2000, throttleMs = 700 }) {
  let stopped = false;
  let source = null;
  let pollTimer = null;
  let safetyTimer = null;
  let pending = null;
  let inFlight = false;
  let lastFetch = 0;
  let failuresWithoutMessage = 0;
  let finished = false; // the job JSON said succeeded/failed/canceled
  let streamDone = false; // the stream delivered its final event

  async function refresh() {
    if (stopped) return;
    if (inFlight) { schedule(); return; }
    inFlight = true;
    lastFetch = Date.now();
    try {
      const job = await load();
      if (stopped) return;
      onJob(job);
      if (["succeeded", "failed", "canceled"].includes(job.status)) finish();
    } catch (err) {
      if (!stopped) onError(err);
      if (err.status === 404) stop();
    } finally {
      inFlight = false;
    }
  }

  function schedule(now = false) {
    if (stopped || pending || finished) return;
    const wait = now ? 0 : Math.max(0, throttleMs - (Date.now() - lastFetch));
    pending = setTimeout(() => { pending = null; refresh(); }, wait);
  }

  function startPolling() {
    if (stopped || pollTimer) return;
    if (source) { source.close(); source = null; }
    onMode("polling");
    pollTimer = setInterval(() => { if (!document.hidden) refresh(); }, pollMs);
    refresh();
  }

  function startStream() {
    if (typeof EventSource === "undefined") return startPolling();
    source = new EventSource(api.eventsUrl(id));
    source.onopen = () => onMode("live");
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (e) => {
        failuresWithoutMessage = 0;
        let data = null;
        try { data = e.data ? JSON.parse(e.data) : null; } catch { data = e.data; }
        onEvent(type, data);
        if (type === "heartbeat") return;
        if (TERMINAL_EVENTS.has(type)) {
          streamDone = true;
          source.close(); // the server ends the stream here; do not let EventSource reconnect
          if (finished) return stop();
        }
        schedule(TERMINAL_EVENTS.has(type));
      });
    }
    source.onerror = () => {
      if (stopped) return;
      if (finished) return stop();
      failuresWithoutMessage += 1;
      // CLOSED: the server refused the stream (404, wrong content type); a few reconnects
      // in a row without a message: a proxy that buffers or cuts streams. Either way, poll.
      if (source.readyState === EventSource.CLOSED || failuresWithoutMessage >= 3) startPolling();
      else schedule(); // the stream dropped: re-read the job so nothing is missed meanwhile
    };
    // A slow safety net: a missed event never leaves the page stale for long.
    safetyTimer = setInterval(() => { if (!document.hidden && !pollTimer) refresh(); }, 15000);
  }

  // A finished job still gets its stream read to the end: it replays the job's history
  // (the loss curve), which the job JSON does not keep. Then everything stops.
  function finish() {
    if (finished) return;
    finished = true;
    clearInterval(pollTimer);
    clearInterval(safetyTimer);
    if (!source || streamDone || source.readyState === EventSource.CLOSED) return stop();
    setTimeout(stop, 15000);
  }

  function stop() {
    if (stopped) return;
    stopped = true;
    if (source) source.close();
    clearInterval(pollTimer);
    clearInterval(safetyTimer);
    clearTimeout(pending);
    onMode("stopped");
  }

  refresh();
  startStream();
  return stop;
}

/**
 * Re-run `tick` every `ms` while the page is visible, right away when it becomes visible
 * again; `tick` may return a new interval (slower when nothing is running). Returns stop().
 */
export function every(ms, tick) {
  let timer = null;
  let stopped = false;
  let interval = ms;
  const run = async () => {
    timer = null;
    if (stopped) return;
    if (!document.hidden) {
      try {
        const next = await tick();
        if (typeof next === "number") interval = next;
      } catch (err) {
        console.warn(err);
      }
    }
    if (!stopped) timer = setTimeout(run, interval);
  };
  const onVisible = () => {
    if (!document.hidden && timer !== null) { clearTimeout(timer); run(); }
  };
  document.addEventListener("visibilitychange", onVisible);
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
    document.removeEventListener("visibilitychange", onVisible);
  };
}
