// app.js — the dashboard shell: sign-in (admin token or user + password),
// the hash router (#/overview?range=24h...), the header's time range picker
// and auto-refresh, the error banner, and the ctx object handed to each view
// in views.js / views-admin.js. Loaded last; starts everything.
'use strict';
(function () {
  const TR = window.TR;
  const { h, replace } = TR.ui;
  const fmt = TR.fmt;
  const api = TR.api;
  const $ = (sel) => document.querySelector(sel);

  const MINUTE = 60e3;
  const HOUR = 60 * MINUTE;
  const DAY = 24 * HOUR;
  const PRESETS = { '1h': HOUR, '24h': DAY, '7d': 7 * DAY, '30d': 30 * DAY };
  const DEFAULT_RANGE = '24h';
  const REFRESH_MS = 10e3;

  // the first part of the hash path; #/requests/<id> shows the `request` view
  const ROUTES = new Set(['overview', 'breakdown', 'requests', 'providers', 'keys', 'config']);

  const app = {
    me: null, // {user, role, csrf, auth}
    current: null, // {handle, ctx, abort}
    timer: null,
    lastHash: null,
  };

  // ---- error banner -----------------------------------------------------

  function showError(message) {
    replace($('#error-message'), message || 'Something went wrong');
    $('#error-banner').hidden = false;
  }
  function hideError() {
    $('#error-banner').hidden = true;
    replace($('#error-message'));
  }

  // ---- hash: #/route/part?query -----------------------------------------

  function parseHash() {
    let raw = location.hash.replace(/^#/, '');
    if (!raw.startsWith('/')) raw = '/overview' + (raw.startsWith('?') ? raw : '');
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
    const parts = path.split('/').filter(Boolean).map((p) => {
      try {
        return decodeURIComponent(p);
      } catch (_) {
        return p;
      }
    });
    return { parts, params };
  }

  function hashFor(route, params) {
    const s = params.toString();
    return '#/' + route + (s ? '?' + s : '');
  }

  /** The range from the hash: a preset relative to now, or custom from/to. */
  function rangeFrom(params) {
    const r = params.get('range');
    if (r === 'custom') {
      const from = Number(params.get('from'));
      const to = Number(params.get('to'));
      if (Number.isFinite(from) && Number.isFinite(to) && to > from) return { from, to, preset: 'custom' };
    }
    const preset = PRESETS[r] ? r : DEFAULT_RANGE;
    const to = Date.now();
    return { from: to - PRESETS[preset], to, preset };
  }

  function currentRoute() {
    const { parts, params } = parseHash();
    return { parts, params, route: parts.join('/') };
  }

  /** Merges `changes` into the hash query ('' or null removes); true when the hash changed. */
  function setParams(changes, routeOverride) {
    const { parts, params } = parseHash();
    for (const [k, v] of Object.entries(changes)) {
      if (v === null || v === undefined || v === '') params.delete(k);
      else params.set(k, String(v));
    }
    const next = hashFor(routeOverride || parts.join('/') || 'overview', params);
    if (next === location.hash) return false;
    location.hash = next;
    return true;
  }

  /** Keeps the range and filters when moving between views. */
  function hrefFor(route, extra) {
    const { params } = parseHash();
    for (const [k, v] of Object.entries(extra || {})) {
      if (v === null || v === undefined || v === '') params.delete(k);
      else params.set(k, String(v));
    }
    return hashFor(route, params);
  }

  // ---- header: range picker, refresh, user ------------------------------

  function syncHeader(params) {
    const r = rangeFrom(params);
    const sel = $('#range');
    sel.value = r.preset;
    const custom = r.preset === 'custom';
    $('#range-custom').hidden = !custom;
    if (custom) {
      $('#range-from').value = fmt.toLocalInput(r.from);
      $('#range-to').value = fmt.toLocalInput(r.to);
    }
  }

  function wireHeader() {
    $('#range').addEventListener('change', (e) => {
      const v = e.target.value;
      if (v === 'custom') {
        const r = rangeFrom(parseHash().params);
        $('#range-from').value = fmt.toLocalInput(r.from);
        $('#range-to').value = fmt.toLocalInput(r.to);
        $('#range-custom').hidden = false;
        $('#range-from').focus();
        return;
      }
      if (!setParams({ range: v, from: null, to: null })) syncHeader(parseHash().params);
    });
    $('#range-custom').addEventListener('submit', (e) => {
      e.preventDefault();
      const from = fmt.fromLocalInput($('#range-from').value);
      const to = fmt.fromLocalInput($('#range-to').value);
      if (from === null || to === null) return showError('Enter both a start and an end for the custom range');
      if (to <= from) return showError('The end of the range must be after its start');
      hideError();
      setRange(from, to);
    });
    $('#refresh-now').addEventListener('click', () => refresh());
    const auto = $('#auto-refresh');
    auto.checked = loadAutoRefresh();
    auto.addEventListener('change', () => {
      saveAutoRefresh(auto.checked);
      schedule();
    });
    $('#error-dismiss').addEventListener('click', hideError);
    $('#sign-out').addEventListener('click', signOut);
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && $('#auto-refresh').checked) refresh();
    });
  }

  function setRange(from, to) {
    if (!(to > from)) return;
    if (!setParams({ range: 'custom', from: Math.round(from), to: Math.round(to) })) refresh();
  }

  function loadAutoRefresh() {
    try {
      return localStorage.getItem('tokenrouter.autoRefresh') === '1';
    } catch (_) {
      return false;
    }
  }
  function saveAutoRefresh(on) {
    try {
      localStorage.setItem('tokenrouter.autoRefresh', on ? '1' : '0');
    } catch (_) {
      // storage may be disabled; the toggle still works for this page
    }
  }

  function schedule() {
    clearInterval(app.timer);
    app.timer = null;
    if ($('#auto-refresh').checked && app.me) {
      app.timer = setInterval(() => {
        if (!document.hidden) refresh();
      }, REFRESH_MS);
    }
  }

  function refresh() {
    const cur = app.current;
    if (!cur || !cur.handle) return;
    syncHeader(cur.ctx.params);
    if (typeof cur.handle.refresh === 'function') cur.handle.refresh();
  }

  function showUser(me) {
    replace($('#user-name'), me.user ? String(me.user) : me.auth === 'none' ? 'local' : '');
    replace($('#user-role'), me.role ? String(me.role) : '');
    $('#user-role').hidden = !me.role;
    $('#sign-out').hidden = me.auth === 'none';
    $('#auth-banner').hidden = me.auth !== 'none';
    document.documentElement.classList.toggle('read-only', !canWrite(me));
  }

  const canWrite = (me) => !!me && (me.role ? me.role !== 'viewer' : me.auth === 'none');

  // ---- views ------------------------------------------------------------

  function unmount() {
    const cur = app.current;
    app.current = null;
    if (!cur) return;
    cur.dead = true;
    cur.abort.abort();
    try {
      if (cur.handle && cur.handle.destroy) cur.handle.destroy();
    } catch (e) {
      console.error(e);
    }
  }

  function render() {
    if (!app.me) return;
    const { parts, params } = currentRoute();
    const name = parts[0];
    if (!ROUTES.has(name)) {
      location.replace(hashFor('overview', params));
      return;
    }
    const viewName = name === 'requests' && parts.length > 1 ? 'request' : name;
    const view = TR.views[viewName];
    unmount();
    hideError();

    for (const a of document.querySelectorAll('#nav a')) {
      const active = a.dataset.route === name;
      a.classList.toggle('active', active);
      if (active) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
      a.href = hrefFor(a.dataset.route);
    }
    syncHeader(params);
    replace($('#page-title'), view.title);
    document.title = view.title + ' \u00B7 TokenRouter';

    const root = h('div', { class: 'view view-' + viewName, id: 'view-' + viewName });
    root.dataset.state = 'loading';
    replace($('#view'), root);

    const abort = new AbortController();
    const entry = { dead: false, abort, handle: null, ctx: null };
    const ctx = {
      route: parts,
      params,
      me: app.me,
      canWrite: canWrite(app.me),
      dead: () => entry.dead,
      range: () => rangeFrom(params),
      /** GET api/<path> with from/to (unix ms) of the current range added. */
      get: (path, extra, range) => {
        const r = range || rangeFrom(params);
        return api.get(path, Object.assign({ from: r.from, to: r.to }, extra || {}), abort.signal);
      },
      send: (method, path, body) => (method === 'DELETE' ? api.del(path) : method === 'PUT' ? api.put(path, body) : api.post(path, body)),
      ok: () => {
        if (!entry.dead) hideError();
      },
      fail: (e) => {
        if (entry.dead || api.isAbort(e)) return;
        if (e && e.status === 401) return; // the sign-in screen takes over
        showError((e && e.message) || String(e));
      },
      setParams: (changes) => setParams(changes),
      setRange,
      href: hrefFor,
      go: (route, extra) => {
        location.hash = hrefFor(route, extra);
      },
    };
    entry.ctx = ctx;
    app.current = entry;
    try {
      entry.handle = view.mount(root, ctx) || {};
    } catch (e) {
      console.error(e);
      showError('This view failed to render: ' + (e && e.message));
    }
  }

  // ---- sign-in ----------------------------------------------------------

  function showApp(me) {
    app.me = me;
    api.setCsrf(me.csrf);
    $('#signin-screen').hidden = true;
    $('#app').hidden = false;
    showUser(me);
    render();
    schedule();
  }

  function showSignIn(message, kind) {
    unmount();
    app.me = null;
    api.setCsrf(null);
    clearInterval(app.timer);
    app.timer = null;
    $('#app').hidden = true;
    $('#signin-screen').hidden = false;
    const err = $('#signin-error');
    err.className = 'banner ' + (kind || 'error');
    err.hidden = !message;
    replace(err, message || '');
    const mode = document.querySelector('#signin-form').dataset.mode;
    const first = mode === 'password' ? $('#signin-user') : $('#signin-token');
    first.focus();
  }

  function setSignInMode(mode) {
    const form = $('#signin-form');
    form.dataset.mode = mode;
    const token = mode === 'token';
    $('#signin-token-fields').hidden = !token;
    $('#signin-password-fields').hidden = token;
    $('#signin-token').required = token;
    $('#signin-user').required = !token;
    $('#signin-password').required = !token;
    $('#signin-mode-token').setAttribute('aria-pressed', String(token));
    $('#signin-mode-password').setAttribute('aria-pressed', String(!token));
    $('#signin-mode-token').classList.toggle('active', token);
    $('#signin-mode-password').classList.toggle('active', !token);
  }

  function wireSignIn() {
    setSignInMode('token');
    $('#signin-mode-token').addEventListener('click', () => setSignInMode('token'));
    $('#signin-mode-password').addEventListener('click', () => setSignInMode('password'));
    $('#signin-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const form = e.currentTarget;
      const body = form.dataset.mode === 'password'
        ? { user: $('#signin-user').value.trim(), password: $('#signin-password').value }
        : { token: $('#signin-token').value.trim() };
      const button = $('#signin-submit');
      button.disabled = true;
      $('#signin-error').hidden = true;
      if (!body.token && !(body.user && body.password)) {
        button.disabled = false;
        replace($('#signin-error'), 'Enter ' + (body.user === undefined ? 'the admin token' : 'a user and a password'));
        $('#signin-error').className = 'banner error';
        $('#signin-error').hidden = false;
        return;
      }
      try {
        const me = await api.post('session', body, { quiet401: true });
        $('#signin-token').value = '';
        $('#signin-password').value = '';
        showApp(Object.assign({ auth: 'session' }, me));
      } catch (err) {
        const box = $('#signin-error');
        box.className = 'banner error';
        replace(box, err.message || 'Wrong token or password');
        box.hidden = false;
      } finally {
        button.disabled = false;
      }
    });
  }

  async function signOut() {
    try {
      await api.del('session', { quiet401: true });
    } catch (e) {
      if (e.status !== 401) {
        showError('Sign-out failed: ' + e.message);
        return;
      }
    }
    showSignIn('Signed out.', 'info');
  }

  async function boot() {
    wireHeader();
    wireSignIn();
    api.state.onUnauthorized = () => {
      if (app.me && app.me.auth !== 'none') showSignIn('Your session has ended: sign in again.');
    };
    window.addEventListener('hashchange', () => {
      if (location.hash === app.lastHash) return;
      app.lastHash = location.hash;
      render();
    });
    app.lastHash = location.hash;
    try {
      const me = await api.get('me', null, undefined, true);
      $('#boot').hidden = true;
      showApp(me || {});
    } catch (e) {
      if (e.status === 401) {
        $('#boot').hidden = true;
        showSignIn('');
      } else {
        $('#boot').hidden = false;
        replace($('#boot'),
          h('div', { class: 'banner error' }, 'The dashboard could not reach the control plane: ' + e.message),
          h('button', { type: 'button', onclick: () => location.reload() }, 'Retry'));
      }
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
