// After the site starts, the search model may still be loading: a search sent meanwhile waits for it.
// The page says so (with a progress bar) instead of freezing silently, until the model is ready;
// it asks the site every POLL_MS whether it is, and once it is, searches go as usual.
const POLL_MS = 1000;
const status = document.getElementById("model-status");
const form = document.getElementById("search-form");

if (status && form && status.dataset.modelReady !== "true") {
  const searchPath = new URL(form.action, location.href).pathname;
  let ready = false;

  const showIfLoading = () => {
    if (!ready) status.hidden = false;
  };
  const isSearch = (url) => {
    const target = new URL(url, location.href);
    return target.origin === location.origin && target.pathname === searchPath && target.search.length > 1;
  };

  if (window.navigation) {
    // Every way a search starts (the form, a link, a chip change) is a navigation to the search URL.
    window.navigation.addEventListener("navigate", (event) => {
      if (isSearch(event.destination.url)) showIfLoading();
    });
  } else {
    form.addEventListener("submit", showIfLoading);
    document.addEventListener("click", (event) => {
      const link = event.target.closest("a[href]");
      if (link && isSearch(link.href)) showIfLoading();
    });
  }

  const poll = async () => {
    try {
      const response = await fetch(status.dataset.statusUrl, { headers: { Accept: "application/json" } });
      ready = response.ok && (await response.json()).ready === true;
    } catch {
      ready = false; // the site is restarting: ask again
    }
    if (ready) {
      status.dataset.modelReady = "true";
    } else {
      setTimeout(poll, POLL_MS);
    }
  };
  poll();
}
