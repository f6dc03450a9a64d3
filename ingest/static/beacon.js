/* tourviews beacon: <script src=".../beacon.js" data-tour="TOUR_ID" defer></script> */
(function () {
  try {
    var me = document.currentScript, tour = me && me.getAttribute("data-tour");
    if (!tour) return;
    var nav = navigator, w = window, d = document, ls, key = "tourviews.visitor",
      off = "tourviews.optout", mem, at = function (p) { return new URL(p, me.src).href; };
    try { ls = localStorage; } catch (e) {} // blocked: reading it throws
    var get = function (k) { try { return ls.getItem(k); } catch (e) {} };
    /* a page driven by automation is no person, and a withdrawn visitor stays out */
    var quiet = nav.webdriver || w._phantom || w.callPhantom || w.__nightmare || w.Cypress ||
      get(off) || me.getAttribute("data-respect-dnt") == "true" &&
      (nav.doNotTrack == "1" || w.doNotTrack == "1" || nav.globalPrivacyControl);
    /* a random (version 4) UUID; crypto.randomUUID is missing on plain-http pages */
    var uuid = function () {
      var b = crypto.getRandomValues(new Uint8Array(16)), h = "";
      b[6] = b[6] & 15 | 64; b[8] = b[8] & 63 | 128;
      for (var i = 0; i < 16; i++) h += (b[i] + 256).toString(16).slice(1) + (i % 2 && i > 2 && i < 10 ? "-" : "");
      return h;
    };
    var post = function (path, body) {
      body = JSON.stringify(body);
      if (!(nav.sendBeacon && nav.sendBeacon(at(path), body)))
        fetch(at(path), { method: "POST", body: body, keepalive: true }) /* a string: text/plain */
          ["catch"](function () {});
    };
    var send = function (event, scene) {
      try {
        if (quiet) return;
        mem = get(key) || mem;
        /* one written by something else would be refused (400) on every beacon */
        if (!/^[\da-f]{8}-[\da-f]{4}-4[\da-f]{3}-[89ab][\da-f]{3}-[\da-f]{12}$/i.test(mem)) mem = uuid();
        try { ls.setItem(key, mem); } catch (e) {} // storage blocked: one visitor for this page view
        post("/v1/beacon", { tour: tour, visitor: mem, event: event, scene: scene });
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
    w.tourviews = {
      scene: function (id) { send("scene", String(id)); },
      /* withdrawal of consent: erase this visitor's events, forget the ID, send no more */
      forget: function () {
        var id = get(key) || mem;
        quiet = 1;
        try { ls.removeItem(key); ls.setItem(off, "1"); } catch (e) {}
        if (id) post("/v1/visitor/forget", { visitor: id });
      }
    };
    if (d.readyState == "complete") loaded();
    else addEventListener("load", loaded);
  } catch (e) {}
})();
