// The photos this browser put into a generator (inversions), remembered in localStorage so
// that the same photo can be tried on other finished jobs without inverting it again: an
// inversion is a code for one base generator, and any job adapted from that generator can
// render it (POST /jobs/{id}/edits).
//
// Only ids and what the list shows are kept; the service stays the truth (an entry whose
// inversion is gone or failed is forgotten when the list finds out).

const KEY = "nada.photos.v1";
export const REMEMBERED_LIMIT = 10; // newest first; older entries fall off

let fallback = []; // when localStorage is unavailable (disabled, private mode, full)

const ID = /^[0-9a-f]{32}$/; // nada/ids.py ID_PATTERN (the service's one definition)

function valid(entry) {
  return entry && typeof entry === "object" && typeof entry.id === "string" && ID.test(entry.id)
    && typeof entry.generator === "string" && entry.generator !== "";
}

function load() {
  try {
    const text = window.localStorage.getItem(KEY);
    const list = text ? JSON.parse(text) : [];
    return Array.isArray(list) ? list.filter(valid) : [];
  } catch {
    return fallback.slice();
  }
}

function save(list) {
  fallback = list.slice();
  try {
    window.localStorage.setItem(KEY, JSON.stringify(list));
  } catch {
    // Not stored across visits; this page keeps the list until it is closed.
  }
}

/**
 * Remember an inversion (or update its entry): {id, generator, thumb_url, name,
 * created_at}. thumb_url is the service's URL of the picture the list shows (the aligned
 * crop once there is one, the uploaded photo before); name is the file name it came from.
 */
export function rememberPhoto({ id, generator, thumb_url = null, name = "", created_at = null }) {
  const entry = { id, generator, thumb_url, name: String(name || "").slice(0, 120), created_at: created_at || new Date().toISOString() };
  if (!valid(entry)) return;
  const list = load();
  const earlier = list.find((e) => e.id === id);
  const merged = earlier
    ? { ...earlier, thumb_url: thumb_url || earlier.thumb_url, name: entry.name || earlier.name }
    : entry;
  save([merged, ...list.filter((e) => e.id !== id)].slice(0, REMEMBERED_LIMIT));
}

export function forgetPhoto(id) {
  save(load().filter((e) => e.id !== id));
}

/** The remembered inversions made for `generator`, newest first. */
export function photosFor(generator) {
  return load().filter((e) => e.generator === generator);
}
