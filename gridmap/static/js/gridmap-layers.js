/*
 * gridmap-layers.js: layers that load what is in view from /api/v1/geo and reload on every move.
 * Plain JavaScript for Leaflet 1.9 (no build step). Used by gridmap.web.maps.add_*_layer.
 *
 *   GridmapLayers.cells(map, url, {level | levels: [[minZoom, level], …], property, breaks, colors, tooltip,
 *                                  filter, name, areaUrl: "/areas/{code}"})
 *   GridmapLayers.cases(map, url, {filter, caseUrl: "/cases/{id}", name})
 *   GridmapLayers.choropleth(map, url, {property, breaks, colors, legend, level, filter, name})
 *   GridmapLayers.heat(map, url, {filter, heat: {radius, blur}, name})
 *   GridmapLayers.basemap(map, url, {name})   the offline vector basemap: land, sea, district/street names
 *
 * Areas are labelled by zoom (LABEL_ZOOM; cells with their name and the short code, the last digits
 * of the code), every layer adds its entry to one legend per map, and the language of the labels
 * and the legend follows <html lang> (zh-CN first, English).
 *
 * Each returns a handle {layer, name, setFilter(obj), reload(), remove(), loads, lastData} and is also
 * found with GridmapLayers.get(name). Requests carry the page's own credentials (same-origin
 * cookies); 401/403 show a message on the map. Text from the server (titles, names) is put into
 * the page with textContent only: user text is never interpreted as HTML.
 * After each load the map container gets data-gm-<name>="<number of loads>" and the map fires
 * "gridmap:load" {name, data}.
 */
