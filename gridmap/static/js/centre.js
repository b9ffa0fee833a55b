/*
 * centre.js: the centre page's indicator tree and hot-spot layer (no build step, no inline handlers).
 *
 *   tree      a row's toggle opens its children: fetched once from /centre/rows?parent=CODE&<filter>
 *             (JSON, put into the page with textContent), then shown and hidden; closing a row hides
 *             every row below it. A header button sorts each level among its siblings (children
 *             stay under their parent); a second click reverses.
 *   hotspots  /api/v1/hotspots (GeoJSON with a class per area): the significant areas drawn over the
 *             shaded areas and under the case points, with a legend of every class and its count
 *             (not significant ones included), and the correction stated.
 *
 * Messages come translated from <script id="centre-i18n">.
 */
(function (global) {
  'use strict';

  var doc = global.document;
  var MESSAGES = {};
  try {
    var node = doc.getElementById('centre-i18n');
    MESSAGES = node ? JSON.parse(node.textContent || '{}') : {};
  } catch (e) { MESSAGES = {}; }

  function t(key, values) {
    var s = Object.prototype.hasOwnProperty.call(MESSAGES, key) ? MESSAGES[key] : key;
    if (values) {
      Object.keys(values).forEach(function (k) { s = s.split('{' + k + '}').join(String(values[k])); });
    }
    return s;
  }

  function el(tag, cls, text) {
    var e = doc.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function pct(v) { return v === null || v === undefined ? '—' : (v * 100).toFixed(1) + '%'; }

  // ------------------------------------------------------------------ the indicator tree
  var COLUMNS = [['filed', false], ['due', false], ['closed', false], ['closure_rate', true],
    ['on_time_rate', true], ['open', false], ['overdue_open', false], ['rework_rate', true],
    ['self_handled', false], ['supervised', false], ['satisfaction_rate', true],
    ['reg_households', false], ['reg_persons', false], ['reg_organisations', false]];

  function makeRow(r, depth, parentCode) {
    var tr = el('tr', 'tree-row level-' + r.level + ' depth-' + depth);
    tr.setAttribute('data-code', r.code);
    tr.setAttribute('data-level', r.level);
    tr.setAttribute('data-parent', parentCode || '');
    tr.setAttribute('data-depth', String(depth));
    var name = el('td', 'name');
    if (r.has_children) {
      tr.setAttribute('data-has-children', '1');
      var b = el('button', 'tree-toggle', '▸');
      b.type = 'button';
      b.setAttribute('aria-expanded', 'false');
      b.setAttribute('aria-label', t('展开或收起'));
      name.appendChild(b);
    } else {
      name.appendChild(el('span', 'tree-leaf'));
    }
    var a = el('a', null, r.name);
    a.href = '/areas/' + encodeURIComponent(r.code);
    name.appendChild(a);
    tr.appendChild(name);
    COLUMNS.forEach(function (c) {
      var v = r[c[0]];
      var td = el('td', 'num', c[1] ? pct(v) : (v || 0));
      if (c[0] === 'overdue_open' && v) { td.className += ' warn'; }
      if (c[0] === 'supervised' && v) { td.className += ' supervised'; }
      if (c[0].indexOf('reg_') === 0) { td.className += ' ' + c[0].replace('_', '-'); }
      td.setAttribute('data-v', String(v === null || v === undefined ? -1 : v));
      tr.appendChild(td);
    });
    return tr;
  }

  function initTree() {
    var table = doc.getElementById('indicators');
    if (!table) { return; }
    var tbody = table.tBodies[0];
    var url = table.getAttribute('data-rows-url');
    var filter = table.getAttribute('data-filter') || '';

    function rowsOf(code) {
      return Array.prototype.filter.call(tbody.rows, function (r) { return r.getAttribute('data-parent') === code; });
    }
    function descendants(code) {
      var out = [];
      rowsOf(code).forEach(function (r) { out.push(r); out = out.concat(descendants(r.getAttribute('data-code'))); });
      return out;
    }
    function lastDescendant(row) {
      var d = descendants(row.getAttribute('data-code'));
      return d.length ? d[d.length - 1] : row;
    }
    function setOpen(row, open) {
      var b = row.querySelector('.tree-toggle');
      if (b) { b.setAttribute('aria-expanded', open ? 'true' : 'false'); b.textContent = open ? '▾' : '▸'; }
    }
    function showChildren(row, show) {
      rowsOf(row.getAttribute('data-code')).forEach(function (c) {
        c.hidden = !show;
        if (!show || c.querySelector('.tree-toggle[aria-expanded=true]')) { showChildren(c, show); }
      });
    }
    function toggle(row) {
      var b = row.querySelector('.tree-toggle');
      var open = b.getAttribute('aria-expanded') !== 'true';
      if (!open) { setOpen(row, false); showChildren(row, false); return; }
      if (row.getAttribute('data-loaded')) { setOpen(row, true); showChildren(row, true); return; }
      if (row.getAttribute('data-loading')) { return; }
      row.setAttribute('data-loading', '1');
      var code = row.getAttribute('data-code');
      var depth = Number(row.getAttribute('data-depth')) + 1;
      fetch(url + '?parent=' + encodeURIComponent(code) + (filter ? '&' + filter : ''),
        {credentials: 'same-origin', headers: {Accept: 'application/json'}})
        .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
        .then(function (d) {
          var after = row;
          d.rows.forEach(function (r) {
            var tr = makeRow(r, depth, code);
            after.parentNode.insertBefore(tr, after.nextSibling);
            after = tr;
          });
          row.setAttribute('data-loaded', '1');
          row.removeAttribute('data-loading');
          setOpen(row, true);
          table.setAttribute('data-loads', String(Number(table.getAttribute('data-loads') || 0) + 1));
        })
        .catch(function (err) {
          row.removeAttribute('data-loading');
          var msg = el('tr', 'tree-error');
          msg.setAttribute('data-parent', code);
          var td = el('td', null, t('加载失败：{reason}', {reason: err.message}));
          td.colSpan = 12;
          msg.appendChild(td);
          lastDescendant(row).after(msg);
        });
    }
    tbody.addEventListener('click', function (e) {
      var b = e.target.closest ? e.target.closest('.tree-toggle') : null;
      if (b) { toggle(b.closest('tr')); }
    });

    // sort every level among its siblings
    var sortState = {key: null, dir: 1};
    function value(row, key) {
      if (key === 'name') { return row.cells[0].textContent.trim(); }
      return Number(row.cells[Number(key)].getAttribute('data-v'));
    }
    function sortBy(key) {
      sortState.dir = sortState.key === key ? -sortState.dir : (key === 'name' ? 1 : -1);
      sortState.key = key;
      var order = [];
      function walk(code) {
        var kids = rowsOf(code);
        kids.sort(function (a, b) {
          var va = value(a, key), vb = value(b, key);
          if (va < vb) { return -sortState.dir; }
          if (va > vb) { return sortState.dir; }
          return a.getAttribute('data-code') < b.getAttribute('data-code') ? -1 : 1;
        });
        kids.forEach(function (k) { order.push(k); walk(k.getAttribute('data-code')); });
      }
      walk('');
      order.forEach(function (r) { tbody.appendChild(r); });
      Array.prototype.forEach.call(table.querySelectorAll('th .sort'), function (b) {
        b.removeAttribute('aria-sort');
        b.parentNode.removeAttribute('aria-sort');
      });
      var th = table.querySelector('th .sort[data-key="' + key + '"]').parentNode;
      th.setAttribute('aria-sort', sortState.dir > 0 ? 'ascending' : 'descending');
    }
    Array.prototype.forEach.call(table.querySelectorAll('th .sort'), function (b) {
      b.addEventListener('click', function () { sortBy(b.getAttribute('data-key')); });
    });
  }

  // ------------------------------------------------------------------ the hot-spot layer
  var HOT_COLOURS = {hot_99: '#b2182b', hot_95: '#ef8a62', hot_90: '#fddbc7', not_significant: '#f7f7f7',
    cold_90: '#d1e5f0', cold_95: '#67a9cf', cold_99: '#2166ac', not_tested: '#bdbdbd'};
  var HOT_ORDER = ['hot_99', 'hot_95', 'hot_90', 'not_significant', 'cold_90', 'cold_95', 'cold_99', 'not_tested'];
  var HOT_LABELS = {hot_99: '热点 99%', hot_95: '热点 95%', hot_90: '热点 90%', not_significant: '不显著',
    cold_90: '冷点 90%', cold_95: '冷点 95%', cold_99: '冷点 99%', not_tested: '未检验（无户数）'};

  function initHotspots() {
    var box = doc.getElementById('centre-map');
    var status = doc.getElementById('hotspot-status');
    var mapName = doc.body.getAttribute('data-map');
    var map = mapName ? global[mapName] : null;
    if (!box || !map || !global.L) { return; }
    var url = box.getAttribute('data-hotspots-url');
    var toggleBox = doc.getElementById('toggle-hotspots');
    var layer = null, legend = null;

    function say(text) { if (status) { status.textContent = text; } }

    function addLegend(fc) {
      legend = global.L.control({position: 'bottomleft'});
      legend.onAdd = function () {
        var div = el('div', 'gm-legend gm-hotspot-legend');
        div.appendChild(el('div', 'gm-legend-title', t('热点分析') + ' · ' + t(fc.correction === 'fdr' ? '错误发现率校正' : '未校正')));
        HOT_ORDER.forEach(function (k) {
          var n = fc.summary ? (fc.summary[k] || 0) : 0;
          if (k === 'not_tested' && !n) { return; }
          var row = el('div', 'gm-legend-row');
          row.setAttribute('data-class', k);
          var sw = el('span', 'gm-legend-swatch');
          sw.style.background = HOT_COLOURS[k];
          row.appendChild(sw);
          row.appendChild(el('span', null, t(HOT_LABELS[k]) + ' (' + n + ')'));
          div.appendChild(row);
        });
        return div;
      };
      legend.addTo(map);
    }

    say(t('加载中…'));
    fetch(url, {credentials: 'same-origin', headers: {Accept: 'application/json'}})
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(function (fc) {
        box.setAttribute('data-hotspots', 'loaded');
        if (!fc.features || !fc.features.length) {
          say(fc.message_code === 'no_cases' ? t('该时段没有事件，无法做热点分析。') :
            (fc.message_code === 'too_few_areas' ? t('区域太少，无法做热点分析。') : (fc.message || '')));
          box.setAttribute('data-hotspots', 'empty');
          return;
        }
        // only significant areas are drawn, on top of the shaded areas (which stay readable beneath)
        layer = global.L.geoJSON(fc, {
          filter: function (f) { var c = f.properties['class']; return c.indexOf('hot') === 0 || c.indexOf('cold') === 0; },
          style: function (f) {
            var c = f.properties['class'];
            return {color: c.indexOf('hot') === 0 ? '#67000d' : '#08306b', weight: 1.5, fillColor: HOT_COLOURS[c] || '#fff',
              fillOpacity: 0.75, className: 'gm-hotspot gm-hotspot-' + c};
          },
          onEachFeature: function (f, l) {
            var p = f.properties;
            var tip = el('div');
            tip.appendChild(el('strong', null, p.name));
            tip.appendChild(el('div', null, t(HOT_LABELS[p['class']] || p['class'])));
            tip.appendChild(el('div', null, t('事件数') + ' ' + p.count + (p.q_value !== null ? ' · ' + t('q 值') + ' ' + p.q_value : '')));
            l.bindTooltip(tip, {sticky: true});
          }
        });
        if (!toggleBox || toggleBox.checked) { layer.addTo(map); }
        addLegend(fc);
        var sig = 0;
        Object.keys(fc.summary || {}).forEach(function (k) { if (k.indexOf('hot') === 0 || k.indexOf('cold') === 0) { sig += fc.summary[k]; } });
        say(t('{n} 个区域，{total} 件事件', {n: fc.features.length, total: fc.total}) +
          (sig ? '' : '；' + t('没有显著的热点或冷点。')));
      })
      .catch(function (err) { say(t('加载失败：{reason}', {reason: err.message})); box.setAttribute('data-hotspots', 'error'); });

    if (toggleBox) {
      toggleBox.addEventListener('change', function () {
        if (!layer) { return; }
        if (toggleBox.checked) { layer.addTo(map); if (legend) { legend.addTo(map); } } else {
          map.removeLayer(layer);
          if (legend) { legend.remove(); }
        }
      });
    }
  }

  function init() { initTree(); initHotspots(); }
  if (doc.readyState === 'loading') { doc.addEventListener('DOMContentLoaded', init); } else { init(); }
}(window));
