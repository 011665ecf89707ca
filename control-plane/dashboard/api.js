// api.js — the dashboard's JSON API client (relative `api/...` URLs, the CSRF
// header on writes, `{"error":{...}}` bodies turned into ApiError) and the
// number/time formatting used by every view. Defines window.TR.api and TR.fmt.
'use strict';
(function () {
  const TR = (window.TR = window.TR || {});

  /** An error answer from the API (or a network failure, status 0). */
  class ApiError extends Error {
    constructor(status, message, type, code) {
      super(message);
      this.name = 'ApiError';
      this.status = status;
      this.type = type || '';
      this.code = code || '';
    }
  }

  const state = {
    csrf: null,
    onUnauthorized: null, // called on a 401 from anything but the sign-in calls
    inflight: 0,
  };

  /** `?a=1&b=2` from an object, leaving out null, undefined and '' values. */
  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (v === undefined || v === null || v === '') continue;
      q.set(k, String(v));
    }
    const s = q.toString();
    return s ? '?' + s : '';
  }

  /** A relative URL under api/, so a reverse proxy may mount the dashboard on a prefix. */
  function url(path, params) {
    return 'api/' + path.replace(/^\/+/, '') + query(params);
  }

  function busy(delta) {
    state.inflight = Math.max(0, state.inflight + delta);
    document.documentElement.classList.toggle('busy', state.inflight > 0);
  }

  async function request(method, path, opts) {
    const { params, body, signal, quiet401 } = opts || {};
    const headers = { accept: 'application/json' };
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store', signal };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (method !== 'GET' && method !== 'HEAD' && state.csrf) headers['x-csrf-token'] = state.csrf;

    busy(1);
    let res;
    let text;
    try {
      res = await fetch(url(path, params), init);
      text = await res.text();
    } catch (e) {
      if (e && e.name === 'AbortError') throw e;
      throw new ApiError(0, 'Network error: the control plane did not answer (' + (e && e.message) + ')', 'network_error');
    } finally {
      busy(-1);
    }

    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (_) {
        data = null;
      }
    }
    if (!res.ok) {
      const e = data && typeof data === 'object' ? data.error : null;
      const message = (e && e.message) || (res.status + ' ' + (res.statusText || 'error')).trim();
      const err = new ApiError(res.status, message, e && e.type, e && e.code);
      if (res.status === 401 && !quiet401 && state.onUnauthorized) state.onUnauthorized(err);
      throw err;
    }
    if (text && data === null) {
      throw new ApiError(res.status, 'The server answered ' + path + ' with something that is not JSON', 'invalid_response');
    }
    return data === null ? {} : data;
  }

  TR.ApiError = ApiError;
  TR.api = {
    state,
    url,
    query,
    get: (path, params, signal, quiet401) => request('GET', path, { params, signal, quiet401 }),
    post: (path, body, opts) => request('POST', path, Object.assign({ body: body === undefined ? {} : body }, opts)),
    put: (path, body, opts) => request('PUT', path, Object.assign({ body }, opts)),
    del: (path, opts) => request('DELETE', path, opts || {}),
    setCsrf(token) {
      state.csrf = token || null;
    },
    isAbort: (e) => !!e && e.name === 'AbortError',
  };

  // ---- formatting -------------------------------------------------------
  // Numbers use en-US grouping everywhere (1,234,567) so values read the same
  // for every operator and browser test; dates use the browser's locale and
  // time zone.
  const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  const costFmt = new Intl.NumberFormat('en-US', { minimumFractionDigits: 4, maximumFractionDigits: 4 });
  const dec1 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
  const DASH = '\u2014';

  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  const num = (v) => (isNum(v) ? v : typeof v === 'string' && v.trim() !== '' && Number.isFinite(+v) ? +v : null);

  function int(v) {
    const n = num(v);
    return n === null ? DASH : intFmt.format(Math.round(n));
  }
  function cost(v) {
    const n = num(v);
    if (n === null) return DASH;
    return (n < 0 ? '-$' : '$') + costFmt.format(Math.abs(n));
  }
  function ms(v) {
    const n = num(v);
    if (n === null) return DASH;
    return (Math.abs(n) < 10 ? dec1.format(n) : intFmt.format(Math.round(n))) + ' ms';
  }
  /** A fraction (0.0123) as a percentage (1.23%). */
  function pct(v, digits) {
    const n = num(v);
    if (n === null) return DASH;
    return (n * 100).toFixed(digits === undefined ? 2 : digits) + '%';
  }
  function ratio(a, b) {
    const x = num(a);
    const y = num(b);
    return x === null || y === null || y === 0 ? null : x / y;
  }
  /** Unix milliseconds as local date and time. */
  function time(v) {
    const n = num(v);
    if (n === null) return DASH;
    const d = new Date(n);
    if (Number.isNaN(d.getTime())) return String(v);
    return d.toLocaleString(undefined, {
      year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
  }
  /** Unix milliseconds as a short local time for dense tables: the time of day, with the date unless it is today. */
  function timeShort(v) {
    const n = num(v);
    if (n === null) return DASH;
    const d = new Date(n);
    if (Number.isNaN(d.getTime())) return String(v);
    const today = new Date().toDateString() === d.toDateString();
    const opts = { hour: '2-digit', minute: '2-digit', second: '2-digit' };
    if (!today) Object.assign(opts, { month: 'short', day: '2-digit' });
    return d.toLocaleString(undefined, opts);
  }
  /** 1234 → 1.2k, for chart axes. */
  function compact(v) {
    const n = num(v);
    if (n === null) return '';
    const a = Math.abs(n);
    if (a >= 1e9) return dec1.format(n / 1e9) + 'B';
    if (a >= 1e6) return dec1.format(n / 1e6) + 'M';
    if (a >= 1e3) return dec1.format(n / 1e3) + 'k';
    return a >= 1 || a === 0 ? dec1.format(n) : String(+n.toPrecision(2));
  }
  function costAxis(v) {
    const n = num(v);
    if (n === null) return '';
    const a = Math.abs(n);
    if (a >= 1000) return '$' + compact(n);
    if (a >= 1 || a === 0) return '$' + n.toFixed(2).replace(/\.00$/, '');
    return '$' + String(+n.toPrecision(2));
  }
  /** datetime-local input value (local time, minutes) from unix ms, and back. */
  function toLocalInput(msValue) {
    const d = new Date(msValue);
    const p = (x) => String(x).padStart(2, '0');
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' + p(d.getHours()) + ':' + p(d.getMinutes());
  }
  function fromLocalInput(value) {
    if (!value) return null;
    const t = new Date(value).getTime(); // a date-time without an offset is local time
    return Number.isNaN(t) ? null : t;
  }
  function bool(v) {
    return v === true ? 'yes' : v === false ? 'no' : v === null || v === undefined ? DASH : String(v);
  }

  TR.fmt = { DASH, num, isNum, int, cost, ms, pct, ratio, time, timeShort, compact, costAxis, toLocalInput, fromLocalInput, bool };
})();