(function (global) {
  'use strict';

  var L = global.L;
  var registry = {};
  var STATUS_ZH = {
    reported: '已上报', filed: '已立案', rejected: '不予立案', dispatched: '已派遣', in_progress: '处置中',
    handled: '已处置', verifying: '核查中', closed: '已结案', evaluated: '已评价', parked: '挂账'
  };
  var LEVEL_ZH = {district: '区县', street: '街道乡镇', community: '社区村', cell: '网格'};
  var LEVEL_EN = {district: 'districts', street: 'streets', community: 'communities', cell: 'cells'};
  //: the zoom from which the areas of a level carry their names
  var LABEL_ZOOM = {district: 0, street: 10, community: 12, cell: 15};
  //: the zooms at which the basemap names districts and streets (under the area layers' own labels)
  var BASEMAP_LABEL_ZOOM = {district: [0, 13], street: [12, 16]};

  function english() {
    var lang = (document.documentElement.getAttribute('lang') || 'zh').toLowerCase();
    return lang.indexOf('en') === 0;
  }
  function T(zh, en) { return english() ? en : zh; }
  var DEFAULT_TOOLTIP = [['name', ''], ['code', '编码'], ['households', '户数'], ['open_cases', '未结事件'],
    ['per_1000_households', '每千户']];

  // ------------------------------------------------------------------ small helpers

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }

  function bboxOf(map) {
    var b = map.getBounds();
    var w = clamp(b.getWest(), -180, 180), e = clamp(b.getEast(), -180, 180);
    var s = clamp(b.getSouth(), -90, 90), n = clamp(b.getNorth(), -90, 90);
    if (e <= w) { w = -180; e = 180; }
    if (n <= s) { s = -90; n = 90; }
    return [w, s, e, n].map(function (v) { return v.toFixed(6); }).join(',');
  }

  function withParams(url, params) {
    var u = new URL(url, global.location.href);
    Object.keys(params).forEach(function (k) {
      var v = params[k];
      if (v === undefined || v === null || v === '') { return; }
      if (Array.isArray(v)) { v = v.join(','); }
      if (v === true) { v = '1'; }
      if (v === false) { v = '0'; }
      u.searchParams.set(k, String(v));
    });
    return u.toString();
  }

  function debounce(fn, ms) {
    var t = null;
    return function () {
      if (t) { clearTimeout(t); }
      t = setTimeout(function () { t = null; fn(); }, ms);
    };
  }

  function classify(value, breaks, colors, noData) {
    if (value === null || value === undefined || isNaN(value)) { return noData; }
    var i = 0;
    while (i < breaks.length && value >= breaks[i]) { i += 1; }
    return colors[Math.min(i, colors.length - 1)];
  }

  function fmt(v) {
    if (typeof v === 'number' && !Number.isInteger(v)) { return v.toFixed(2); }
    return v;
  }

  // ------------------------------------------------------------------ messages on the map

  var MessageBox = L.Control.extend({
    options: {position: 'topright'},
    onAdd: function () {
      this._lines = {};
      var div = el('div', 'gm-message');
      div.setAttribute('role', 'status');
      div.hidden = true;
      L.DomEvent.disableClickPropagation(div);
      this._div = div;
      return div;
    },
    set: function (key, text, kind) {
      if (text) { this._lines[key] = {text: text, kind: kind || 'error'}; } else { delete this._lines[key]; }
      var div = this._div, lines = this._lines;
      while (div.firstChild) { div.removeChild(div.firstChild); }
      Object.keys(lines).forEach(function (k) {
        div.appendChild(el('div', 'gm-message-' + lines[k].kind, lines[k].text));
      });
      div.hidden = Object.keys(lines).length === 0;
    }
  });

  function messages(map) {
    if (!map._gmMessages) { map._gmMessages = new MessageBox().addTo(map); }
    return map._gmMessages;
  }

  // ------------------------------------------------------------------ loading per visible area

  function Loader(map, url, opts, render, extra) {
    this.map = map;
    this.url = url;
    this.opts = opts || {};
    this.name = this.opts.name;
    this.filter = Object.assign({}, this.opts.filter || {});
    this.extra = extra || {};
    this.render = render;
    this.loads = 0;
    this.lastData = null;
    this._seq = 0;
    this._controller = null;
    var self = this;
    this._onMove = debounce(function () { self.reload(); }, this.opts.debounce === undefined ? 150 : this.opts.debounce);
    map.on('moveend', this._onMove);
    map.whenReady(function () { self.reload(); });
  }

  Loader.prototype.params = function () {
    var extra = typeof this.extra === 'function' ? this.extra(this.map) : this.extra;
    var p = Object.assign({}, this.filter, extra);
    p.bbox = bboxOf(this.map);
    p.z = Math.round(this.map.getZoom());
    return p;
  };

  Loader.prototype.reload = function () {
    var self = this, seq = ++this._seq, box = messages(this.map), key = this.name;
    if (this._controller) { this._controller.abort(); }
    this._controller = typeof AbortController === 'function' ? new AbortController() : null;
    var request = {credentials: 'same-origin', headers: {Accept: 'application/json'}};
    if (this._controller) { request.signal = this._controller.signal; }
    return fetch(withParams(this.url, this.params()), request).then(function (resp) {
      if (seq !== self._seq) { return null; }
      if (resp.status === 401) {
        box.set(key, '请先登录后查看地图数据（Please log in to see the map data）', 'error');
        return null;
      }
      if (resp.status === 403) {
        box.set(key, '无权查看此图层（You may not see this layer）', 'error');
        return null;
      }
      if (!resp.ok) {
        return resp.json().catch(function () { return {}; }).then(function (body) {
          if (seq === self._seq) {
            box.set(key, '地图数据加载失败：' + (body && body.error ? body.error : resp.status), 'error');
          }
          return null;
        });
      }
      return resp.json().then(function (data) {
        if (seq !== self._seq) { return null; }
        box.set(key, null);
        self.lastData = data;
        self.render(data);
        self.loads += 1;
        if (data && data.truncated) {
          box.set(key + ':truncated', '范围内要素过多，仅显示部分；请放大地图（Zoom in to see all）', 'warning');
        } else {
          box.set(key + ':truncated', null);
        }
        if (key) { self.map.getContainer().setAttribute('data-gm-' + key, String(self.loads)); }
        self.map.fire('gridmap:load', {name: key, data: data});
        return data;
      });
    }).catch(function (err) {
      if (err && err.name === 'AbortError') { return null; }
      if (seq === self._seq) { box.set(key, '地图数据加载失败：' + ((err && err.message) || 'network error'), 'error'); }
      return null;
    });
  };

  Loader.prototype.remove = function () {
    this.map.off('moveend', this._onMove);
    if (this._controller) { this._controller.abort(); }
    this._seq += 1;
  };

  function makeHandle(loader, layer, cleanup) {
    var handle = {
      name: loader.name,
      layer: layer,
      loader: loader,
      get loads() { return loader.loads; },
      get lastData() { return loader.lastData; },
      setFilter: function (filter) { loader.filter = Object.assign({}, filter || {}); return loader.reload(); },
      reload: function () { return loader.reload(); },
      remove: function () {
        loader.remove();
        if (cleanup) { cleanup(); }
        if (layer && loader.map.hasLayer(layer)) { loader.map.removeLayer(layer); }
        if (registry[loader.name] === handle) { delete registry[loader.name]; }
      }
    };
    if (loader.name) { registry[loader.name] = handle; }
    return handle;
  }

  // ------------------------------------------------------------------ areas (cells, choropleth)

  function areaTooltip(props, fields) {
    var box = el('div', 'gm-tooltip');
    (fields || DEFAULT_TOOLTIP).forEach(function (f) {
      var key = f[0], label = f[1], v = props[key];
      if (v === null || v === undefined || v === '') { return; }
      if (key === 'level') { v = LEVEL_ZH[v] || v; }
      if (!label) { box.appendChild(el('div', 'gm-tooltip-title', v)); return; }
      var row = el('div', 'gm-tooltip-row');
      row.appendChild(el('span', 'gm-label', label + '：'));
      row.appendChild(el('span', 'gm-value', fmt(v)));
      box.appendChild(row);
    });
    return box;
  }

  // opts.levels: [[minZoom, level], ...] picks the level by zoom (e.g. streets when zoomed out)
  function levelFor(opts, zoom) {
    var level = opts.level;
    (opts.levels || []).forEach(function (pair) { if (zoom >= pair[0]) { level = pair[1]; } });
    return level;
  }

  function areaLayer(map, url, opts, legendControl) {
    opts = Object.assign({name: 'cells', level: 'cell'}, opts || {});
    var styled = opts.property && opts.breaks && opts.colors;
    var base = Object.assign({color: '#2b6cb0', weight: 1, opacity: 0.9, fillColor: '#4a90d9', fillOpacity: 0.08},
      opts.style || {});
    var layer = L.geoJSON(null, {
      style: function (f) {
        if (!styled) { return base; }
        var v = f.properties ? f.properties[opts.property] : null;
        return Object.assign({}, base, {fillColor: classify(v, opts.breaks, opts.colors, opts.noDataColor || '#d9d9d9'),
          fillOpacity: opts.fillOpacity === undefined ? 0.7 : opts.fillOpacity});
      },
      onEachFeature: function (f, l) {
        l.bindTooltip(areaTooltip(f.properties || {}, opts.tooltip), {sticky: true});
        if (opts.areaUrl && f.properties && f.properties.code) {
          l.on('click', function () {
            global.location.href = opts.areaUrl.replace('{code}', encodeURIComponent(f.properties.code));
          });
        }
      }
    }).addTo(map);
    var labels = L.layerGroup().addTo(map);
    var loader = new Loader(map, url, opts, function (data) {
      layer.clearLayers();
      layer.addData(data);
      drawLabels(map, labels, data, opts);
    }, function (m) { return {level: levelFor(opts, m.getZoom())}; });
    if (!styled && opts.legend !== false) {
      legendEntry(map, opts.name, function () {
        var lv = levelFor(opts, map.getZoom());
        return {title: null, rows: [{swatch: {border: base.color, background: 'transparent'},
          label: T(LEVEL_ZH[lv] || lv, LEVEL_EN[lv] || lv) + T('边界', ' boundaries')}]};
      });
    }
    return makeHandle(loader, layer, function () {
      if (legendControl) { map.removeControl(legendControl); }
      map.removeLayer(labels);
      legendEntry(map, opts.name, null);
    });
  }

  // ------------------------------------------------------------------ labels

  function shortCode(code) {
    // a cell's code is its community's code plus a sequence: the sequence is what tells cells apart
    return code && code.length > 12 ? code.slice(12) : code;
  }

  function labelText(p) {
    if (p.level === 'cell') {
      var name = p.name || '';
      var m = /第(\d+)网格$/.exec(name);
      return (m ? T('第' + m[1] + '网格', 'Cell ' + m[1]) : name) + ' · ' + shortCode(p.code);
    }
    return p.name || p.code;
  }

  function drawLabels(map, group, data, opts) {
    group.clearLayers();
    if (opts.labels === false) { return; }
    var z = map.getZoom(), feats = (data && data.features) || [];
    var lv = levelFor(opts, z);
    if (z < (LABEL_ZOOM[lv] === undefined ? 99 : LABEL_ZOOM[lv])) { return; }
    if (lv === 'district' && map._gmBasemap) { return; }   // the basemap names the districts already
    feats.forEach(function (f) {
      var p = f.properties || {};
      if (!p.label_at) { return; }
      var marker = L.marker([p.label_at[1], p.label_at[0]], {
        icon: L.divIcon({className: 'gm-area-label gm-area-label-' + (p.level || lv),
          html: el('span', null, labelText(p)), iconSize: null}),
        interactive: false, keyboard: false
      });
      group.addLayer(marker);
    });
  }

  // ------------------------------------------------------------------ one legend per map

  var LayerLegend = L.Control.extend({
    options: {position: 'bottomleft'},
    onAdd: function (map) {
      var box = el('div', 'gm-legend gm-layer-legend');
      var toggle = el('button', 'gm-legend-toggle', T('图例', 'Legend'));
      toggle.type = 'button';
      box.appendChild(toggle);
      this._div = el('div', 'gm-legend-body');
      box.appendChild(this._div);
      // on a phone the legend starts folded: it would cover half of a small map
      if (map.getContainer().clientWidth < 480) { box.classList.add('gm-collapsed'); }
      toggle.setAttribute('aria-expanded', String(!box.classList.contains('gm-collapsed')));
      L.DomEvent.on(toggle, 'click', function () {
        box.classList.toggle('gm-collapsed');
        toggle.setAttribute('aria-expanded', String(!box.classList.contains('gm-collapsed')));
      });
      L.DomEvent.disableClickPropagation(box);
      this._box = box;
      return box;
    },
    draw: function (entries) {
      var div = this._div;
      while (div.firstChild) { div.removeChild(div.firstChild); }
      Object.keys(entries).forEach(function (k) {
        var e = entries[k]();
        if (!e) { return; }
        if (e.title) { div.appendChild(el('div', 'gm-legend-title', e.title)); }
        e.rows.forEach(function (r) {
          var row = el('div', 'gm-legend-row');
          var sw = el('span', 'gm-legend-swatch' + (r.round ? ' gm-legend-round' : ''));
          sw.style.background = r.swatch.background;
          if (r.swatch.border) { sw.style.border = '2px solid ' + r.swatch.border; }
          row.appendChild(sw);
          row.appendChild(el('span', null, r.label));
          div.appendChild(row);
        });
      });
      this._box.hidden = div.childNodes.length === 0;
    }
  });

  function legendEntry(map, key, fn) {
    if (!map._gmLegend) {
      map._gmLegend = {control: new LayerLegend().addTo(map), entries: {}};
      map.on('zoomend', function () { map._gmLegend.control.draw(map._gmLegend.entries); });
    }
    if (fn) { map._gmLegend.entries[key || 'layer'] = fn; } else { delete map._gmLegend.entries[key || 'layer']; }
    map._gmLegend.control.draw(map._gmLegend.entries);
  }

  function cells(map, url, opts) { return areaLayer(map, url, opts); }

  var Legend = L.Control.extend({
    options: {position: 'bottomright'},
    initialize: function (title, breaks, colors, options) {
      L.setOptions(this, options);
      this._title = title; this._breaks = breaks; this._colors = colors;
    },
    onAdd: function () {
      var div = el('div', 'gm-legend');
      if (this._title) { div.appendChild(el('div', 'gm-legend-title', this._title)); }
      var b = this._breaks, c = this._colors;
      for (var i = 0; i < c.length; i += 1) {
        var label = i === 0 ? '< ' + b[0] : (i === b.length ? '≥ ' + b[b.length - 1] : b[i - 1] + ' – ' + b[i]);
        var row = el('div', 'gm-legend-row');
        var sw = el('span', 'gm-legend-swatch');
        sw.style.background = c[i];
        row.appendChild(sw);
        row.appendChild(el('span', null, label));
        div.appendChild(row);
      }
      return div;
    }
  });

  function choropleth(map, url, opts) {
    opts = Object.assign({name: 'choropleth', property: 'per_1000_households', breaks: [1, 2, 5, 10],
      colors: ['#fff5eb', '#fdd0a2', '#fd8d3c', '#d94801', '#7f2704']}, opts || {});
    if (opts.colors.length !== opts.breaks.length + 1) {
      throw new Error('GridmapLayers.choropleth: colors must have one entry more than breaks');
    }
    var legend = null;
    if (opts.legend !== false) {
      var title = typeof opts.legend === 'string' ? opts.legend : opts.property;
      legend = new Legend(title, opts.breaks, opts.colors).addTo(map);
    }
    return areaLayer(map, url, opts, legend);
  }

  // ------------------------------------------------------------------ cases

  function caseClass(p) {
    if (p.overdue) { return 'overdue'; }
    if (p.urgent) { return 'urgent'; }
    if (p.status === 'closed' || p.status === 'evaluated' || p.status === 'rejected') { return 'closed'; }
    return 'normal';
  }

  function casePopup(p, opts) {
    var box = el('div', 'gm-popup');
    box.appendChild(el('div', 'gm-popup-number', p.number || ('#' + p.id)));
    if (p.title) { box.appendChild(el('div', 'gm-popup-title', p.title)); }
    var meta = el('div', 'gm-popup-meta');
    if (p.category) { meta.appendChild(el('span', 'gm-popup-category', p.category)); }
    meta.appendChild(el('span', 'gm-popup-status', STATUS_ZH[p.status] || p.status));
    box.appendChild(meta);
    if (p.urgent || p.overdue || p.supervised) {
      var flags = el('div', 'gm-popup-flags');
      if (p.overdue) { flags.appendChild(el('span', 'gm-flag gm-flag-overdue', '超时')); }
      if (p.urgent) { flags.appendChild(el('span', 'gm-flag gm-flag-urgent', '紧急')); }
      if (p.supervised) { flags.appendChild(el('span', 'gm-flag gm-flag-supervised', '督办')); }
      box.appendChild(flags);
    }
    if (opts.caseUrl) {
      var a = el('a', 'gm-popup-link', '查看详情');
      a.href = opts.caseUrl.replace('{id}', encodeURIComponent(String(p.id)));
      box.appendChild(a);
    }
    return box;
  }

  function clusterIcon(cluster) {
    var children = cluster.getAllChildMarkers(), overdue = 0;
    for (var i = 0; i < children.length; i += 1) { if (children[i].options.gmOverdue) { overdue += 1; } }
    var n = cluster.getChildCount();
    var size = n < 10 ? 'small' : (n < 100 ? 'medium' : 'large');
    var inner = el('div');
    inner.appendChild(el('span', null, n));
    return L.divIcon({html: inner, className: 'marker-cluster marker-cluster-' + size + (overdue ? ' gm-cluster-overdue' : ''),
      iconSize: L.point(40, 40)});
  }

  function aggregateMarker(map, f) {
    var p = f.properties || {}, c = f.geometry.coordinates;
    var n = p.count || 0, d = Math.round(Math.min(56, 22 + 6 * Math.log10(Math.max(1, n))));
    var inner = el('div');
    inner.appendChild(el('span', null, n));
    var cls = 'gm-aggregate' + (p.overdue ? ' gm-aggregate-overdue' : '');
    var m = L.marker([c[1], c[0]], {icon: L.divIcon({html: inner, className: cls, iconSize: L.point(d, d)})});
    var tip = el('div', 'gm-tooltip');
    tip.appendChild(el('div', 'gm-tooltip-title', p.cell_name || p.cell_code || '网格外'));
    tip.appendChild(el('div', null, '事件 ' + n + (p.overdue ? '，超时 ' + p.overdue : '') + (p.urgent ? '，紧急 ' + p.urgent : '')));
    m.bindTooltip(tip);
    m.on('click', function () { map.setView(m.getLatLng(), Math.min(map.getZoom() + 2, map.getMaxZoom())); });
    return m;
  }

  function cases(map, url, opts) {
    opts = Object.assign({name: 'cases'}, opts || {});
    var clustered = typeof L.markerClusterGroup === 'function';
    var points = clustered
      ? L.markerClusterGroup(Object.assign({iconCreateFunction: clusterIcon, chunkedLoading: true,
        showCoverageOnHover: false}, opts.cluster || {}))
      : L.layerGroup();
    var aggregates = L.layerGroup();
    var group = L.layerGroup([points, aggregates]).addTo(map);
    legendEntry(map, opts.name, function () {
      return {title: T('事件', 'Cases'), rows: [
        {swatch: {background: '#2b6cb0'}, round: true, label: T('办理中', 'open')},
        {swatch: {background: '#dd6b20'}, round: true, label: T('紧急', 'urgent')},
        {swatch: {background: '#c53030'}, round: true, label: T('超时', 'overdue')},
        {swatch: {background: '#8a8f98'}, round: true, label: T('已办结', 'closed')},
        {swatch: {background: 'rgba(43, 108, 176, .78)'}, round: true, label: T('数字：聚合的事件数', 'number: cases grouped')}
      ]};
    });
    var loader = new Loader(map, url, opts, function (data) {
      points.clearLayers();
      aggregates.clearLayers();
      var feats = (data && data.features) || [];
      if (data && data.aggregated) {
        feats.forEach(function (f) { aggregates.addLayer(aggregateMarker(map, f)); });
        return;
      }
      var markers = feats.map(function (f) {
        var p = f.properties || {}, c = f.geometry.coordinates, cls = caseClass(p);
        var m = L.marker([c[1], c[0]], {
          icon: L.divIcon({className: 'gm-case gm-case-' + cls + (p.supervised ? ' gm-case-supervised' : ''), iconSize: L.point(14, 14), html: ''}),
          title: p.title || p.number || '',
          gmOverdue: !!p.overdue
        });
        m.bindPopup(function () { return casePopup(p, opts); });
        return m;
      });
      if (clustered) { points.addLayers(markers); } else { markers.forEach(function (m) { points.addLayer(m); }); }
    });
    return makeHandle(loader, group);
  }

  // ------------------------------------------------------------------ heat

  function heat(map, url, opts) {
    opts = Object.assign({name: 'heat'}, opts || {});
    if (typeof L.heatLayer !== 'function') {
      throw new Error('GridmapLayers.heat needs leaflet_heat.min.js (gridmap.web.maps.add_heat_layer loads it)');
    }
    var layer = L.heatLayer([], Object.assign({radius: 20, blur: 15, minOpacity: 0.3}, opts.heat || {})).addTo(map);
    legendEntry(map, opts.name, function () {
      return {title: T('事件热力', 'Case density'), rows: [
        {swatch: {background: 'linear-gradient(90deg, blue, lime, yellow, red)'}, label: T('少 → 多', 'few → many')}]};
    });
    var loader = new Loader(map, url, opts, function (data) {
      var pts = Array.isArray(data) ? data : ((data && data.points) || []);
      var max = 1;
      pts.forEach(function (p) { if (p[2] > max) { max = p[2]; } });
      layer.setOptions({max: max});
      layer.setLatLngs(pts);
    });
    return makeHandle(loader, layer);
  }

  // ------------------------------------------------------------------ the offline vector basemap

  function basemap(map, url, opts) {
    opts = Object.assign({name: 'basemap'}, opts || {});
    map._gmBasemap = true;
    if (!map.getPane('gmBasemap')) {
      map.createPane('gmBasemap').style.zIndex = 250;   // above tiles (200), under the areas (400)
      var lp = map.createPane('gmBasemapLabels');
      lp.style.zIndex = 450;
      lp.style.pointerEvents = 'none';
    }
    var land = L.geoJSON(null, {
      pane: 'gmBasemap', interactive: false,
      style: {color: '#9fb3c8', weight: 1, fillColor: '#fbfaf5', fillOpacity: 1},
      filter: function (f) { return f.properties && f.properties.kind === 'land'; }
    }).addTo(map);
    var names = L.layerGroup().addTo(map);
    var loader = new Loader(map, url, opts, function (data) {
      land.clearLayers();
      land.addData(data);
      names.clearLayers();
      var z = map.getZoom();
      ((data && data.features) || []).forEach(function (f) {
        var p = f.properties || {}, band = BASEMAP_LABEL_ZOOM[p.level];
        if (p.kind !== 'label' || !band || z < band[0] || z > band[1]) { return; }
        var c = f.geometry.coordinates;
        names.addLayer(L.marker([c[1], c[0]], {pane: 'gmBasemapLabels', interactive: false, keyboard: false,
          icon: L.divIcon({className: 'gm-basemap-label gm-basemap-label-' + p.level,
            html: el('span', null, p.name), iconSize: null})}));
      });
    });
    legendEntry(map, opts.name, function () {
      return {title: null, rows: [{swatch: {background: '#fbfaf5', border: '#9fb3c8'}, label: T('陆地', 'land')},
        {swatch: {background: '#dcebf5'}, label: T('海域', 'sea')}]};
    });
    return makeHandle(loader, land, function () { map.removeLayer(names); legendEntry(map, opts.name, null); });
  }

  global.GridmapLayers = {
    basemap: basemap,
    cells: cells,
    cases: cases,
    choropleth: choropleth,
    heat: heat,
    get: function (name) { return registry[name] || null; },
    all: function () { return Object.assign({}, registry); },
    _bboxOf: bboxOf,
    _classify: classify
  };
}(window));
