// The results' layout, enhanced: picture size (density) and "Show more results".
//
// Without this script pictures show at the medium size and the pager's links lead from page to page.
// The density is a preference of this browser (localStorage), not part of the query: a shared link
// shows the same results at the reader's own size. "Show more results" fetches the next page the
// pager links to and appends its results here; the address keeps naming the first page, so a reload
// starts again from the top (as Google Images and Immich do).

const DENSITIES = ["small", "medium", "large"];
const STORAGE_KEY = "multimodal.density";

function densityApply(value) {
  const density = DENSITIES.includes(value) ? value : "medium";
  document.body.dataset.density = density;
  for (const radio of document.querySelectorAll('input[name="density"]')) radio.checked = radio.value === density;
}

function densityRemembered() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;  // storage refused (private mode): the default size
  }
}

densityApply(densityRemembered());
for (const radio of document.querySelectorAll('input[name="density"]')) {
  radio.addEventListener("change", () => {
    densityApply(radio.value);
    try {
      localStorage.setItem(STORAGE_KEY, radio.value);
    } catch {
      // the choice holds for this page only
    }
  });
}

// ---------------------------------------------------------------- show more results

// Each results list on the page (e.g. good and weak matches) has its place; a fetched page's list goes
// to the list of the same name here, or, if this page has none yet, after the last one.
function listKey(list) {
  return list.dataset.list || "results";
}

function resultsAppend(list, items) {
  for (const item of items) {
    const last = list.lastElementChild;
    // Pictures that continue a gallery row join it rather than start a second gallery under it.
    if (item.classList.contains("gallery-run") && last?.classList.contains("gallery-run")) {
      last.querySelector(".gallery").append(...item.querySelector(".gallery").children);
    } else {
      list.append(item);
    }
  }
}

async function moreResults(button) {
  const next = document.querySelector('.pager a[rel="next"]');
  if (!next) return;
  button.disabled = true;
  button.textContent = "Loading…";
  let fetched;
  try {
    const response = await fetch(next.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    fetched = new DOMParser().parseFromString(await response.text(), "text/html");
  } catch (error) {
    button.disabled = false;
    button.textContent = "Show more results";
    const status = document.getElementById("more-status");
    status.textContent = `More results could not be loaded (${error.message}). Try again, or use Next.`;
    return;
  }
  const lists = [...document.querySelectorAll("#results ol.results")];
  let added = 0;
  for (const incoming of fetched.querySelectorAll("#results ol.results")) {
    const items = [...incoming.children];
    added += incoming.querySelectorAll(".card").length;
    const target = lists.find((list) => listKey(list) === listKey(incoming));
    if (target) {
      resultsAppend(target, items);
    } else {
      const section = incoming.closest("section, .results-group") || incoming;
      document.querySelector(".pager").before(document.adoptNode(section));
    }
  }
  const nextOfFetched = fetched.querySelector('.pager a[rel="next"]');
  if (nextOfFetched) {
    next.href = nextOfFetched.getAttribute("href");
    button.disabled = false;
    button.textContent = "Show more results";
  } else {
    next.remove();
    button.remove();
  }
  const heading = document.getElementById("results-heading");
  const shown = document.querySelectorAll("#results ol.results .card").length;
  const first = Number(heading.dataset.first) || 1;
  heading.querySelector(".results-range")?.replaceChildren(`${first}–${first + shown - 1}`);
  document.getElementById("more-status").textContent = `${added} more result${added === 1 ? "" : "s"} shown.`;
}

const loadMore = document.querySelector(".load-more");
if (loadMore) {
  loadMore.addEventListener("click", () => moreResults(loadMore));
}

// ---------------------------------------------------------------- a picture's "Why?"

// Opened in a tile, the explanation is wider than the tile: kept inside the screen rather than past its right edge.
document.addEventListener("toggle", (event) => {
  const why = event.target;
  if (!why.matches?.(".gallery .why") || !why.open || getComputedStyle(why).position !== "absolute") return;
  why.style.left = "0px";
  const overflow = why.getBoundingClientRect().right - (document.documentElement.clientWidth - 8);
  if (overflow > 0) why.style.left = `${-overflow}px`;
}, true);
