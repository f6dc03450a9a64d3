/* tourviews beacon: <script src=".../beacon.js" data-tour="TOUR_ID" defer></script>
   engage.js, loaded after it, adds engaged time and actions */
(function () {
  try {
    var me = document.currentScript, data = me.dataset, tour = data.tour, nav = navigator,
      w = window, d = document, at = location, key = "tourviews.visitor",
      off = "tourviews.optout", mem, viewed, noop = function () {},
      /* store(k) reads, store(k, v) writes; blocked localStorage throws even when read */
      store = function (k, v) {
        try { return v == null ? localStorage.getItem(k) : localStorage.setItem(k, v); } catch (e) {}
      },
      /* a page driven by automation is no person, and a withdrawn visitor stays out */
      out = store(off), quiet = nav.webdriver || w._phantom || w.callPhantom || w.__nightmare ||
      w.Cypress || out || data.respectDnt == "true" &&
      (nav.doNotTrack == "1" || nav.globalPrivacyControl),
      /* where the viewer came from, sent with the view alone: a host, never a path or a
         query. In an iframe, the embedding page's, which ancestorOrigins names even when
         that page sends no referrer (Firefox has no ancestorOrigins) */
      up = at.ancestorOrigins, from = { embedded: w != top },
      /* a string body is sent as text/plain: no CORS preflight. keepalive lets a request
         outlive the page, as sendBeacon would, and unlike it gives the answer back */
      post = function (path, body, then) {
        fetch(new URL(path, me.src), { method: "POST", body: JSON.stringify(body), keepalive: 1 })
          .then(then).catch(noop);
      },
      send = function (event, scene, seconds, name) {
        try {
          if (quiet) return;
          mem = store(key) || mem;
          /* one written by something else would be refused (400) on every beacon. A new one
             is random (version 4), as a blob URL ends with (File API): crypto.randomUUID is
             missing on plain-http pages */
          if (!/^[\da-f]{8}-[\da-f]{4}-4[\da-f]{3}-[89ab][\da-f]{3}-[\da-f]{12}$/i.test(mem))
            mem = URL.createObjectURL(new Blob).slice(-36);
          store(key, mem); // storage blocked: one visitor for this page view
          post("/v1/beacon", Object.assign({ tour: tour, visitor: mem, event: event, scene: scene,
            seconds: seconds, name: name }, event == "view" && from));
        } catch (e) {}
      },
      /* withdrawal of consent: the ID stays in the opt-out key until the erasure is
         confirmed (204), and is sent again from the next page otherwise */
      withdraw = function (id) {
        post("/v1/visitor/forget", { visitor: id }, function (r) { r.ok && store(off, 1); });
      },
      /* the view counts once the page has loaded and is shown: not while prerendered or
         hidden */
      view = function () {
        if (!viewed && d.readyState == "complete" && !d.prerendering && d.visibilityState != "hidden")
          viewed = send("view") || 1;
      };
    if (!tour) return;
    try { from.referrer = new URL(up && up[0] || d.referrer).hostname; } catch (e) {} // none: direct
    /* as the server takes them (no control characters, at most 100 whole characters): a
       long or odd campaign must not cost the view */
    new URLSearchParams(at.search).forEach(function (v, k) {
      if (/^utm_(source|medium|campaign)$/.test(k))
        from[k] = v.replace(/[\0-\x1f\x7f-\x9f]/g, "").match(/[^]{0,100}/u)[0];
    });
    out && out != 1 && withdraw(out);
    w.tourviews = {
      send: send,
      scene: function (id) { send("scene", "" + id); },
      forget: function () {
        var id = store(key) || mem;
        quiet = 1;
        store(key, ""); // the ID is gone
        store(off, id || 1);
        id && withdraw(id);
      }
    };
    ["readystate", "visibility", "prerendering"].forEach(function (n) {
      d.addEventListener(n + "change", view);
    });
    view(); // a script added after the page loaded
  } catch (e) {}
})();
