/* tourviews engagement, after beacon.js: <script src=".../engage.js" defer></script>
   Visible time is sent as engage beacons: on each scene change, when the page is hidden
   or left, and every 5 minutes (a visit ends after 30 minutes without a beacon).
   window.tourviews.action("lead-form") counts a named interaction. */
(function () {
  try {
    var w = window, d = document, tv = w.tourviews;
    if (!tv || !tv.send) return;
    /* past a minute without input, time is not counted: a tab left open is no viewer */
    var IDLE = 6e4, total = 0, since, last, on, scene, changeScene = tv.scene,
      now = function () { return Date.now(); },
      /* add the time seen since the last count, up to a minute after the last input */
      count = function () {
        var end = Math.min(now(), last + IDLE);
        if (on && end > since) { total += end - since; since = end; }
      },
      active = function () { count(); since = last = now(); },
      flush = function () {
        count();
        var seconds = Math.min(Math.round(total / 1e3), 1800);
        if (seconds > 0) { tv.send("engage", scene, seconds); total = 0; }
      },
      seen = function () {
        active();
        on = d.visibilityState == "visible";
        if (!on) flush();
      };
    ["pointerdown", "pointermove", "keydown", "wheel", "touchstart", "scroll"].forEach(function (n) {
      addEventListener(n, active, { capture: 1, passive: 1 });
    });
    d.addEventListener("visibilitychange", seen);
    addEventListener("pagehide", flush);
    setInterval(flush, 3e5);
    tv.scene = function (id) {
      flush(); // the time so far was spent in the scene being left
      scene = "" + id;
      changeScene(id);
    };
    tv.action = function (name) { tv.send("action", scene, void 0, "" + name); };
    seen();
  } catch (e) {}
})();
