/*
 * registry.js: the pages of the base registry (no build step, no inline handlers).
 *
 *   queue page            clicking the map picks a point: every "place at the picked point" form
 *                         gets its lon/lat and is enabled (the server locates, routes and dispatches)
 *   worker registry page  buildings in view are drawn from data-buildings-url?bbox=… (scoped there)
 *
 * Text from the server is put into the page with textContent only.
 */
(function (global) {
  'use strict';

  var doc = global.document;
  function app() { return global.GridmapApp || {t: function (s) { return s; }, pageMap: function () { return null; }}; }

  function initQueue() {
    var map = app().pageMap();
    var picked = doc.getElementById('queue-picked');
    if (!map || !picked) { return; }
    var marker = null;
    map.on('click', function (e) {
      var lon = e.latlng.lng.toFixed(7), lat = e.latlng.lat.toFixed(7);
      if (marker) { marker.setLatLng(e.latlng); } else { marker = global.L.marker(e.latlng).addTo(map); }
      picked.textContent = app().t('已选位置：{lon}, {lat}', {lon: lon, lat: lat});
      Array.prototype.forEach.call(doc.querySelectorAll('form.gm-map-place'), function (f) {
        f.querySelector('input[name="lon"]').value = lon;
        f.querySelector('input[name="lat"]').value = lat;
        f.querySelector('button').disabled = false;
      });
    });
  }

  function initBuildings() {
    var map = app().pageMap();
    var box = doc.querySelector('[data-buildings-url]');
    if (!map || !box || !global.L) { return; }
    var L = global.L, url = box.getAttribute('data-buildings-url'), seq = 0, loads = 0;
    var layer = L.layerGroup().addTo(map);
    function reload() {
      var s = ++seq, b = map.getBounds();
      var bbox = [Math.max(-180, b.getWest()), Math.max(-90, b.getSouth()), Math.min(180, b.getEast()),
        Math.min(90, b.getNorth())].map(function (v) { return v.toFixed(6); }).join(',');
      fetch(url + '?bbox=' + bbox, {credentials: 'same-origin', headers: {Accept: 'application/json'}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) {
          if (s !== seq || !d) { return; }
          layer.clearLayers();
          (d.features || []).forEach(function (f) {
            var c = f.geometry.coordinates, p = f.properties || {}, tip = doc.createElement('div');
            [p.name || p.code, p.address].forEach(function (x) {
              if (!x) { return; }
              var n = doc.createElement('div');
              n.textContent = String(x);
              tip.appendChild(n);
            });
            L.circleMarker([c[1], c[0]], {radius: 5, color: '#065f46', weight: 1, fillColor: '#10b981',
              fillOpacity: 0.85, className: 'gm-building'}).bindTooltip(tip).addTo(layer);
          });
          loads += 1;
          map.getContainer().setAttribute('data-gm-buildings', String(loads));
        })
        .catch(function () { return null; });
    }
    var timer = null;
    map.on('moveend', function () { if (timer) { clearTimeout(timer); } timer = setTimeout(reload, 150); });
    reload();
  }

  function init() { initQueue(); initBuildings(); }
  if (doc.readyState === 'loading') { doc.addEventListener('DOMContentLoaded', init); } else { init(); }
}(window));
