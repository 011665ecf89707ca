// views.js — the traffic views: Overview (totals and uPlot charts), Breakdown
// (sortable table with CSV export), the request log (filters, cursor paging)
// and one request's detail. Each view is {title, mount(root, ctx)} and mount
// returns {refresh(), destroy()}; app.js supplies ctx. Adds to TR.views.
'use strict';
(function () {
  const TR = (window.TR = window.TR || {});
  const { h, replace, stat, card, empty, table, json, dl, badge, inline, loader } = TR.ui;
  const fmt = TR.fmt;
  const views = (TR.views = TR.views || {});

  const HOUR = 3600e3;
  const DAY = 24 * HOUR;

  /** Bucket size for a range: up to 6 h by minute, up to 14 days by hour, else by day. */
  function stepFor(from, to) {
    const span = to - from;
    return span <= 6 * HOUR ? 'minute' : span <= 14 * DAY ? 'hour' : 'day';
  }

  function selectBox(id, label, options, value, onChange) {
    const sel = h(
      'select',
      { id, onchange: (e) => onChange(e.target.value) },
      options.map(([v, text]) => h('option', { value: v }, text))
    );
    sel.value = value;
    return h('label', { class: 'field inline', for: id }, h('span', { class: 'field-label' }, label), sel);
  }

  const sum = (...xs) => {
    let any = false;
    let t = 0;
    for (const x of xs) {
      const n = fmt.num(x);
      if (n !== null) {
        any = true;
        t += n;
      }
    }
    return any ? t : null;
  };

  const groupLabel = (g) => (g === null || g === undefined || g === '' ? '(none)' : String(g));

  // ---- Overview ---------------------------------------------------------

  const OVERVIEW_BY = [['provider', 'Provider'], ['model', 'Model'], ['key', 'Key'], ['user', 'User']];
  const TOKEN_METRICS = [
    ['total', 'Prompt + completion'],
    ['prompt_tokens', 'Prompt'],
    ['completion_tokens', 'Completion'],
    ['cached_tokens', 'Cached'],
    ['reasoning_tokens', 'Reasoning'],
  ];

  function totalsTiles(t) {
    const lat = t.latency_ms || {};
    const ttft = t.ttft_ms || {};
    const rate = fmt.ratio(t.errors, t.requests);
    const tokens = sum(t.prompt_tokens, t.completion_tokens);
    const group = (title, ...stats) => h('section', { class: 'card tile-group' }, h('h2', { class: 'card-title' }, title), h('div', { class: 'stats' }, stats));
    return [
      group('Traffic',
        stat('total-requests', 'Requests', fmt.int(t.requests), t.requests),
        stat('total-errors', 'Errors', fmt.int(t.errors), t.errors),
        stat('total-error-rate', 'Error rate', fmt.pct(rate), rate)),
      group('Tokens',
        stat('total-tokens', 'Total', fmt.int(tokens), tokens),
        stat('total-prompt-tokens', 'Prompt', fmt.int(t.prompt_tokens), t.prompt_tokens),
        stat('total-completion-tokens', 'Completion', fmt.int(t.completion_tokens), t.completion_tokens),
        stat('total-cached-tokens', 'Cached', fmt.int(t.cached_tokens), t.cached_tokens),
        stat('total-reasoning-tokens', 'Reasoning', fmt.int(t.reasoning_tokens), t.reasoning_tokens)),
      group('Cost',
        stat('total-cost', 'USD', fmt.cost(t.cost_usd), t.cost_usd)),
      group('Latency',
        stat('total-latency-p50', 'p50', fmt.ms(lat.p50), lat.p50),
        stat('total-latency-p95', 'p95', fmt.ms(lat.p95), lat.p95),
        stat('total-latency-p99', 'p99', fmt.ms(lat.p99), lat.p99)),
      group('Time to first token',
        stat('total-ttft-p50', 'p50', fmt.ms(ttft.p50), ttft.p50),
        stat('total-ttft-p95', 'p95', fmt.ms(ttft.p95), ttft.p95)),
    ];
  }

  views.overview = {
    title: 'Overview',
    mount(root, ctx) {
      const byParam = ctx.params.get('by');
      const by = OVERVIEW_BY.some(([v]) => v === byParam) ? byParam : 'provider';
      let tokenMetric = 'total';
      let plots = [];
      let last = null;

      const tiles = h('div', { class: 'tiles', id: 'overview-totals' });
      const charts = h('div', { class: 'charts', id: 'overview-charts' });
      const stepNote = h('span', { class: 'muted', id: 'overview-step' });
      root.append(
        h('div', { class: 'toolbar' }, selectBox('overview-by', 'Group by', OVERVIEW_BY, by, (v) => ctx.setParams({ by: v })), stepNote,
          h('span', { class: 'muted hint' }, 'Drag across a chart to zoom to that time range.')),
        tiles,
        charts
      );

      const destroyPlots = () => {
        plots.forEach((p) => p.destroy());
        plots = [];
      };

      function chartCard(id, title, head) {
        const host = h('div', { class: 'chart-host' });
        const c = card(title, host, { class: 'card chart-card', id }, head);
        charts.appendChild(c);
        return host;
      }

      function drawCharts(d) {
        destroyPlots();
        replace(charts);
        const buckets = d.buckets || [];
        const series = d.series || [];
        const t = d.totals || {};
        const range = [fmt.num(d.from) || ctx.range().from, fmt.num(d.to) || ctx.range().to];
        if (!buckets.length || !(fmt.num(t.requests) > 0)) {
          charts.appendChild(empty('No requests in this range', 'Pick a longer time range, or send traffic through a data plane.', 'overview-empty'));
          return;
        }
        const len = buckets.length;
        const { groups, values } = TR.charts.topGroups(series, 'requests', 10, len);
        const onSelect = (a, b) => ctx.setRange(a, b);
        const stacked = (host, metricValues, value, axis) => {
          plots.push(TR.charts.timeChart(host, {
            buckets, range, stacked: true, value, axis, onSelect,
            series: groups.map((g) => ({ label: g.label, color: g.color, values: metricValues(g) })),
          }));
        };
        const lines = (host, defs, fallback) => {
          const lat = d.latency || {};
          const present = defs.filter(([key]) => (lat[key] || []).some((v) => fmt.num(v) !== null));
          if (!present.length) {
            host.appendChild(empty(fallback));
            return;
          }
          plots.push(TR.charts.timeChart(host, {
            buckets, range, value: fmt.ms, axis: (v) => fmt.compact(v) + ' ms', onSelect,
            series: present.map(([key, label, col, dash]) => ({ label, color: col, dash, values: lat[key] })),
          }));
        };

        stacked(chartCard('chart-requests', 'Requests by ' + (d.by || by)), (g) => values(g, 'requests'), fmt.int, fmt.compact);

        const errHost = chartCard('chart-errors', 'Errors by ' + (d.by || by));
        if (fmt.num(t.errors) > 0) stacked(errHost, (g) => values(g, 'errors'), fmt.int, fmt.compact);
        else errHost.appendChild(empty('No errors in this range'));

        const tokenSel = h('select', { id: 'tokens-metric', 'aria-label': 'Token kind' }, TOKEN_METRICS.map(([v, text]) => h('option', { value: v }, text)));
        tokenSel.value = tokenMetric;
        tokenSel.addEventListener('change', () => {
          tokenMetric = tokenSel.value;
          if (last) drawCharts(last);
        });
        const tokHost = chartCard('chart-tokens', 'Tokens by ' + (d.by || by), tokenSel);
        stacked(tokHost, (g) => (tokenMetric === 'total'
          ? values(g, 'prompt_tokens').map((v, i) => sum(v, values(g, 'completion_tokens')[i]))
          : values(g, tokenMetric)), fmt.int, fmt.compact);

        stacked(chartCard('chart-cost', 'Cost (USD) by ' + (d.by || by)), (g) => values(g, 'cost_usd'), fmt.cost, fmt.costAxis);

        lines(chartCard('chart-latency', 'Latency'), [
          ['p50', 'p50', '#3366cc'], ['p95', 'p95', '#f28e2b'], ['p99', 'p99', '#e15759'],
        ], 'No latency data in this range');
        lines(chartCard('chart-ttft', 'Time to first token'), [
          ['ttft_p50', 'TTFT p50', '#59a14f'], ['ttft_p95', 'TTFT p95', '#b07aa1'],
        ], 'No streamed requests in this range');
      }

      const load = loader(ctx, root, () => {
        const r = ctx.range();
        return ctx.get('overview', { step: stepFor(r.from, r.to), by }, r);
      }, (d) => {
        last = d;
        replace(tiles, totalsTiles(d.totals || {}));
        replace(stepNote, 'One point per ' + (d.step || stepFor(ctx.range().from, ctx.range().to)));
        drawCharts(d);
      });
      load();
      return { refresh: load, destroy: destroyPlots };
    },
  };

  // ---- Breakdown --------------------------------------------------------

  const BREAKDOWN_BY = [
    ['provider', 'Provider'], ['model', 'Model'], ['requested_model', 'Requested model'],
    ['key', 'Key'], ['user', 'User'], ['routing_mode', 'Routing mode'],
  ];
  // Which request-log filter a breakdown group links to.
  const FILTER_FOR = { provider: 'provider', model: 'model', key: 'key', user: 'user', routing_mode: 'routing_mode' };

  views.breakdown = {
    title: 'Breakdown',
    mount(root, ctx) {
      const byParam = ctx.params.get('by');
      const by = BREAKDOWN_BY.some(([v]) => v === byParam) ? byParam : 'provider';
      let sort = { key: 'requests', dir: 'desc' };
      let rows = [];
      const csv = h('a', { id: 'breakdown-csv', class: 'button', href: '#', download: 'breakdown-' + by + '.csv' }, 'CSV');
      const body = h('div', { id: 'breakdown' });
      root.append(h('div', { class: 'toolbar' }, selectBox('breakdown-by', 'Group by', BREAKDOWN_BY, by, (v) => ctx.setParams({ by: v })), h('span', { class: 'spacer' }), csv), body);

      const columns = [
        {
          key: 'group', label: BREAKDOWN_BY.find(([v]) => v === by)[1], class: 'group',
          fmt: (v) => (FILTER_FOR[by] && v !== null && v !== '' ? h('a', { href: ctx.href('requests', { [FILTER_FOR[by]]: v }), title: 'Requests with this ' + by }, groupLabel(v)) : groupLabel(v)),
        },
        { key: 'requests', label: 'Requests', num: true },
        { key: 'errors', label: 'Errors', num: true },
        { key: 'error_rate', label: 'Error rate', num: true, fmt: (v) => fmt.pct(v) },
        { key: 'prompt_tokens', label: 'Prompt tokens', num: true },
        { key: 'completion_tokens', label: 'Completion tokens', num: true },
        { key: 'cached_tokens', label: 'Cached tokens', num: true },
        { key: 'reasoning_tokens', label: 'Reasoning tokens', num: true },
        { key: 'cost_usd', label: 'Cost (USD)', num: true, fmt: (v) => fmt.cost(v) },
        { key: 'latency_p50_ms', label: 'Latency p50', num: true, fmt: (v) => fmt.ms(v) },
        { key: 'latency_p95_ms', label: 'Latency p95', num: true, fmt: (v) => fmt.ms(v) },
      ];

      function draw() {
        if (!rows.length) {
          replace(body, empty('No requests in this range', null, 'breakdown-empty'));
          return;
        }
        const total = (k) => sum(...rows.map((r) => r[k]));
        const foot = [
          'Total (' + fmt.int(rows.length) + ')', fmt.int(total('requests')), fmt.int(total('errors')),
          fmt.pct(fmt.ratio(total('errors'), total('requests'))), fmt.int(total('prompt_tokens')),
          fmt.int(total('completion_tokens')), fmt.int(total('cached_tokens')), fmt.int(total('reasoning_tokens')),
          fmt.cost(total('cost_usd')), '', '',
        ];
        replace(body, table(columns, rows, {
          id: 'breakdown-table', sort, foot,
          onSort: (s) => {
            sort = s;
            draw();
          },
          rowAttrs: (r) => ({ class: 'breakdown-row', dataset: { group: r.group === null || r.group === undefined ? '' : r.group } }),
        }));
      }

      const load = loader(ctx, root, () => {
        const r = ctx.range();
        csv.href = TR.api.url('breakdown', { from: r.from, to: r.to, by, format: 'csv' });
        return ctx.get('breakdown', { by }, r);
      }, (d) => {
        rows = (d.rows || []).map((r) => Object.assign({}, r, { error_rate: fmt.ratio(r.errors, r.requests) }));
        draw();
      });
      load();
      return { refresh: load };
    },
  };

  // ---- Request log ------------------------------------------------------

  const FILTERS = [
    { param: 'status', id: 'filter-status', label: 'Status', placeholder: 'ok, error or 429', list: ['ok', 'error', '400', '401', '403', '404', '429', '500', '502', '503', '504'] },
    { param: 'key', id: 'filter-key', label: 'Key', placeholder: 'key name' },
    { param: 'model', id: 'filter-model', label: 'Model', placeholder: 'model' },
    { param: 'provider', id: 'filter-provider', label: 'Provider', placeholder: 'provider' },
    { param: 'user', id: 'filter-user', label: 'User', placeholder: 'user' },
    { param: 'routing_mode', id: 'filter-routing', label: 'Routing', placeholder: 'routing mode' },
    { param: 'firewall', id: 'filter-firewall', label: 'Firewall', options: [['', 'Any or none'], ['any', 'Any verdict'], ['none', 'No verdict'], ['mask', 'Masked'], ['block', 'Blocked']] },
  ];

  function statusBadge(r) {
    const s = fmt.num(r.status);
    const ok = s !== null ? s >= 200 && s < 400 : r.status === 'ok';
    const text = r.status === null || r.status === undefined ? '?' : String(r.status);
    const parts = [r.completed === false
      ? badge(text + '!', ok ? 'warn' : 'error', { title: 'Incomplete: the answer stopped before its end' })
      : badge(text, ok ? 'ok' : 'error')];
    if (r.firewall && r.firewall !== 'none') parts.push(firewallBadge(r.firewall));
    return h('span', { class: 'badges' }, parts);
  }

  function firewallBadge(v) {
    if (v === null || v === undefined || v === '' || v === 'none') return fmt.DASH;
    const kind = v === 'block' ? 'error' : v === 'mask' ? 'warn' : 'muted';
    return badge(inline(v), kind);
  }

  views.requests = {
    title: 'Request log',
    mount(root, ctx) {
      const filters = {};
      for (const f of FILTERS) filters[f.param] = ctx.params.get(f.param) || '';
      const pages = [null]; // the cursor of each page seen so far
      let nextCursor = null;

      const inputs = FILTERS.map((f) => {
        const control = f.options
          ? h('select', { id: f.id, name: f.param }, f.options.map(([v, text]) => h('option', { value: v }, text)))
          : h('input', { id: f.id, name: f.param, type: 'text', placeholder: f.placeholder, autocomplete: 'off', list: f.list ? f.id + '-list' : null, spellcheck: 'false' });
        control.value = filters[f.param];
        return h('label', { class: 'field', for: f.id }, h('span', { class: 'field-label' }, f.label), control,
          f.list ? h('datalist', { id: f.id + '-list' }, f.list.map((v) => h('option', { value: v }))) : null);
      });
      const form = h('form', { class: 'filters card', id: 'filter-form', autocomplete: 'off' }, inputs,
        h('div', { class: 'filter-buttons' },
          h('button', { type: 'submit', id: 'filter-apply', class: 'primary' }, 'Apply'),
          h('button', { type: 'button', id: 'filter-clear' }, 'Clear')));
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        const next = {};
        for (const f of FILTERS) next[f.param] = form.elements[f.param].value.trim();
        if (!ctx.setParams(next)) restart(); // same filters: reload from the first page
      });
      form.querySelector('#filter-clear').addEventListener('click', () => {
        const next = {};
        for (const f of FILTERS) next[f.param] = '';
        if (!ctx.setParams(next)) {
          for (const f of FILTERS) form.elements[f.param].value = '';
          restart();
        }
      });

      const body = h('div', { id: 'requests' });
      const pageInfo = h('span', { class: 'muted', id: 'page-info' });
      const first = h('button', { type: 'button', id: 'first-page', onclick: () => { pages.length = 1; load(); } }, '\u00AB First page');
      const prev = h('button', { type: 'button', id: 'prev-page', onclick: () => { if (pages.length > 1) pages.pop(); load(); } }, '\u2039 Previous');
      const next = h('button', { type: 'button', id: 'next-page', onclick: () => { if (nextCursor) { pages.push(nextCursor); load(); } } }, 'Next page \u203A');
      const pager = h('div', { class: 'pager' }, first, prev, pageInfo, next);
      root.append(form, body, pager);

      const open = (id) => ctx.go('requests/' + encodeURIComponent(id));
      const columns = [
        { key: 'unix_ms', label: 'Time', fmt: (v, r) => h('a', { href: ctx.href('requests/' + encodeURIComponent(r.id)), class: 'nowrap', title: fmt.time(v) }, fmt.timeShort(v)) },
        { key: 'status', label: 'Status', title: 'HTTP status; ! marks an incomplete answer, then any firewall action', fmt: (v, r) => statusBadge(r) },
        { key: 'key', label: 'Key' },
        { key: 'user', label: 'User' },
        {
          key: 'model', label: 'Provider / model',
          fmt: (v, r) => h('span', { title: r.requested_model && r.requested_model !== v ? 'Requested ' + r.requested_model : null },
            h('span', { class: 'muted' }, inline(r.provider) + '/'), inline(v),
            r.requested_model && r.requested_model !== v ? h('span', { class: 'muted small block' }, 'asked ' + r.requested_model) : null),
        },
        { key: 'routing_mode', label: 'Routing', fmt: (v, r) => h('span', null, inline(v), fmt.num(r.attempts) > 1 ? badge('\u00D7' + r.attempts, 'warn', { title: r.attempts + ' attempts' }) : null) },
        { key: 'prompt_tokens', label: 'Tokens', title: 'Prompt / completion tokens', num: true, fmt: (v, r) => fmt.int(v) + ' / ' + fmt.int(r.completion_tokens) },
        { key: 'cost_usd', label: 'Cost', num: true, fmt: (v) => fmt.cost(v) },
        { key: 'latency_ms', label: 'Latency', num: true, fmt: (v) => fmt.ms(v) },
        { key: 'ttft_ms', label: 'TTFT', num: true, fmt: (v) => fmt.ms(v) },
      ];

      function draw(d) {
        const rows = d.rows || [];
        nextCursor = d.next_cursor === undefined ? null : d.next_cursor;
        const filtered = FILTERS.some((f) => filters[f.param]);
        if (!rows.length) {
          replace(body, empty(pages.length > 1 ? 'No more requests' : filtered ? 'No requests match these filters in this range' : 'No requests in this range', null, 'requests-empty'));
        } else {
          const t = table(columns, rows, {
            id: 'requests-table',
            rowAttrs: (r) => ({
              class: 'request-row' + (fmt.num(r.status) !== null && (r.status < 200 || r.status >= 400) ? ' row-error' : ''),
              dataset: { id: r.id },
              tabindex: '0',
              onclick: (e) => {
                if (e.target.closest('a')) return; // the link navigates by itself
                open(r.id);
              },
              onkeydown: (e) => {
                if (e.key === 'Enter') open(r.id);
              },
            }),
          });
          replace(body, t);
        }
        next.hidden = !nextCursor;
        first.hidden = pages.length <= 1;
        prev.hidden = pages.length <= 2;
        replace(pageInfo, rows.length ? 'Page ' + pages.length + ' \u00B7 ' + fmt.int(rows.length) + ' rows' : '');
      }

      const load = loader(ctx, root, () => ctx.get('requests', Object.assign({ limit: 50, cursor: pages[pages.length - 1] || '' }, filters)), draw);
      function restart() {
        pages.length = 1;
        load();
      }
      next.hidden = true;
      first.hidden = true;
      prev.hidden = true;
      load();
      return { refresh: load };
    },
  };

  // ---- Request detail ---------------------------------------------------

  const DETAIL_FIELDS = [
    ['id', 'ID'], ['request_id', 'Request ID'], ['unix_ms', 'Time', (v) => fmt.time(v) + ' (' + inline(v) + ')'],
    ['status', 'Status'], ['completed', 'Completed', fmt.bool], ['stream', 'Stream', fmt.bool],
    ['key', 'Key'], ['user', 'User'], ['provider', 'Provider'], ['model', 'Model'], ['requested_model', 'Requested model'],
    ['routing_mode', 'Routing mode'], ['attempts', 'Attempts', fmt.int],
    ['prompt_tokens', 'Prompt tokens', fmt.int], ['completion_tokens', 'Completion tokens', fmt.int],
    ['cached_tokens', 'Cached tokens', fmt.int], ['reasoning_tokens', 'Reasoning tokens', fmt.int],
    ['cost_usd', 'Cost (USD)', fmt.cost], ['latency_ms', 'Latency', fmt.ms], ['ttft_ms', 'Time to first token', fmt.ms],
    ['firewall', 'Firewall'],
  ];
  const DETAIL_SECTIONS = ['metadata', 'routing', 'attempt_log', 'firewall_verdicts', 'limits', 'bodies'];

  // Why routing chose what it chose, then every attempt in order (failed ones first).
  function routingDetail(routing, log) {
    const r = routing || {};
    const runners = Array.isArray(r.runners_up) && r.runners_up.length ? r.runners_up.join(', ') : fmt.DASH;
    const items = [
      ['Mode', inline(r.mode), 'mode'], ['Chosen', r.chosen ? inline(r.chosen) : fmt.DASH, 'chosen'],
      ['Reason', r.reason ? inline(r.reason) : fmt.DASH, 'reason'], ['Runners-up', runners, 'runners_up'],
    ];
    const attempts = Array.isArray(log) ? log : [];
    const outcome = (v) => (v === 'answered' ? badge('answered', 'ok') : badge(inline(v), 'error'));
    return h('div', { id: 'request-routing' }, dl(items, 'request-routing-dl'),
      attempts.length
        ? table([
          { key: 'n', label: '#', num: true, fmt: (v, row) => String(attempts.indexOf(row) + 1) },
          { key: 'provider', label: 'Provider' }, { key: 'model', label: 'Model' },
          { key: 'outcome', label: 'Outcome', fmt: outcome },
          { key: 'error', label: 'Error / status', fmt: (v, row) => inline(v === undefined ? row.status : v) },
          { key: 'ms', label: 'At', num: true, fmt: (v) => fmt.ms(v), title: 'Milliseconds since the request arrived' },
        ], attempts, { id: 'request-attempts', rowAttrs: (row) => ({ class: 'attempt-row', dataset: { outcome: row.outcome || '' } }) })
        : h('div', { id: 'request-attempts' }, empty('No provider was tried')));
  }

  // The logged request and answer (keys with body logging; masked by the firewall; admins only).
  function bodiesDetail(bodies) {
    if (!bodies) return h('div', { id: 'request-bodies' }, empty('Not logged', 'Turn on body logging for the key to keep its bodies for 7 days.'));
    if (bodies.hidden) return h('div', { id: 'request-bodies' }, empty(inline(bodies.hidden)));
    return h('div', { id: 'request-bodies' },
      h('div', { class: 'field-label' }, 'Request (as sent, after the firewall)'), json(bodies.request, 'request-body'),
      h('div', { class: 'field-label' }, 'Answer (as the client got it)'), json(bodies.response, 'response-body'));
  }

  function limitsDetail(limits) {
    const l = limits || {};
    return h('div', { id: 'request-limits' },
      l.refused ? h('div', { class: 'banner error' }, 'Refused by a limit before any provider was tried (429).') : null,
      l.key ? json(l.key, 'request-key-limits') : empty('The key has no limits'));
  }

  views.request = {
    title: 'Request',
    mount(root, ctx) {
      const id = ctx.route[1] || '';
      const title = h('h2', { class: 'page-sub' }, 'Request ' + id);
      const body = h('div', { class: 'detail' });
      root.append(h('div', { class: 'toolbar' }, h('a', { href: ctx.href('requests'), id: 'back-to-log', class: 'button' }, '\u2190 Request log'), title), body);

      const load = loader(ctx, root, () => ctx.get('requests/' + encodeURIComponent(id)), (d) => {
        replace(title, 'Request ' + (d.request_id || d.id || id));
        const known = new Set(DETAIL_FIELDS.map(([k]) => k).concat(DETAIL_SECTIONS));
        const items = DETAIL_FIELDS.map(([k, label, f]) => [label, d[k] === undefined ? fmt.DASH : f ? f(d[k]) : inline(d[k]), k]);
        for (const [k, v] of Object.entries(d)) {
          if (known.has(k)) continue;
          items.push([k.replace(/_/g, ' '), v !== null && typeof v === 'object' ? json(v) : inline(v), k]);
        }
        const verdicts = Array.isArray(d.firewall_verdicts) ? d.firewall_verdicts : [];
        const section = (sid, value, none) => (value === null || value === undefined || (typeof value === 'object' && !Array.isArray(value) && !Object.keys(value).length)
          ? h('div', { id: sid }, empty(none))
          : json(value, sid));
        replace(body,
          h('div', { class: 'detail-grid' },
            card('Request', dl(items, 'request-detail')),
            h('div', { class: 'detail-side' },
              card('Firewall verdicts', verdicts.length
                ? table([
                  { key: 'rule', label: 'Rule' }, { key: 'detector', label: 'Detector' },
                  { key: 'action', label: 'Action', fmt: (v) => firewallBadge(v) }, { key: 'direction', label: 'Direction' },
                  { key: 'count', label: 'Count', num: true },
                ], verdicts, { id: 'request-firewall' })
                : h('div', { id: 'request-firewall' }, empty('No firewall verdicts'))),
              card('Routing', routingDetail(d.routing, d.attempt_log)),
              card('Limits', limitsDetail(d.limits)),
              card('Metadata', json(d.metadata === undefined ? {} : d.metadata, 'request-metadata')),
              card('Bodies', bodiesDetail(d.bodies)))));
      });
      load();
      return { refresh: load };
    },
  };

  TR.stepFor = stepFor;
})();
