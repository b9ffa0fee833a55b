/*
 * hazard-layer.js: hazards on a page's Leaflet map, self-contained (no build step, no inline handlers).
 *
 *   <div id="hazard-layer-config" hidden data-url="/api/v1/hazards/geo?…filters" data-hazard-url="/hazards/{id}"
 *        data-cluster="1" data-density="1" data-show-closed="1"></div>
 *
 * loads the hazards in view (bbox) on every move and draws them by grade (一般 light, 重大 dark) and
 * status (rectified / verified green, closed grey), overdue ones with a thick pulsing red ring;
 * points cluster by zoom (a cluster holding an overdue hazard is red); areas are dashed polygons;
 * "隐患密度" (#toggle-hazard-density) shows a density layer of the loaded hazards (重大 weighs 2).
 * On the centre page it also fills the area card's open hazards (#card-hazards) whenever the card
 * shows another area (it watches #card-code), from /hazards/card/<code>.
 *
 * Text from the server goes into the page with textContent only. After each load the map container
 * gets data-gm-hazards="<loads>" and data-gm-hazards-count="<features>". Handle: GridmapHazards.get().
 */
(function (global) {
  'use strict';

  var doc = global.document;
  var MESSAGES = {};
  try {
    var node = doc.getElementById('gm-hazard-i18n');
    MESSAGES = node ? JSON.parse(node.textContent || '{}') : {};
  } catch (e) { MESSAGES = {}; }

  function t(key) { return Object.prototype.hasOwnProperty.call(MESSAGES, key) ? MESSAGES[key] : key; }

  var FILL = {general: '#f6ad55', major: '#9c4221'};
  var DONE = {rectified: '#68d391', verified: '#38a169', closed: '#cbd5e0'};
  var GRADE_LABEL = {general: '一般隐患', major: '重大隐患'};
  var handle = null;

  function el(tag, className, text) {
    var n = doc.createElement(tag);
    if (className) { n.className = className; }
    if (text !== undefined && text !== null) { n.textContent = String(text); }
    return n;
  }

  function bboxOf(map) {
    var b = map.getBounds();
    var w = Math.max(-180, b.getWest()), e = Math.min(180, b.getEast());
    var s = Math.max(-90, b.getSouth()), n = Math.min(90, b.getNorth());
    return [w, s, e, n].map(function (v) { return v.toFixed(6); }).join(',');
  }

  function styleOf(p) {
    var fill = DONE[p.status] || FILL[p.grade] || '#dd6b20';
    var st = {color: p.overdue ? '#e53e3e' : (p.status === 'closed' ? '#718096' : '#7b341e'),
      weight: p.overdue ? 4 : 2, fillColor: fill, fillOpacity: p.status === 'closed' ? 0.6 : 0.9,
      className: 'gm-hazard' + (p.overdue ? ' gm-hz-overdue' : '') + ' gm-hz-' + p.grade + ' gm-hz-' + p.status};
    return st;
  }

  function tooltip(p) {
    var tip = el('div');
    [[p.title, 'gm-tooltip-title'], [p.number], [(p.type_name || '') + ' · ' + t(GRADE_LABEL[p.grade] || '')],
      [t(p.status_name || '')], [p.overdue ? t('超期未整改') : null]].forEach(function (x) {
      if (x[0] === undefined || x[0] === null || x[0] === '') { return; }
      tip.appendChild(el('div', x[1] || null, x[0]));
    });
    return tip;
  }

  function popup(p, hazardUrl) {
    var box = el('div', 'gm-hz-popup');
    box.appendChild(el('strong', null, p.title));
    box.appendChild(el('div', 'muted', p.number));
    box.appendChild(el('div', null, (p.type_name || '') + ' · ' + t(GRADE_LABEL[p.grade] || '') + ' · ' + t(p.status_name || '')));
    if (p.rectify_deadline) { box.appendChild(el('div', p.overdue ? 'warn' : null, t('整改期限') + ': ' + p.rectify_deadline.slice(0, 16).replace('T', ' '))); }
    if (hazardUrl) {
      var a = el('a', 'hazard-popup-link', t('打开隐患页面'));
      a.href = hazardUrl.replace('{id}', encodeURIComponent(p.id));
      box.appendChild(a);
    }
    return box;
  }

  function attach(map, opts) {
    var L = global.L;
    var url = opts.url, seq = 0, loads = 0;
    if (!map.getPane('gmHazards')) { map.createPane('gmHazards').style.zIndex = 450; }
    var useCluster = opts.cluster && typeof L.markerClusterGroup === 'function';
    var points = useCluster ? L.markerClusterGroup({
      maxClusterRadius: 45, disableClusteringAtZoom: 16, showCoverageOnHover: false, spiderfyOnMaxZoom: true,
      iconCreateFunction: function (c) {
        var kids = c.getAllChildMarkers(), overdue = kids.some(function (m) { return m.options.gmOverdue; });
        var div = el('div', 'gm-hz-cluster' + (overdue ? ' has-overdue' : ''), String(c.getChildCount()));
        return L.divIcon({html: div, className: 'gm-hz-cluster-icon', iconSize: L.point(38, 38)});
      }
    }) : L.layerGroup();
    var areas = L.geoJSON(null, {
      style: function (f) {
        var s = styleOf(f.properties || {});
        return {color: s.color, weight: s.weight, dashArray: '5 4', fillColor: s.fillColor, fillOpacity: 0.25,
          className: s.className, pane: 'gmHazards'};
      },
      onEachFeature: function (f, l) {
        l.bindTooltip(tooltip(f.properties || {}), {sticky: true});
        l.bindPopup(popup(f.properties || {}, opts.hazardUrl));
      }
    });
    var group = L.layerGroup([areas, points]).addTo(map);
    var density = null;
    var densityBox = doc.getElementById('toggle-hazard-density');
    var last = [];

    function drawDensity() {
      if (!opts.density || typeof L.heatLayer !== 'function') { return; }
      var pts = last.map(function (f) {
        var p = f.properties || {}, c = f.geometry.type === 'Point' ? f.geometry.coordinates : null;
        if (!c && p.lon !== undefined) { c = [p.lon, p.lat]; }
        return c ? [c[1], c[0], p.grade === 'major' ? 1.0 : 0.5] : null;
      }).filter(Boolean);
      if (!density) { density = L.heatLayer(pts, {radius: 28, blur: 22, maxZoom: 15, minOpacity: 0.3}); }
      else { density.setLatLngs(pts); }
      if (densityBox && densityBox.checked) { if (!map.hasLayer(density)) { map.addLayer(density); } }
      else if (map.hasLayer(density)) { map.removeLayer(density); }
    }
    if (densityBox) { densityBox.addEventListener('change', drawDensity); }

    function draw(features) {
      points.clearLayers();
      areas.clearLayers();
      last = features;
      features.forEach(function (f) {
        var p = f.properties || {};
        if (!f.geometry) { return; }
        if (f.geometry.type === 'Point') {
          var c = f.geometry.coordinates, s = styleOf(p);
          var mk = L.circleMarker([c[1], c[0]], {radius: p.grade === 'major' ? 10 : 8, color: s.color,
            weight: s.weight, fillColor: s.fillColor, fillOpacity: s.fillOpacity, className: s.className,
            pane: 'gmHazards', gmOverdue: !!p.overdue, gmId: p.id});
          mk.bindTooltip(tooltip(p));
          mk.bindPopup(popup(p, opts.hazardUrl));
          points.addLayer(mk);
        } else {
          areas.addData(f);
        }
      });
      drawDensity();
    }

    function reload() {
      var s = ++seq;
      var u = url + (url.indexOf('?') >= 0 ? '&' : '?') + 'bbox=' + bboxOf(map);
      return fetch(u, {credentials: 'same-origin', headers: {Accept: 'application/json'}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) {
          if (s !== seq || !d) { return; }
          var feats = (d.features || []).filter(function (f) {
            return opts.showClosed || (f.properties || {}).status !== 'closed';
          });
          draw(feats);
          loads += 1;
          var box = map.getContainer();
          box.setAttribute('data-gm-hazards-count', String(feats.length));
          box.setAttribute('data-gm-hazards', String(loads));
        })
        .catch(function () { return null; });
    }
    var timer = null;
    map.on('moveend', function () { if (timer) { clearTimeout(timer); } timer = setTimeout(reload, 150); });
    reload();
    handle = {layer: group, points: points, areas: areas, reload: reload,
      setUrl: function (u) { url = u; return reload(); }, features: function () { return last; }};
    var toggle = doc.getElementById('toggle-hazard-layer');
    if (toggle) {
      toggle.addEventListener('change', function () {
        if (toggle.checked) { map.addLayer(group); } else { map.removeLayer(group); }
      });
    }
    return handle;
  }

  // ------------------------------------------------------------------ the centre's area card
  function watchCard() {
    var code = doc.getElementById('card-code'), list = doc.getElementById('card-hazards');
    if (!code || !list || !global.MutationObserver) { return; }
    var counter = doc.getElementById('card-hazards-count'), seen = '';
    function fill() {
      var c = (code.textContent || '').trim();
      if (!c || c === seen) { return; }
      seen = c;
      while (list.firstChild) { list.removeChild(list.firstChild); }
      fetch('/hazards/card/' + encodeURIComponent(c), {credentials: 'same-origin', headers: {Accept: 'application/json'}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) {
          if (!d || seen !== c) { return; }
          if (counter) { counter.textContent = String(d.open) + (d.overdue ? ' (' + t('超期') + ' ' + d.overdue + ')' : ''); }
          d.items.forEach(function (h) {
            var li = el('li', h.overdue ? 'warn' : null);
            var a = el('a', null, h.number + ' ' + h.title);
            a.href = h.url;
            li.appendChild(a);
            li.appendChild(el('span', 'muted', ' · ' + t(GRADE_LABEL[h.grade] || '') + ' · ' + t(h.status_name) + (h.overdue ? ' · ' + t('超期') : '')));
            list.appendChild(li);
          });
          list.setAttribute('data-loaded', c);
        })
        .catch(function () { return null; });
    }
    new global.MutationObserver(fill).observe(code, {childList: true, characterData: true, subtree: true});
  }

  function init() {
    var cfg = doc.getElementById('hazard-layer-config');
    var name = doc.body && doc.body.getAttribute('data-map');
    var map = name ? global[name] : null;
    if (cfg && map && global.L) {
      attach(map, {url: cfg.getAttribute('data-url'), hazardUrl: cfg.getAttribute('data-hazard-url'),
        cluster: cfg.getAttribute('data-cluster') === '1', density: cfg.getAttribute('data-density') === '1',
        showClosed: cfg.getAttribute('data-show-closed') === '1'});
    }
    watchCard();
  }

  global.GridmapHazards = {attach: attach, get: function () { return handle; }};
  if (doc.readyState === 'loading') { doc.addEventListener('DOMContentLoaded', init); } else { init(); }
}(window));
