/*
 * app.js: the page behaviour of the gridmap web app (no build step, no inline handlers).
 *
 *   report page   tap the map (or "use my location") to place the case: fills lon/lat (WGS84)
 *   centre page   a filter change reloads the page (everything follows one filter); the shade
 *                 switches cells/communities by zoom; clicking an area fetches its card
 *                 (/centre/card/<code>); the tree and hot spots are static/js/centre.js
 *   editor page   "preview" POSTs the drawing (GeoJSON) with the X-CSRFToken header and shows the
 *                 problems and the cells it touches on the map
 *
 * The folium map of a page is the global named by <body data-map>; layers loaded by
 * gridmap-layers.js are found with GridmapLayers.get(name). Text from the server is always put into
 * the page with textContent, never innerHTML. Messages come translated from <script id="gm-i18n">.
 */
(function (global) {
  'use strict';

  var doc = global.document;
  var MESSAGES = {};
  try {
    var node = doc.getElementById('gm-i18n');
    MESSAGES = node ? JSON.parse(node.textContent || '{}') : {};
  } catch (e) { MESSAGES = {}; }

  function t(key, values) {
    var s = Object.prototype.hasOwnProperty.call(MESSAGES, key) ? MESSAGES[key] : key;
    if (values) {
      Object.keys(values).forEach(function (k) { s = s.split('{' + k + '}').join(String(values[k])); });
    }
    return s;
  }

  function csrfToken() {
    var m = doc.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute('content') : '';
  }

  function pageMap() {
    var name = doc.body && doc.body.getAttribute('data-map');
    return name && global[name] ? global[name] : null;
  }

  function layer(name) {
    return global.GridmapLayers ? global.GridmapLayers.get(name) : null;
  }

  function clear(el) { while (el && el.firstChild) { el.removeChild(el.firstChild); } }

  function li(text, className) {
    var n = doc.createElement('li');
    if (className) { n.className = className; }
    n.textContent = text;
    return n;
  }

  // ------------------------------------------------------------------ report: place the case
  function initReport() {
    var form = doc.getElementById('report-form');
    var map = pageMap();
    if (!form || !map) { return; }
    var lon = doc.getElementById('lon'), lat = doc.getElementById('lat'), picked = doc.getElementById('picked');
    var marker = null;

    function place(la, lo, pan) {
      lat.value = la.toFixed(6);
      lon.value = lo.toFixed(6);
      var ll = global.L.latLng(la, lo);
      if (marker) {
        marker.setLatLng(ll);
      } else {
        marker = global.L.circleMarker(ll, {radius: 10, color: '#c53030', weight: 3, fillColor: '#f56565',
          fillOpacity: 0.8, className: 'gm-picked'}).addTo(map);
      }
      if (pan) { map.setView(ll, Math.max(map.getZoom(), 16)); }
      picked.textContent = t('已选位置：{lon}, {lat}', {lon: lon.value, lat: lat.value});
      map.getContainer().setAttribute('data-picked', lon.value + ',' + lat.value);
    }

    map.on('click', function (e) { place(e.latlng.lat, e.latlng.lng, false); });
    if (lon.value && lat.value && !isNaN(parseFloat(lon.value)) && !isNaN(parseFloat(lat.value))) {
      place(parseFloat(lat.value), parseFloat(lon.value), false);
    }
    var btn = doc.getElementById('use-location');
    if (btn) {
      btn.addEventListener('click', function () {
        if (!global.navigator.geolocation) { picked.textContent = t('此浏览器不支持定位。'); return; }
        picked.textContent = t('加载中…');
        global.navigator.geolocation.getCurrentPosition(function (pos) {
          place(pos.coords.latitude, pos.coords.longitude, true);
        }, function (err) {
          picked.textContent = t('无法获取位置：{reason}', {reason: err && err.message ? err.message : String(err)});
        }, {enableHighAccuracy: true, timeout: 15000, maximumAge: 60000});
      });
    }
  }

  // ------------------------------------------------------------------ centre: filters, levels, card
  var COMMUNITY_BELOW_ZOOM = 13;

  function initCentre() {
    var form = doc.getElementById('centre-filters');
    var map = pageMap();
    if (!form || !map) { return; }

    // every filter change reloads the page: the table, hot spots, scorecards, trend and downloads
    // follow the same filter as the map (nothing on the page is left stale); picking dates by hand
    // makes the period "custom"
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name) { return; }
      el.addEventListener('change', function () {
        if ((el.name === 'from' || el.name === 'to') && form.elements.period) { form.elements.period.value = 'custom'; }
        form.submit();
      });
    });

    function toggle(id, name) {
      var box = doc.getElementById(id);
      if (!box) { return; }
      box.addEventListener('change', function () {
        var h = layer(name);
        if (!h || !h.layer) { return; }
        if (box.checked) { map.addLayer(h.layer); } else { map.removeLayer(h.layer); }
      });
    }
    toggle('toggle-heat', 'heat');
    toggle('toggle-cases', 'cases');
    var hz = doc.getElementById('toggle-hazards');
    if (hz) {
      hz.addEventListener('change', function () {
        var h = global.GridmapApp.hazards;
        if (!h) { return; }
        if (hz.checked) { map.addLayer(h.layer); } else { map.removeLayer(h.layer); }
      });
    }

    // cells when zoomed in, communities when zoomed out
    function levelForZoom() { return map.getZoom() < COMMUNITY_BELOW_ZOOM ? 'community' : 'cell'; }
    function syncLevel(reload) {
      var h = layer('areas');
      if (!h || !h.loader) { return; }
      var want = levelForZoom();
      if (h.loader.extra.level !== want) {
        h.loader.extra.level = want;
        if (reload) { h.reload(); }
      }
    }
    map.on('zoomend', function () { syncLevel(false); });
    syncLevel(true);

    // the card of a clicked area
    var card = doc.getElementById('area-card');
    function showCard(code) {
      fetch('/centre/card/' + encodeURIComponent(code), {credentials: 'same-origin',
        headers: {Accept: 'application/json'}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) {
          if (!d) { return; }
          doc.getElementById('card-title').textContent = d.name;
          doc.getElementById('card-code').textContent = d.code;
          doc.getElementById('card-households').textContent = d.households === null ? '—' : String(d.households);
          doc.getElementById('card-workers').textContent = d.workers.length ? d.workers.join(', ') : t('（未配备）');
          doc.getElementById('card-open').textContent = String(d.open);
          doc.getElementById('card-overdue').textContent = String(d.overdue);
          doc.getElementById('card-link').setAttribute('href', d.url);
          card.hidden = false;
          card.setAttribute('data-code', d.code);
        });
    }
    var areas = layer('areas');
    if (areas && areas.layer && card) {
      areas.layer.on('click', function (e) {
        var l = e.propagatedFrom || e.layer;
        var p = l && l.feature ? l.feature.properties : null;
        if (p && p.code) { showCard(p.code); }
      });
    }
  }

  // ------------------------------------------------------------------ editor: preview, save a draft
  function initEditor() {
    var box = doc.getElementById('editor-map');
    var map = pageMap();
    if (!box || !map) { return; }
    var L = global.L;
    var drawn = global[box.getAttribute('data-drawn')];
    var problemsLayer = L.layerGroup().addTo(map);
    var result = doc.getElementById('preview-result');
    var message = doc.getElementById('preview-message');
    var problems = doc.getElementById('preview-problems');
    var cells = doc.getElementById('preview-cells');
    var problemStyle = {radius: 9, color: '#c53030', weight: 3, fillOpacity: 0.3, className: 'gm-problem'};

    function show(text) {
      result.hidden = false;
      message.textContent = text;
    }

    function tooltip(text) {
      var tip = doc.createElement('div');
      tip.textContent = text;
      return tip;
    }

    // problems: our preview's [{reason, lon, lat}] or the drafts API's GeoJSON FeatureCollection
    function renderProblems(ps) {
      clear(problems);
      problemsLayer.clearLayers();
      var list = [];
      if (ps && ps.type === 'FeatureCollection') {
        (ps.features || []).forEach(function (f) {
          var p = f.properties || {};
          var text = (p.severity ? p.severity + ': ' : '') + (p.message || p.kind || '');
          list.push(text);
          if (f.geometry) {
            L.geoJSON(f, {
              style: function () { return {color: '#c53030', weight: 3, fillOpacity: 0.25, className: 'gm-problem'}; },
              pointToLayer: function (feat, ll) { return L.circleMarker(ll, problemStyle); },
              onEachFeature: function (feat, l) { l.bindTooltip(tooltip(text)); }
            }).addTo(problemsLayer);
          }
        });
      } else {
        (ps || []).forEach(function (p) {
          var text = (typeof p === 'string') ? p : (p.reason || p.message || JSON.stringify(p));
          list.push(text);
          if (p && typeof p.lon === 'number' && typeof p.lat === 'number') {
            L.circleMarker([p.lat, p.lon], problemStyle).bindTooltip(tooltip(text)).addTo(problemsLayer);
          }
        });
      }
      list.forEach(function (text) { problems.appendChild(li(text, 'problem')); });
      return list.length;
    }

    function renderCells(cs) {
      clear(cells);
      (cs || []).forEach(function (c) {
        cells.appendChild(li(typeof c === 'string' ? c : ((c.code || '') + ' ' + (c.name || ''))));
      });
      if (!cs || !cs.length) { cells.appendChild(li(t('没有涉及任何网格。'), 'muted')); }
    }

    function drawing() {
      return drawn && drawn.toGeoJSON ? drawn.toGeoJSON() : {type: 'FeatureCollection', features: []};
    }

    function post(url, body) {
      return fetch(url, {
        method: 'POST', credentials: 'same-origin',
        headers: {'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRFToken': csrfToken()},
        body: JSON.stringify(body)
      }).then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (d) { return {ok: r.ok, status: r.status, data: d}; });
      });
    }

    doc.getElementById('preview-btn').addEventListener('click', function () {
      var gj = drawing();
      if (!gj.features || !gj.features.length) { show(t('请先绘制图形。')); return; }
      show(t('加载中…'));
      post(box.getAttribute('data-preview-url'), {street: box.getAttribute('data-street'), geojson: gj})
        .then(function (res) {
          if (!res.ok) { show(t('预览失败：{reason}', {reason: (res.data && res.data.error) || res.status})); return; }
          var n = renderProblems(res.data.problems);
          renderCells(res.data.cells);
          show(res.data.message || (n ? t('几何无效：{reason}', {reason: n}) : t('几何有效。')));
          box.setAttribute('data-preview', n ? 'invalid' : 'valid');
        })
        .catch(function (err) { show(t('预览失败：{reason}', {reason: err.message || String(err)})); });
    });

    doc.getElementById('clear-btn').addEventListener('click', function () {
      if (drawn && drawn.clearLayers) { drawn.clearLayers(); }
      problemsLayer.clearLayers();
      result.hidden = true;
      box.removeAttribute('data-preview');
    });

    // saving the drawing as a boundary draft (the redrawing service), when it is installed
    var form = doc.getElementById('draft-form');
    var target = doc.getElementById('draft-target');
    var cellsLayer = layer('cells');
    if (cellsLayer && cellsLayer.layer && target) {
      cellsLayer.layer.on('click', function (e) {
        var l = e.propagatedFrom || e.layer;
        if (l && l.feature && l.feature.properties && l.feature.properties.code) {
          target.value = l.feature.properties.code;
        }
      });
    }
    if (!form) { return; }
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var sel = form.elements.operation;
      var opt = sel.options[sel.selectedIndex];
      var geomField = opt.getAttribute('data-geometry'), targetField = opt.getAttribute('data-target');
      var code = (target.value || '').trim();
      if (!code) { show(t('请先填写目标区域代码。')); return; }
      var wanted = geomField === 'line' ? ['LineString', 'MultiLineString'] : ['Polygon', 'MultiPolygon'];
      var feats = (drawing().features || []).filter(function (f) { return f.geometry && wanted.indexOf(f.geometry.type) >= 0; });
      if (!feats.length) { show(t(geomField === 'line' ? '此操作需要一条线。' : '此操作需要一个多边形。')); return; }
      var body = {operation: sel.value};
      body[targetField] = code;
      body[geomField] = feats[feats.length - 1].geometry;
      show(t('加载中…'));
      post(box.getAttribute('data-drafts-url'), body).then(function (res) {
        var d = res.data || {};
        var n = renderProblems(d.problems);
        clear(cells);
        if (!res.ok) {
          show(t('保存失败：{reason}', {reason: d.error || res.status}));
          box.setAttribute('data-draft', 'refused');
          return;
        }
        show(t('草稿 {id} 已保存（{status}），错误 {errors} 个，警告 {warnings} 个。',
          {id: d.id, status: d.status, errors: d.errors === undefined ? n : d.errors, warnings: d.warnings || 0}));
        box.setAttribute('data-draft', String(d.id));
      }).catch(function (err) { show(t('保存失败：{reason}', {reason: err.message || String(err)})); });
    });
  }

  // ------------------------------------------------------------------ hazards (when the hazards API is installed)
  var GRADE_COLOR = {general: '#f6ad55', major: '#9c4221'};

  function initHazards() {
    var map = pageMap();
    var box = doc.querySelector('[data-hazards-url]');
    if (!map || !box || !global.L) { return; }
    var L = global.L, url = box.getAttribute('data-hazards-url'), seq = 0, loads = 0;
    // above the area outlines (overlayPane 400), below markers and popups
    if (!map.getPane('gmHazards')) { map.createPane('gmHazards').style.zIndex = 450; }
    var layer = L.geoJSON(null, {
      pointToLayer: function (f, ll) {
        var p = f.properties || {};
        return L.circleMarker(ll, {radius: 8, color: '#7b341e', weight: 2, fillColor: GRADE_COLOR[p.grade] || '#dd6b20',
          fillOpacity: 0.9, className: 'gm-hazard', pane: 'gmHazards'});
      },
      style: function (f) {
        var p = f.properties || {};
        return {color: '#b45309', weight: 2, dashArray: '4 3', fillColor: GRADE_COLOR[p.grade] || '#dd6b20',
          fillOpacity: 0.2, className: 'gm-hazard', pane: 'gmHazards'};
      },
      onEachFeature: function (f, l) {
        var p = f.properties || {}, tip = doc.createElement('div');
        [[p.title, 'gm-tooltip-title'], [p.type_name], [p.grade_name], [p.status_name],
          [p.overdue ? t('超时') : null]].forEach(function (x) {
          if (x[0] === undefined || x[0] === null || x[0] === '') { return; }
          var d = doc.createElement('div');
          if (x[1]) { d.className = x[1]; }
          d.textContent = String(x[0]);
          tip.appendChild(d);
        });
        l.bindTooltip(tip);
      }
    }).addTo(map);
    function reload() {
      var s = ++seq, b = map.getBounds();
      var bbox = [Math.max(-180, b.getWest()), Math.max(-90, b.getSouth()), Math.min(180, b.getEast()),
        Math.min(90, b.getNorth())].map(function (v) { return v.toFixed(6); }).join(',');
      fetch(url + (url.indexOf('?') >= 0 ? '&' : '?') + 'bbox=' + bbox, {credentials: 'same-origin',
        headers: {Accept: 'application/json'}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) {
          if (s !== seq || !d) { return; }
          layer.clearLayers();
          layer.addData((d.features || []).filter(function (f) { return f.geometry && (f.properties || {}).status !== 'closed'; }));
          loads += 1;
          map.getContainer().setAttribute('data-gm-hazards', String(loads));
        })
        .catch(function () { return null; });
    }
    var timer = null;
    map.on('moveend', function () { if (timer) { clearTimeout(timer); } timer = setTimeout(reload, 150); });
    reload();
    global.GridmapApp.hazards = {layer: layer, reload: reload};
  }

  function init() {
    initReport();
    initHazards();
    initCentre();
    initEditor();
  }

  global.GridmapApp = {t: t, csrfToken: csrfToken, pageMap: pageMap};
  if (doc.readyState === 'loading') { doc.addEventListener('DOMContentLoaded', init); } else { init(); }
}(window));
