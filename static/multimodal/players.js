// The media players of a page: one plays at a time, and a segment's or scene's player stops at its end.
//
// Starting any <audio> or <video> pauses the others. A player with data-end-s (a hit's recording
// segment or video scene, a segment's own page) pauses when playback reaches that second; played
// again from there it starts the segment over (data-start-s). Seeking past the end lets it play on:
// the listener asked for more than the segment. Media events do not bubble: they are caught on their
// way down to the player, so players added later (the next page of results) behave the same.

const segments = new WeakMap();  // player -> {armed: stop at the end, stoppedAtEnd: paused there by it}

function segmentEnd(player) {
  const endS = parseFloat(player.dataset?.endS);
  return endS > 0 ? endS : null;
}

function stopAtEnd(player) {
  const state = segments.get(player);
  if (state?.armed && player.currentTime >= segmentEnd(player)) {
    state.armed = false;
    state.stoppedAtEnd = true;
    player.pause();
  }
}

// timeupdate comes only every ~250 ms: while a segment plays, every frame looks too, so it stops on time.
function watch(player) {
  stopAtEnd(player);
  if (segments.get(player)?.armed && !player.paused) requestAnimationFrame(() => watch(player));
}

function on(type, handle) {
  document.addEventListener(type, (event) => {
    if (event.target instanceof HTMLMediaElement) handle(event.target);
  }, true);
}

on("play", (player) => {
  for (const media of document.querySelectorAll("audio, video")) {
    if (media !== player && !media.paused) media.pause();
  }
  const endS = segmentEnd(player);
  if (endS === null) return;
  const state = segments.get(player) || {};
  const startS = parseFloat(player.dataset.startS);
  if (state.stoppedAtEnd && Number.isFinite(startS)) player.currentTime = startS;
  segments.set(player, { armed: player.currentTime < endS, stoppedAtEnd: false });
});
on("playing", watch);
on("seeked", (player) => {
  const endS = segmentEnd(player);
  if (endS === null) return;
  segments.set(player, { armed: player.currentTime < endS, stoppedAtEnd: false });
  watch(player);
});
on("timeupdate", stopAtEnd);
