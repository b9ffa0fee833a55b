/* gridmap outbox: what a worker sends while the network comes and goes.
 *
 * Reports (with an optional photo) and case actions are written to IndexedDB first, each with an id
 * made on the phone, and sent when the network is there: at once, when the browser says it is back
 * online, and every GRIDMAP_OUTBOX_SYNC_SECONDS. Each is sent with that id as its Idempotency-Key,
 * so sending twice (the first answer lost on the way) never makes a second case or a second
 * transition. An entry the server refuses stays in the outbox with the server's reason (and, for
 * an action, the case's state on the server) until the worker sends it again or deletes it: nothing
 * is lost silently. The header shows how many entries wait (#outbox-indicator).
 *
 * Entries belong to the user who made them (data-user-id on <body>); another user on the same phone
 * neither sends nor sees them.
 */
(function (global) {
  'use strict';
  var doc = global.document;
  var DB_NAME = 'gridmap-outbox', STORE = 'entries', DB_VERSION = 1;
  var MESSAGES = {};
  try {
    var node = doc.getElementById('gm-i18n-outbox');
    MESSAGES = node ? JSON.parse(node.textContent || '{}') : {};
  } catch (e) { MESSAGES = {}; }

  function t(key, values) {
    var s = Object.prototype.hasOwnProperty.call(MESSAGES, key) ? MESSAGES[key] : key;
    if (values) {
      Object.keys(values).forEach(function (k) { s = s.split('{' + k + '}').join(String(values[k])); });
    }
    return s;
  }

  function userId() { return (doc.body && doc.body.getAttribute('data-user-id')) || ''; }

  function newId() {
    if (global.crypto && global.crypto.randomUUID) { return global.crypto.randomUUID(); }
    var b = new Uint8Array(16);
    global.crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return ('0' + x.toString(16)).slice(-2); }).join('');
  }

  // ------------------------------------------------------------------ IndexedDB
  var dbPromise = null;
  function openDb() {
    if (!dbPromise) {
      dbPromise = new Promise(function (resolve, reject) {
        var req = global.indexedDB.open(DB_NAME, DB_VERSION);
        req.onupgradeneeded = function () {
          var db = req.result;
          if (!db.objectStoreNames.contains(STORE)) { db.createObjectStore(STORE, {keyPath: 'id'}); }
        };
        req.onsuccess = function () { resolve(req.result); };
        req.onerror = function () { reject(req.error); };
      });
    }
    return dbPromise;
  }

  function withStore(mode, fn) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var out = fn(tx.objectStore(STORE));
        tx.oncomplete = function () { resolve(out && out.result !== undefined ? out.result : undefined); };
        tx.onerror = function () { reject(tx.error); };
        tx.onabort = function () { reject(tx.error); };
      });
    });
  }

  function all() {
    return withStore('readonly', function (s) { return s.getAll(); }).then(function (rows) {
      var me = userId();
      return (rows || []).filter(function (e) { return e.user === me; })
        .sort(function (a, b) { return a.created - b.created; });
    });
  }
  function put(entry) { return withStore('readwrite', function (s) { return s.put(entry); }); }
  function remove(id) { return withStore('readwrite', function (s) { return s['delete'](id); }); }

  // ------------------------------------------------------------------ sending
  function freshToken() {
    return global.fetch('/offline/token', {credentials: 'same-origin', cache: 'no-store',
                                           headers: {Accept: 'application/json'}})
      .then(function (r) {
        if (r.status === 401) { var e = new Error('login'); e.login = true; throw e; }
        if (!r.ok) { throw new Error('token ' + r.status); }
        return r.json();
      }).then(function (j) { return j.csrf_token; });
  }

  function postJson(url, body, key, token) {
    return global.fetch(url, {
      method: 'POST', credentials: 'same-origin',
      headers: {'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRFToken': token,
                'Idempotency-Key': key},
      body: JSON.stringify(body)
    });
  }

  function answer(resp) {
    return resp.json().catch(function () { return {}; }).then(function (j) { return {status: resp.status, body: j}; });
  }

  // A refusal the worker must see (4xx other than "log in again" or "try later").
  function refused(status) { return status >= 400 && status < 500 && [401, 408, 425, 429].indexOf(status) < 0; }

  function sendPhoto(entry, caseId, token) {
    if (!entry.photo) { return Promise.resolve({status: 201, body: {}}); }
    var fd = new global.FormData();
    fd.append('photo', entry.photo, entry.photo_name || 'photo.jpg');
    if (entry.photo_label) { fd.append('comment', entry.photo_label); }
    return global.fetch('/api/v1/cases/' + caseId + '/photos', {
      method: 'POST', credentials: 'same-origin', body: fd,
      headers: {Accept: 'application/json', 'X-CSRFToken': token, 'Idempotency-Key': entry.id + ':photo'}
    }).then(answer);
  }

  // what the server answered for the entries sent from this page (id → {case_id, number})
  var sent = {};

  function sendOne(entry, token) {
    var url = entry.kind === 'report' ? '/api/v1/cases' : '/api/v1/cases/' + entry.case_id + '/actions';
    return postJson(url, entry.body, entry.id, token).then(answer).then(function (res) {
      if (res.status === 200 || res.status === 201) {
        if (entry.kind !== 'report') { return remove(entry.id).then(function () { return res; }); }
        entry.result = {case_id: res.body.id, number: res.body.number};
        sent[entry.id] = entry.result;
        return sendPhoto(entry, res.body.id, token).then(function (ph) {
          if (ph.status === 200 || ph.status === 201) { return remove(entry.id).then(function () { return res; }); }
          if (refused(ph.status)) {
            entry.status = 'refused';
            entry.error = t('事件已上报（{number}），但照片未被接受：{reason}',
                            {number: res.body.number || res.body.id, reason: (ph.body && ph.body.error) || ph.status});
            return put(entry).then(function () { return res; });
          }
          return put(entry).then(function () { return res; });  // photo: try again later
        });
      }
      if (res.status === 401) { var e = new Error('login'); e.login = true; throw e; }
      if (refused(res.status)) {
        entry.status = 'refused';
        entry.error = (res.body && res.body.error) || String(res.status);
        entry.server = res.body || {};
        return put(entry).then(function () { return res; });
      }
      return res;  // 5xx: keep it pending
    });
  }

  var syncing = null, loginNeeded = false;
  function sync() {
    if (syncing) { return syncing; }
    if (global.navigator && global.navigator.onLine === false) { return refresh(); }
    syncing = all().then(function (entries) {
      var pending = entries.filter(function (e) { return e.status === 'pending'; });
      if (!pending.length) { return null; }
      return freshToken().then(function (token) {
        loginNeeded = false;
        return pending.reduce(function (p, e) {
          return p.then(function () { return sendOne(e, token); });
        }, Promise.resolve());
      });
    }).catch(function (e) {
      if (e && e.login) { loginNeeded = true; } else if (global.console) { global.console.warn('outbox: ' + e); }
    }).then(function () {
      syncing = null;
      return refresh();
    });
    return syncing;
  }

  // ------------------------------------------------------------------ what the worker sees
  function refresh() {
    return all().then(function (entries) {
      var waiting = entries.filter(function (e) { return e.status === 'pending'; }).length;
      var bad = entries.filter(function (e) { return e.status === 'refused'; }).length;
      var el = doc.getElementById('outbox-indicator');
      if (el) {
        el.hidden = waiting + bad === 0 && !loginNeeded;
        var parts = [];
        if (waiting) { parts.push(t('待发送 {n}', {n: waiting})); }
        if (bad) { parts.push(t('未被接受 {n}', {n: bad})); }
        if (loginNeeded && waiting) { parts.push(t('请重新登录后发送')); }
        el.textContent = parts.join(' · ');
        el.className = 'outbox-indicator' + (bad ? ' outbox-bad' : '');
        el.setAttribute('data-waiting', String(waiting));
        el.setAttribute('data-refused', String(bad));
      }
      renderList(entries);
      return entries;
    });
  }

  function describe(e) {
    if (e.kind === 'report') {
      return t('上报：{text}', {text: ((e.body && e.body.description) || '').slice(0, 60)});
    }
    return t('事件 {id}：{action}', {id: e.case_id, action: e.action_label || (e.body && e.body.action)});
  }

  function renderList(entries) {
    var list = doc.getElementById('outbox-list');
    if (!list) { return; }
    while (list.firstChild) { list.removeChild(list.firstChild); }
    var empty = doc.getElementById('outbox-empty');
    if (empty) { empty.hidden = entries.length > 0; }
    entries.forEach(function (e) {
      var card = doc.createElement('li');
      card.className = 'card outbox-entry outbox-' + e.status;
      card.setAttribute('data-id', e.id);
      var h = doc.createElement('p');
      h.className = 'card-title';
      h.textContent = describe(e);
      card.appendChild(h);
      var when = doc.createElement('p');
      when.className = 'muted';
      when.textContent = t('记录于 {time}', {time: new Date(e.created).toLocaleString()}) + ' · ' +
        (e.status === 'pending' ? t('等待发送') : t('未被接受'));
      card.appendChild(when);
      if (e.status === 'refused') {
        var why = doc.createElement('p');
        why.className = 'outbox-reason';
        why.textContent = t('服务器答复：{reason}', {reason: e.error});
        card.appendChild(why);
        if (e.server && e.server.current_status) {
          var st = doc.createElement('p');
          st.textContent = t('事件当前状态：{status}', {status: e.server.current_status});
          card.appendChild(st);
        }
        var again = doc.createElement('button');
        again.type = 'button';
        again.className = 'btn';
        again.textContent = t('重新发送');
        again.addEventListener('click', function () {
          e.status = 'pending'; delete e.error; delete e.server;
          put(e).then(sync);
        });
        card.appendChild(again);
      }
      var del = doc.createElement('button');
      del.type = 'button';
      del.className = 'btn btn-link';
      del.textContent = t('删除');
      del.addEventListener('click', function () {
        if (global.confirm(t('确定删除这条记录？它不会再发送。'))) { remove(e.id).then(refresh); }
      });
      card.appendChild(del);
      list.appendChild(card);
    });
  }

  // ------------------------------------------------------------------ forms
  function notice(form, text, kind) {
    var box = doc.getElementById('outbox-notice');
    if (!box) {
      box = doc.createElement('div');
      box.id = 'outbox-notice';
      form.parentNode.insertBefore(box, form);
    }
    box.className = 'flash flash-' + (kind || 'info');
    box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    box.textContent = text;
  }

  function initReportForm() {
    var form = doc.getElementById('report-form');
    if (!form || !global.indexedDB) { return; }
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var v = function (name) { var el = form.elements[name]; return el ? el.value.trim() : ''; };
      var lon = parseFloat(v('lon')), lat = parseFloat(v('lat'));
      if (!isFinite(lon) || !isFinite(lat)) { notice(form, t('请在地图上选择位置。'), 'error'); return; }
      if (!v('category')) { notice(form, t('请选择事件类别。'), 'error'); return; }
      if (!v('description')) { notice(form, t('请填写事件描述。'), 'error'); return; }
      var body = {category: v('category'), description: v('description'),
                  location: {lon: lon, lat: lat, crs: 'wgs84'},
                  urgent: !!(form.elements.urgent && form.elements.urgent.checked)};
      if (v('address')) { body.location.address = v('address'); }
      var file = form.elements.photo && form.elements.photo.files && form.elements.photo.files[0];
      var entry = {id: newId(), user: userId(), kind: 'report', status: 'pending', created: Date.now(), body: body,
                   photo: file || null, photo_name: file ? file.name : null};
      var button = doc.getElementById('submit-report');
      if (button) { button.disabled = true; }
      put(entry).then(sync).then(function () {
        return all().then(function (entries) {
          var still = entries.filter(function (e) { return e.id === entry.id; })[0];
          var done = sent[entry.id];
          if (!still && done && done.case_id) {
            global.location.assign('/cases/' + done.case_id);
            return;
          }
          if (still && still.status === 'refused') {
            notice(form, t('上报未被接受：{reason}', {reason: still.error}), 'error');
          } else {
            notice(form, t('已保存到待发送箱，联网后自动发送。'), 'success');
            form.reset();
            var picked = doc.getElementById('picked');
            if (picked) { picked.textContent = ''; }
          }
          if (button) { button.disabled = false; }
        });
      });
    });
  }

  // A case action while offline goes to the outbox; online, the form is sent as usual.
  function initActionForms() {
    Array.prototype.forEach.call(doc.querySelectorAll('form[data-outbox="action"]'), function (form) {
      form.addEventListener('submit', function (ev) {
        if (!global.navigator || global.navigator.onLine !== false || !global.indexedDB) { return; }
        ev.preventDefault();
        var get = function (name) { var el = form.elements[name]; return el ? el.value : ''; };
        var body = {action: get('action')};
        if (get('comment')) { body.comment = get('comment'); }
        if (get('version')) { body.version = parseInt(get('version'), 10); }
        var entry = {id: newId(), user: userId(), kind: 'action', status: 'pending', created: Date.now(),
                     case_id: form.getAttribute('data-case-id'), action_label: form.getAttribute('data-label') || '',
                     body: body};
        put(entry).then(refresh).then(function () { notice(form, t('已保存到待发送箱，联网后自动发送。'), 'success'); });
      });
    });
  }

  function initLogout() {
    Array.prototype.forEach.call(doc.querySelectorAll('form[action="/logout"]'), function (form) {
      form.addEventListener('submit', function () {
        var sw = global.navigator && global.navigator.serviceWorker;
        if (sw && sw.controller) { sw.controller.postMessage({type: 'logout'}); }
      });
    });
  }

  function registerWorker() {
    var sw = global.navigator && global.navigator.serviceWorker;
    if (!sw || !userId()) { return; }
    sw.register('/sw.js', {scope: '/'}).catch(function () {});
  }

  function start() {
    registerWorker();
    initLogout();
    if (!global.indexedDB) { return; }
    initReportForm();
    initActionForms();
    var now = doc.getElementById('outbox-sync');
    if (now) { now.addEventListener('click', sync); }
    global.addEventListener('online', sync);
    var every = parseInt((doc.body && doc.body.getAttribute('data-outbox-seconds')) || '30', 10);
    global.setInterval(sync, Math.max(5, every) * 1000);
    sync();
  }

  global.GridmapOutbox = {sync: sync, all: all, refresh: refresh};
  if (doc.readyState === 'loading') { doc.addEventListener('DOMContentLoaded', start); } else { start(); }
})(window);
