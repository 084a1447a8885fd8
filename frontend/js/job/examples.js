// The example images of an image-guided job, beside its prompts: the target's (and the
// source's, if it had any) as thumbnails, each a link to the full picture. Served from the
// job's own copies (GET /jobs/{id}/images/{image}.png), which live as long as the job.

import { api } from "../api.js";
import { fill, h } from "../dom.js";

/** Returns {element, update(job)}; hidden for a job without example images. */
export function examplesCard({ id }) {
  const element = h("section", { class: "job-examples", "aria-label": "Example images", hidden: true });
  let shown = "";

  function side(title, names) {
    if (!names.length) return null;
    return h("div", { class: "job-examples-side", "data-side": title.toLowerCase() },
      h("h2", { class: "small" }, `${title} images`),
      h("ul", { class: "example-thumbs" }, names.map((name, i) => {
        const url = api.jobImageUrl(id, name);
        return h("li", { class: "example-thumb", "data-image": name },
          h("a", { href: url, target: "_blank", rel: "noopener" },
            h("img", { src: url, alt: `${title} image ${i + 1}`, loading: "lazy" })));
      })));
  }

  function update(job) {
    const p = job.params || {};
    const target = Array.isArray(p.target_images) ? p.target_images : [];
    const source = Array.isArray(p.source_images) ? p.source_images : [];
    const key = `${target.join()}|${source.join()}`;
    if (key === shown) return;
    shown = key;
    element.hidden = !target.length && !source.length;
    fill(element, side("Target", target), side("Source", source));
  }

  return { element, update };
}
