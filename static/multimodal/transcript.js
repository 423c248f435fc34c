// A recording's or video's page: a transcript's timestamps and a video's scenes seek the player,
// "#t=SECONDS" in the address starts there, and the passage or scene playing is marked.
// Without this script each link opens the media file at its second.
(function () {
  const lists = Array.from(document.querySelectorAll("[data-player]"));
  const player = lists.length && document.getElementById(lists[0].dataset.player);
  if (!player) return;
  const marked = lists.flatMap((list) => Array.from(list.querySelectorAll("li[data-start]")));

  function play(startS) {
    const seek = () => {
      player.currentTime = startS;
      // Browsers may refuse to start sound without a click (on page load); the seek still holds.
      player.play().catch(() => {});
    };
    if (player.readyState >= HTMLMediaElement.HAVE_METADATA) seek();
    else player.addEventListener("loadedmetadata", seek, { once: true });
  }

  function startFromAddress() {
    const match = /^#t=(\d+(?:\.\d+)?)/.exec(window.location.hash);
    if (match) play(parseFloat(match[1]));
  }

  function markCurrent() {
    const now = player.currentTime;
    for (const entry of marked) {
      const current = now >= parseFloat(entry.dataset.start) && now < parseFloat(entry.dataset.end);
      entry.classList.toggle("current", current);
      if (current) entry.setAttribute("aria-current", "true");
      else entry.removeAttribute("aria-current");
    }
  }

  for (const list of lists) {
    list.addEventListener("click", (event) => {
      const link = event.target.closest("a[data-start]");
      if (!link) return;
      event.preventDefault();
      history.replaceState(null, "", `#t=${link.dataset.start}`);
      play(parseFloat(link.dataset.start));
      if (player.tagName === "VIDEO") player.scrollIntoView({ block: "nearest", behavior: "smooth" });
    });
  }
  player.addEventListener("timeupdate", markCurrent);
  player.addEventListener("seeked", markCurrent);
  window.addEventListener("hashchange", startFromAddress);
  startFromAddress();
})();
