// The media players of a page: one plays at a time, and a segment's or scene's player stops at its end.
//
// Starting any <audio> or <video> pauses the others. A player with data-end-s (a hit's recording
// segment or video scene, a segment's own page) pauses when playback reaches that second; played
// again from there it starts the segment over (data-start-s). Seeking past the end lets it play on:
// the listener asked for more than the segment.

document.addEventListener("play", (event) => {
  for (const media of document.querySelectorAll("audio, video")) {
    if (media !== event.target && !media.paused) media.pause();
  }
}, true);  // "play" does not bubble: caught on its way down

function segmentStopAtEnd(player) {
  const startS = parseFloat(player.dataset.startS);
  const endS = parseFloat(player.dataset.endS);
  if (!(endS > 0)) return;
  let armed = false;         // playing inside the segment: stop when it ends
  let stoppedAtEnd = false;  // paused here by its end, not by the listener
  let frame = 0;
  const check = () => {
    if (armed && player.currentTime >= endS) {
      armed = false;
      stoppedAtEnd = true;
      player.pause();
    }
  };
  // timeupdate comes only every ~250 ms: while playing, every frame looks too, so the stop is on time.
  const watch = () => {
    check();
    if (armed && !player.paused) frame = requestAnimationFrame(watch);
  };
  player.addEventListener("play", () => {
    if (stoppedAtEnd && Number.isFinite(startS)) player.currentTime = startS;
    stoppedAtEnd = false;
    armed = player.currentTime < endS;
  });
  player.addEventListener("playing", () => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(watch);
  });
  player.addEventListener("seeked", () => {
    armed = player.currentTime < endS;
    if (armed && !player.paused) frame = requestAnimationFrame(watch);
  });
  player.addEventListener("timeupdate", check);
}

for (const player of document.querySelectorAll("audio[data-end-s], video[data-end-s]")) segmentStopAtEnd(player);
