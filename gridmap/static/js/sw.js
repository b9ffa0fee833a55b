/* gridmap service worker: the worker's pages, their assets and her last data, available offline.
 *
 * Served at /sw.js (controls every page). On install it caches the offline pages and every
 * same-origin script, stylesheet, icon and font they reference. Then:
 *   static files        cache first (a new release changes the cache version, see /sw.js);
 *   pages and API GETs  network first; the answer is kept; offline, the kept answer is used
 *                       (for map layers loaded per visible area: the last answer for that path);
 *   everything else     the network only (POSTs go through the page's outbox, static/js/outbox.js).
 * Logging out empties the caches (the page posts a message before it submits the form).
 */
'use strict';
var VERSION = '__CACHE_VERSION__';
var CACHE = 'gridmap-' + VERSION;
var PAGES = [__OFFLINE_PAGES__];
var NEVER = ['/sw.js', '/offline/token', '/logout', '/login'];

function sameOrigin(url) { return new URL(url, self.location.href).origin === self.location.origin; }

function assetsOf(html) {
  var out = [], re = /(?:src|href)="(\/static\/[^"#?]+)(?:\?[^"]*)?"/g, m;
  while ((m = re.exec(html)) !== null) { out.push(m[1]); }
  return out;
}

self.addEventListener('install', function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    return Promise.all(PAGES.map(function (page) {
      return fetch(page, {credentials: 'same-origin'}).then(function (resp) {
        if (!resp.ok || resp.redirected) { return null; }
        var copy = resp.clone();
        return resp.text().then(function (html) {
          return cache.put(page, copy).then(function () {
            return Promise.all(assetsOf(html).map(function (a) {
              return cache.match(a).then(function (hit) { return hit || cache.add(a).catch(function () {}); });
            }));
          });
        });
      }).catch(function () { return null; });
    }));
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener('activate', function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k.indexOf('gridmap-') === 0 && k !== CACHE; })
      .map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener('message', function (event) {
  if (event.data && event.data.type === 'logout') {
    event.waitUntil(caches.keys().then(function (keys) {
      return Promise.all(keys.filter(function (k) { return k.indexOf('gridmap-') === 0; })
        .map(function (k) { return caches.delete(k); }));
    }));
  }
});

function networkFirst(request) {
  return fetch(request).then(function (resp) {
    if (resp.ok && !resp.redirected) {
      var copy = resp.clone();
      caches.open(CACHE).then(function (cache) { cache.put(request, copy); });
    }
    return resp;
  }).catch(function () {
    return caches.open(CACHE).then(function (cache) {
      return cache.match(request).then(function (hit) {
        return hit || cache.match(request, {ignoreSearch: true});
      }).then(function (hit) {
        if (hit) { return hit; }
        if (request.mode === 'navigate') { return cache.match('/worker'); }
        return undefined;
      });
    }).then(function (hit) {
      return hit || new Response(JSON.stringify({error: 'offline'}),
        {status: 503, headers: {'Content-Type': 'application/json'}});
    });
  });
}

function cacheFirst(request) {
  return caches.open(CACHE).then(function (cache) {
    return cache.match(request).then(function (hit) {
      return hit || fetch(request).then(function (resp) {
        if (resp.ok) { cache.put(request, resp.clone()); }
        return resp;
      });
    });
  });
}

self.addEventListener('fetch', function (event) {
  var request = event.request;
  if (request.method !== 'GET' || !sameOrigin(request.url)) { return; }
  var path = new URL(request.url).pathname;
  if (NEVER.indexOf(path) >= 0) { return; }
  if (path.indexOf('/static/') === 0) { event.respondWith(cacheFirst(request)); return; }
  if (request.mode === 'navigate' || path.indexOf('/api/v1/') === 0) {
    event.respondWith(networkFirst(request));
  }
});
