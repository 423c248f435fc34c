// The results under the search bar, as the query above them changes (used by search.js).
//
// Results are for the query in the address. When a chip's weight changes or a chip is removed they
// no longer are: they are dimmed under a banner that says so, with a button that searches again.
import "./players.js";

const section = document.getElementById("results");
let banner = null;

/** Mark the results as out of date (``stale``), or as current again (the query came back to theirs). */
export function resultsStale(stale) {
  if (!section) return;
  if (!banner) {
    banner = document.createElement("div");
    banner.className = "stale-banner";
    banner.setAttribute("role", "status");
    const text = document.createElement("p");
    text.textContent = "You changed the query: these results are for the previous one. Press Search to update them.";
    const button = document.createElement("button");
    button.type = "submit";
    button.className = "primary";
    button.setAttribute("form", "search-form");
    button.textContent = "Search again";
    banner.append(text, button);
    section.prepend(banner);
  }
  banner.hidden = !stale;
  section.classList.toggle("stale", stale);
}

/** The recording heard as ``text`` is now in the search bar: its note says so instead of repeating the words. */
export function transcriptInBar(text) {
  for (const note of document.querySelectorAll(".you-said")) {
    if (note.dataset.transcript !== text) continue;
    note.querySelector(".you-said-words").hidden = true;
    note.querySelector(".transcript-in-bar").hidden = false;
  }
}

// Keyboard feedback: with a result focused (Tab reaches its title), "+" asks for more like it and "-" for less,
// as its two links do: the item joins the query as a chip and the search runs again.
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || !["+", "=", "-"].includes(event.key)) return;
  const card = event.target.closest?.(".results .card");
  if (!card || event.target.closest("input, textarea, select, [contenteditable]")) return;
  const link = card.querySelector(event.key === "-" ? "a.less-like" : "a.more-like");
  if (!link) return;
  event.preventDefault();
  link.click();
});
