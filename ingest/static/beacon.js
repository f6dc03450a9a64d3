/* tourviews beacon: <script src=".../beacon.js" data-tour="TOUR_ID" defer></script> */
(function () {
  try {
    var me = document.currentScript, tour = me && me.getAttribute("data-tour");
    if (!tour) return;
    var url = new URL("/v1/beacon", me.src).href, nav = navigator, w = window, d = document,
      key = "tourviews.visitor", mem;
    /* a page driven by automation is no person: send nothing */
    var quiet = nav.webdriver || w._phantom || w.callPhantom || w.__nightmare || w.Cypress ||
      me.getAttribute("data-respect-dnt") == "true" &&
      (nav.doNotTrack == "1" || w.doNotTrack == "1" || nav.globalPrivacyControl);
    var uuid = function () {
      if (crypto.randomUUID) return crypto.randomUUID();
      var b = crypto.getRandomValues(new Uint8Array(16)), h = "";
      b[6] = b[6] & 15 | 64; b[8] = b[8] & 63 | 128;
      for (var i = 0; i < 16; i++) h += (b[i] + 256).toString(16).slice(1) + ([3, 5, 7, 9].indexOf(i) < 0 ? "" : "-");
      return h;
    };
    var visitor = function () {
      try {
        mem = localStorage.getItem(key) || mem;
        /* one written by something else would be refused (400) on every beacon */
        if (!/^[\da-f]{8}-[\da-f]{4}-4[\da-f]{3}-[89ab][\da-f]{3}-[\da-f]{12}$/i.test(mem)) mem = uuid();
        localStorage.setItem(key, mem);
      } catch (e) { mem = mem || uuid(); } // storage blocked: one visitor for this page view
      return mem;
    };
    var send = function (event, scene) {
      try {
        if (quiet) return;
        var body = JSON.stringify({ tour: tour, visitor: visitor(), event: event, scene: scene });
        if (!(nav.sendBeacon && nav.sendBeacon(url, body)))
          fetch(url, { method: "POST", body: body, keepalive: true }) /* a string: text/plain */
            ["catch"](function () {});
      } catch (e) {}
    };
    /* the view counts once the page is shown: not while prerendered or hidden */
    var viewed, view = function () {
      if (!viewed && !d.prerendering && d.visibilityState != "hidden") viewed = send("view") || 1;
    }, loaded = function () {
      d.addEventListener("visibilitychange", view);
      d.addEventListener("prerenderingchange", view);
      view();
    };
    w.tourviews = { scene: function (id) { send("scene", String(id)); } };
    if (d.readyState == "complete") loaded();
    else addEventListener("load", loaded);
  } catch (e) {}
})();
