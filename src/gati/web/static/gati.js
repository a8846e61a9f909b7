/*! Gati tracking script. Usage:
 * <script defer data-site="SITE_ID" src="https://GATI_HOST/js/gati.js"></script>
 * data-api   where events go (default: /collect on the script's host)
 * data-hash  "true": hash changes are page views (hash-based routers)
 * data-dnt   "true": send nothing when Do Not Track / Global Privacy Control is on
 * data-auto  "false": no automatic page views; call gati('pageview') yourself
 * Calls made before the script loads are queued by this stub, then replayed:
 * window.gati=window.gati||function(){(gati.q=gati.q||[]).push(arguments)} */
(function (w, d) {
  'use strict';
  var s = d.currentScript;
  if (!s) return;
  var attr = function (n) { return s.getAttribute('data-' + n); };
  var site = attr('site');
  var api = attr('api') || (s.src ? new URL('/collect', s.src).href : '/collect');
  var hash = attr('hash') === 'true';
  var auto = attr('auto') !== 'false';
  var loc = w.location, nav = w.navigator, hist = w.history;
  var off = !site || (attr('dnt') === 'true' &&
    (nav.doNotTrack === '1' || w.doNotTrack === '1' || nav.globalPrivacyControl === true));
  try { off = off || w.localStorage.getItem('gati_ignore') === 'true'; } catch (e) { /* no storage */ }
  var referrer = d.referrer || null, lastPath;

  function utm() {
    var q = new URLSearchParams(loc.search), out = {};
    ['source', 'medium', 'campaign', 'term', 'content'].forEach(function (k) {
      var v = q.get('utm_' + k);
      if (v) out['utm_' + k] = v;
    });
    return out;
  }

  function send(type, props) {
    if (off || typeof type !== 'string' || !type) return;
    var body = JSON.stringify({
      eventType: type,
      siteId: site,
      timestamp: new Date().toISOString(),
      url: loc.href,
      path: loc.pathname + (hash ? loc.hash : ''),
      referrer: referrer,
      title: d.title,
      attribution: { utmParams: utm() },
      properties: props && typeof props === 'object' ? props : {}
    });
    var queued = false;
    // text/plain keeps it a "simple" request: no CORS preflight.
    try { queued = nav.sendBeacon(api, new Blob([body], { type: 'text/plain' })); } catch (e) { /* fall back */ }
    if (!queued && w.fetch) {
      w.fetch(api, { method: 'POST', body: body, keepalive: true, headers: { 'Content-Type': 'text/plain' } })
        .catch(function () { /* never break the page */ });
    }
  }

  function pageview(props, force) {
    var path = loc.pathname + (hash ? loc.hash : '');
    if (!force && path === lastPath) return; // replaceState that kept the page, or a repeat
    lastPath = path;
    send('pageview', props);
    referrer = loc.href; // the next in-app navigation comes from here
  }

  function gati(command, a, b) {
    if (command === 'event') send(a, b);
    else if (command === 'pageview') pageview(a, true);
  }

  var queue = (w.gati && w.gati.q) || [];
  w.gati = gati;

  if (auto) {
    ['pushState', 'replaceState'].forEach(function (name) {
      var original = hist[name];
      hist[name] = function () {
        var result = original.apply(this, arguments);
        pageview();
        return result;
      };
    });
    w.addEventListener('popstate', function () { pageview(); });
    if (hash) w.addEventListener('hashchange', function () { pageview(); });
    if (d.visibilityState === 'prerender') {
      d.addEventListener('visibilitychange', function first() {
        if (d.visibilityState === 'prerender') return;
        d.removeEventListener('visibilitychange', first);
        pageview();
      });
    } else {
      pageview();
    }
  }
  for (var i = 0; i < queue.length; i++) gati.apply(null, queue[i]);
})(window, document);
