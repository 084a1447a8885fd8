// "Your photos": the inversions this browser remembers (photo-memory.js) that were made for
// this job's base generator, each with a button that renders it through this job's
// generator, with no new inversion. Each entry is checked with the service once shown: a
// deleted or failed inversion is forgotten, a finished one gets its aligned crop as thumbnail.

import { api, serviceHref } from "../api.js";
import { fill, h, setText } from "../dom.js";
import { ACTIVE, STATUS_LABEL, ago, fullTime, shortId } from "../format.js";
import { forgetPhoto, photosFor, rememberPhoto } from "./photo-memory.js";

const label = (entry) => entry.name || `photo ${shortId(entry.id)}`;

/** onUse(entry): try this remembered inversion on the job. Returns {element, show(generator), setBusy(bool)}. */
export function photoList({ onUse }) {
  const list = h("ul", { class: "your-photos" });
  const intro = h("p", { class: "muted small" });
  const element = h("div", { class: "your-photos-box", hidden: true, role: "group", "aria-labelledby": "your-photos-heading" },
    h("h3", { id: "your-photos-heading" }, "Your photos"), intro, list);
  let busy = false;
  let generator = null;
  let checked = new Set(); // ids confirmed with the service while this view is open
  let states = {}; // id -> the inversion's status, as the service last said

  function row(entry, state) {
    const button = h("button", {
      type: "button", class: "button button-small", disabled: busy,
      "aria-label": `Try ${label(entry)} on this job`, onclick: () => onUse(entry),
    }, "Try on this job");
    const thumb = entry.thumb_url ? h("img", { class: "photo-thumb", src: serviceHref(entry.thumb_url), alt: "", loading: "lazy", decoding: "async" })
      : h("span", { class: "photo-thumb", "aria-hidden": "true" });
    return h("li", { class: "photo-row", "data-inversion-id": entry.id },
      thumb,
      h("span", { class: "photo-row-text" },
        h("span", { class: "photo-name" }, label(entry)),
        h("span", { class: "muted small" },
          h("time", { datetime: entry.created_at || "", title: fullTime(entry.created_at) }, ago(entry.created_at)),
          state && ACTIVE.has(state) ? ` · ${STATUS_LABEL[state].toLowerCase()}` : "")),
      button);
  }

  function render() {
    const entries = generator ? photosFor(generator) : [];
    element.hidden = entries.length === 0;
    setText(intro, `Photos you put into ${generator} before: each can be drawn by this job's generator without inverting it again.`);
    fill(list, entries.map((e) => row(e, states[e.id])));
  }

  /** Ask the service about each entry not checked yet: forget what is gone or failed. */
  async function check() {
    const entries = photosFor(generator).filter((e) => !checked.has(e.id) || ACTIVE.has(states[e.id]));
    await Promise.all(entries.map(async (entry) => {
      try {
        const inv = await api.getInversion(entry.id);
        if (inv.status === "failed" || inv.status === "canceled" || (inv.params && inv.params.generator !== entry.generator)) {
          forgetPhoto(entry.id);
          return;
        }
        checked.add(entry.id);
        states[entry.id] = inv.status;
        if (inv.aligned_url && inv.aligned_url !== entry.thumb_url) rememberPhoto({ ...entry, thumb_url: inv.aligned_url });
      } catch (err) {
        if (err.status === 404) forgetPhoto(entry.id);
        // anything else (the service unreachable): keep the entry, ask again next time
      }
    }));
    if (entries.length) render();
  }

  function show(name) {
    if (name !== generator) {
      checked = new Set();
      states = {};
    }
    generator = name;
    render();
    check();
  }

  function setBusy(value) {
    busy = value;
    list.querySelectorAll("button").forEach((b) => { b.disabled = value; });
  }

  return { element, show, setBusy };
}
