/* tourviews beacon: <script src=".../beacon.js" data-tour="TOUR_ID" defer></script>
   engage.js, loaded after it, adds engaged time and actions */
(function () {
  try {
    var me = document.currentScript, tour = me && me.getAttribute("data-tour");
    if (!tour) return;
    var nav = navigator, w = window, d = document, ls, key = "tourviews.visitor",
      off = "tourviews.optout", mem, viewed, noop = function () {},
      get = function (k) { try { return ls.getItem(k); } catch (e) {} },
      put = function (k, v) { try { ls.setItem(k, v); } catch (e) {} };
    try { ls = localStorage; } catch (e) {} // blocked: reading it throws
    /* a page driven by automation is no person, and a withdrawn visitor stays out */
    var out = get(off), quiet = nav.webdriver || w._phantom || w.callPhantom || w.__nightmare ||
      w.Cypress || out || me.getAttribute("data-respect-dnt") == "true" &&
      (nav.doNotTrack == "1" || nav.globalPrivacyControl),
      /* a random (version 4) UUID; crypto.randomUUID is missing on plain-http pages */
      uuid = function () {
        var b = crypto.getRandomValues(new Uint8Array(16)), h = "";
        b[6] = b[6] & 15 | 64; b[8] = b[8] & 63 | 128;
        for (var i = 0; i < 16; i++) h += (b[i] + 256).toString(16).slice(1) + (i % 2 && i > 2 && i < 10 ? "-" : "");
        return h;
      },
      /* a string body is sent as text/plain: no CORS preflight. keepalive lets a request
         outlive the page, as sendBeacon would, and unlike it gives the answer back */
      post = function (path, body, then) {
        fetch(new URL(path, me.src), { method: "POST", body: JSON.stringify(body), keepalive: 1 })
          .then(then)["catch"](noop);
      },
      send = function (event, scene, seconds, name) {
        try {
          if (quiet) return;
          mem = get(key) || mem;
          /* one written by something else would be refused (400) on every beacon */
          if (!/^[\da-f]{8}-[\da-f]{4}-4[\da-f]{3}-[89ab][\da-f]{3}-[\da-f]{12}$/i.test(mem)) mem = uuid();
          put(key, mem); // storage blocked: one visitor for this page view
          post("/v1/beacon", { tour: tour, visitor: mem, event: event, scene: scene, seconds: seconds, name: name });
        } catch (e) {}
      },
      /* withdrawal of consent: the ID stays in the opt-out key until the erasure is
         confirmed (204), and is sent again from the next page otherwise */
      withdraw = function (id) {
        post("/v1/visitor/forget", { visitor: id }, function (r) { if (r.ok) put(off, 1); });
      },
      /* the view counts once the page is shown: not while prerendered or hidden */
      view = function () {
        if (!viewed && !d.prerendering && d.visibilityState != "hidden") viewed = send("view") || 1;
      },
      loaded = function () {
        ["visibility", "prerendering"].forEach(function (n) { d.addEventListener(n + "change", view); });
        view();
      };
    if (out && out != 1) withdraw(out);
    w.tourviews = {
      send: send,
      scene: function (id) { send("scene", "" + id); },
      forget: function () {
        var id = get(key) || mem;
        quiet = 1;
        put(key, ""); // the ID is gone
        put(off, id || 1);
        if (id) withdraw(id);
      }
    };
    if (d.readyState == "complete") loaded();
    else addEventListener("load", loaded);
  } catch (e) {}
})();
