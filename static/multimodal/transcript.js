// A recording's page: timestamps seek the player, "#t=SECONDS" in the address starts there, and the
// passage being heard is marked as the recording plays.
(function () {
  const list = document.querySelector(".transcript[data-player]");
  const player = list && document.getElementById(list.dataset.player);
  if (!player) return;
  const passages = Array.from(list.querySelectorAll("li[data-start]"));

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
    for (const passage of passages) {
      const current = now >= parseFloat(passage.dataset.start) && now < parseFloat(passage.dataset.end);
      passage.classList.toggle("current", current);
      if (current) passage.setAttribute("aria-current", "true");
      else passage.removeAttribute("aria-current");
    }
  }

  list.addEventListener("click", (event) => {
    const link = event.target.closest("a.timestamp");
    if (!link) return;
    event.preventDefault();  // without this script the link opens the recording at that second
    history.replaceState(null, "", `#t=${link.dataset.start}`);
    play(parseFloat(link.dataset.start));
  });
  player.addEventListener("timeupdate", markCurrent);
  player.addEventListener("seeked", markCurrent);
  window.addEventListener("hashchange", startFromAddress);
  startFromAddress();
})();
