// The result of "Try it on a photo", side by side: the photo as uploaded, the aligned crop,
// the base generator's reconstruction of its code, and the same code through this job's
// adapted generator; each with a download link, and the code itself (latent.pt).

import { serviceHref } from "../api.js";
import { h, setText } from "../dom.js";
import { STAGE_LABEL, shortId } from "../format.js";

const TILES = [
  { key: "original", title: "Your photo", alt: "The photo as uploaded" },
  { key: "aligned", title: "Aligned", alt: "The square face crop the inversion worked on" },
  { key: "reconstruction", title: "Reconstruction", alt: "The photo's code drawn by the base generator" },
  { key: "adapted", title: "Adapted", alt: "The photo's code drawn by this job's adapted generator" },
];

function tile({ key, title }) {
  const image = h("img", { decoding: "async", alt: "", hidden: true });
  const wait = h("span", { class: "photo-wait muted small" });
  const link = h("a", { class: "small", hidden: true, "data-role": `download-${key}`, "aria-label": `Download ${title.toLowerCase()} (PNG)` }, "Download");
  const element = h("figure", { class: "photo-tile", "data-image": key },
    h("div", { class: "photo-frame" }, image, wait),
    h("figcaption", {}, h("span", { class: "photo-tile-title" }, title), link));
  image.addEventListener("error", () => {
    if (!image.getAttribute("src")) return;
    image.hidden = true;
    wait.hidden = false;
    setText(wait, "Could not load the image.");
  });
  return { element, image, wait, link };
}

/** What a picture still waiting on `job` (an inversion or an edit) says. */
function waitingText(job, until) {
  if (!job) return until;
  if (job.status === "queued") return "Queued…";
  if (job.status === "running") return `${STAGE_LABEL[job.stage] || "Starting"}…`;
  if (job.status === "failed") return "Failed.";
  if (job.status === "canceled") return "Canceled.";
  return until;
}

/**
 * jobId: the adaptation job whose generator draws the "adapted" picture.
 * Returns {element, clear(), showInversion(inversion, name), showEdit(edit | null, text)}.
 */
export function photoResult({ jobId }) {
  const tiles = Object.fromEntries(TILES.map((t) => [t.key, { ...t, ...tile(t) }]));
  const latentLink = h("a", { class: "button button-small", hidden: true, "data-role": "download-latent" }, "Download the code (latent.pt)");
  const note = h("p", { class: "muted small photo-note" });
  const element = h("div", { class: "photo-result", hidden: true, "aria-label": "Result", role: "group" },
    h("div", { class: "photo-tiles" }, TILES.map((t) => tiles[t.key].element)),
    h("div", { class: "photo-result-foot" }, latentLink, note));
  let inversionId = null;

  function setTile(key, url, filename, waiting) {
    const t = tiles[key];
    const href = serviceHref(url);
    if (href) {
      if (t.image.getAttribute("src") !== href) t.image.src = href;
      t.image.hidden = false;
      t.wait.hidden = true;
      t.link.href = href;
      t.link.setAttribute("download", filename);
      t.link.hidden = false;
    } else {
      t.image.removeAttribute("src");
      t.image.hidden = true;
      t.wait.hidden = false;
      setText(t.wait, waiting);
      t.link.removeAttribute("href");
      t.link.hidden = true;
    }
  }

  function clear() {
    element.hidden = true;
    inversionId = null;
    for (const t of TILES) setTile(t.key, null, "", "");
    latentLink.hidden = true;
    latentLink.removeAttribute("href");
    setText(note, "");
  }

  function showInversion(inv, name) {
    element.hidden = false;
    inversionId = inv.id;
    const id8 = shortId(inv.id);
    tiles.original.image.alt = name ? `${tiles.original.alt}: ${name}` : tiles.original.alt;
    for (const key of ["aligned", "reconstruction", "adapted"]) tiles[key].image.alt = tiles[key].alt;
    setTile("original", inv.photo_url, `photo-${id8}.png`, "");
    setTile("aligned", inv.aligned_url, `aligned-${id8}.png`, waitingText(inv, "After the inversion."));
    setTile("reconstruction", inv.reconstruction_url, `reconstruction-${id8}.png`, waitingText(inv, "After the inversion."));
    const latent = serviceHref(inv.latent_url);
    latentLink.hidden = !latent;
    if (latent) {
      latentLink.href = latent;
      latentLink.setAttribute("download", `latent-${id8}.pt`);
    } else latentLink.removeAttribute("href");
    const p = inv.params || {};
    setText(note, inv.status === "succeeded"
      ? `Code for ${p.generator || "the base generator"}${Number.isFinite(p.refine_steps) ? `, ${p.refine_steps} refinement steps` : ""}${p.align === false ? ", used as aligned" : ""}.${inv.note ? ` Note: ${inv.note}.` : ""}`
      : "");
  }

  /** The adapted picture: the edit's image once it succeeded, else `text` (or its state). */
  function showEdit(edit, text = "After the inversion.") {
    const ids = inversionId ? `${shortId(jobId)}-${shortId(inversionId)}` : shortId(jobId);
    setTile("adapted", edit && edit.image_url, `adapted-${ids}.png`, waitingText(edit, text));
  }

  clear();
  return { element, clear, showInversion, showEdit };
}
