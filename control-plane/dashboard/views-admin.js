// views-admin.js — the fleet and settings views: Providers (one card per data
// plane with breaker state and live signals), Keys (list by prefix; for admins
// create, with the secret shown once, and disable) and the read-only
// Configuration. Same {title, mount(root, ctx)} shape as views.js.
'use strict';
(function () {
  const TR = (window.TR = window.TR || {});
  const { h, replace, card, empty, table, badge, inline, genericTable, dl, loader } = TR.ui;
  const fmt = TR.fmt;
  const views = (TR.views = TR.views || {});

  const connected = (v) => (v ? badge('connected', 'ok') : badge('disconnected', 'error'));

  // ---- Providers --------------------------------------------------------

  const BREAKER = { closed: ['closed', 'ok'], open: ['open', 'error'], half_open: ['half-open', 'warn'] };

  function headroomCell(v) {
    const n = fmt.num(v);
    if (n === null) return fmt.DASH;
    const pct = Math.max(0, Math.min(1, n));
    const bar = h('span', { class: 'meter-fill' + (pct < 0.1 ? ' low' : pct < 0.3 ? ' mid' : '') });
    bar.style.width = (pct * 100).toFixed(1) + '%';
    return h('span', { class: 'meter-wrap' }, h('span', { class: 'meter', title: fmt.pct(n, 1) + ' of the rate limit left' }, bar), fmt.pct(n, 0));
  }

  views.providers = {
    title: 'Providers',
    mount(root, ctx) {
      const body = h('div', { class: 'planes', id: 'data-planes' });
      root.append(body);
      const columns = [
        { key: 'name', label: 'Provider', class: 'group' },
        { key: 'kind', label: 'Kind' },
        { key: 'model', label: 'Model', fmt: (v) => (v ? inline(v) : h('span', { class: 'muted' }, 'no traffic yet')) },
        { key: 'credential', label: 'Credential', fmt: (v, r) => h('span', null, v ? inline(v) : fmt.DASH, r.cooling ? badge('cooling', 'warn', { title: 'Resting after a 429' }) : null) },
        {
          key: 'breaker', label: 'Breaker',
          fmt: (v) => {
            const [text, kind] = BREAKER[v] || [inline(v), 'muted'];
            return badge(text, kind, { class: 'badge badge-' + kind + ' breaker', dataset: { breaker: v === null || v === undefined ? '' : v } });
          },
        },
        { key: 'latency_ms', label: 'Latency', num: true, fmt: (v) => fmt.ms(v), title: 'Moving average of recent requests' },
        { key: 'ttft_ms', label: 'TTFT', num: true, fmt: (v) => fmt.ms(v) },
        { key: 'ttft_p95_ms', label: 'TTFT p95', num: true, fmt: (v) => fmt.ms(v), title: 'Of the last 64 streams' },
        { key: 'error_rate', label: 'Error rate', num: true, fmt: (v) => fmt.pct(v) },
        { key: 'headroom', label: 'Rate-limit headroom', num: true, fmt: headroomCell, title: 'Remaining / limit, from the provider\u2019s rate-limit headers' },
        { key: 'samples', label: 'Samples', num: true, fmt: (v) => fmt.int(v) },
      ];
      const load = loader(ctx, root, () => ctx.get('providers'), (d) => {
        const planes = d.data_planes || [];
        if (!planes.length) {
          replace(body, empty('No data planes have connected', 'Start a data plane pointed at this control plane.', 'providers-empty'));
          return;
        }
        replace(body, planes.map((p) => {
          const providers = p.providers || [];
          const open = providers.filter((x) => x.breaker === 'open').length;
          const seen = fmt.num(p.signals_unix_ms) || fmt.num(p.last_seen_unix_ms);
          const head = h('div', { class: 'card-meta' },
            seen !== null ? h('span', { class: 'muted small', title: fmt.time(seen) }, (p.signals_unix_ms ? 'signals from ' : 'last seen ') + fmt.timeShort(seen)) : null,
            p.last_error ? badge('refused a snapshot', 'error', { title: inline(p.last_error) }) : null,
            connected(p.connected), p.version ? badge('v' + String(p.version).replace(/^v/, ''), 'muted') : null,
            open ? badge(open + ' open breaker' + (open > 1 ? 's' : ''), 'error') : null);
          return card(h('span', { class: 'mono' }, inline(p.node_id)),
            providers.length ? table(columns, providers, { rowAttrs: (x) => ({ class: 'provider-row', dataset: { name: x.name, model: x.model || '' } }) }) : empty('No providers on this data plane'),
            { class: 'card data-plane' + (p.connected ? '' : ' offline'), dataset: { node: p.node_id === undefined ? '' : p.node_id } }, head);
        }));
      });
      load();
      return { refresh: load };
    },
  };

  // ---- Keys -------------------------------------------------------------

  async function copyText(text) {
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
        return true;
      }
    } catch (_) {
      // fall back below
    }
    const ta = h('textarea', { class: 'offscreen', readonly: 'readonly' });
    ta.value = text;
    document.body.appendChild(ta);
    ta.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch (_) {
      ok = false;
    }
    ta.remove();
    return ok;
  }

  // Current use against the budget: spent / limit, with a meter.
  function budgetCell(u) {
    const b = u && u.budget;
    if (!b) return h('span', { class: 'muted' }, 'no budget');
    const used = fmt.num(b.spent_usd) || 0;
    const limit = fmt.num(b.limit_usd) || 0;
    const pct = limit > 0 ? Math.min(1, used / limit) : 0;
    const bar = h('span', { class: 'meter-fill' + (pct > 0.9 ? ' low' : pct > 0.7 ? ' mid' : '') });
    bar.style.width = (pct * 100).toFixed(1) + '%';
    return h('span', { class: 'meter-wrap budget', title: 'Spent this ' + b.period + ' since ' + fmt.time(b.since_unix_ms) },
      h('span', { class: 'meter' }, bar), fmt.cost(used) + ' / ' + fmt.cost(limit) + ' a ' + inline(b.period));
  }

  function minuteCell(u) {
    if (!u) return fmt.DASH;
    return h('span', null, fmt.int(u.minute_requests) + ' req', h('span', { class: 'muted' }, ' \u00B7 ' + fmt.int(u.minute_tokens) + ' tok'));
  }

  function limitsCell(v) {
    if (v === null || v === undefined || (typeof v === 'object' && !Object.keys(v).length)) return h('span', { class: 'muted' }, 'none');
    if (typeof v !== 'object') return inline(v);
    const set = Object.entries(v).filter(([, x]) => x !== 0 && x !== '' && x !== null);
    if (!set.length) return h('span', { class: 'muted' }, 'none');
    return h('span', { class: 'kv' }, set.map(([k, x]) => h('span', { class: 'kv-item' }, h('span', { class: 'muted' }, k.replace(/_/g, ' ') + ' '), typeof x === 'number' ? fmt.int(x) : inline(x))));
  }

  views.keys = {
    title: 'Keys',
    mount(root, ctx) {
      const list = h('div', { id: 'keys' });
      const secretBox = h('div', { id: 'new-key', hidden: true });
      let keys = [];

      if (ctx.canWrite) {
        const name = h('input', { id: 'key-name', name: 'name', type: 'text', required: true, placeholder: 'e.g. team-search', autocomplete: 'off', spellcheck: 'false', maxlength: '128' });
        const models = h('input', { id: 'key-models', name: 'models', type: 'text', placeholder: 'gpt-4o-mini, claude-sonnet (empty: every model)', autocomplete: 'off', spellcheck: 'false' });
        const submit = h('button', { type: 'submit', id: 'key-create', class: 'primary' }, 'Create key');
        const form = h('form', { id: 'key-create-form', class: 'form-row', autocomplete: 'off' },
          h('label', { class: 'field', for: 'key-name' }, h('span', { class: 'field-label' }, 'Name'), name),
          h('label', { class: 'field grow', for: 'key-models' }, h('span', { class: 'field-label' }, 'Models (comma-separated)'), models),
          h('div', { class: 'field' }, h('span', { class: 'field-label' }, '\u00A0'), submit));
        form.addEventListener('submit', async (e) => {
          e.preventDefault();
          const n = name.value.trim();
          if (!n) {
            ctx.fail(new Error('A key needs a name'));
            return;
          }
          const ms = models.value.split(',').map((s) => s.trim()).filter(Boolean);
          submit.disabled = true;
          try {
            const created = await ctx.send('POST', 'keys', { name: n, models: ms });
            if (ctx.dead()) return;
            ctx.ok();
            name.value = '';
            models.value = '';
            showSecret(created);
            load();
          } catch (err) {
            ctx.fail(err);
          } finally {
            submit.disabled = false;
          }
        });
        root.append(card('Create a key', [form, secretBox], { id: 'key-create-card' }));
      }
      root.append(card('Keys', list, { id: 'keys-card' }));

      function showSecret(created) {
        const secret = created && created.secret ? String(created.secret) : '';
        const code = h('code', { id: 'new-key-secret', class: 'secret' }, secret);
        const status = h('span', { class: 'muted', id: 'new-key-copy-status', 'aria-live': 'polite' });
        const copy = h('button', {
          type: 'button', id: 'new-key-copy',
          onclick: async () => replace(status, (await copyText(secret)) ? 'Copied' : 'Copy failed: select the key and copy it by hand'),
        }, 'Copy');
        const dismiss = h('button', { type: 'button', id: 'new-key-dismiss', onclick: () => { replace(secretBox); secretBox.hidden = true; } }, 'Done');
        replace(secretBox,
          h('div', { class: 'secret-panel' },
            h('div', { class: 'secret-warning', role: 'alert' },
              h('strong', null, 'Copy this key now. '),
              'It is shown only once: TokenRouter keeps only a hash of it, and later lists it by its prefix ',
              h('code', null, inline(created && created.prefix)), '.'),
            h('div', { class: 'secret-row' }, code, copy, dismiss, status),
            h('div', { class: 'muted small' }, 'Key ', h('strong', null, inline(created && created.name)), ' created.')));
        secretBox.hidden = false;
      }

      // The limits form of one key, shown under the list; saving is one UpdateApiKey.
      const limitsBox = h('div', { id: 'key-limits-editor', hidden: true });
      root.append(limitsBox);
      function editLimits(key) {
        const l = key.limits || {};
        const input = (id, label, value, attrs) => {
          const el = h('input', Object.assign({ id, name: id, type: 'number', min: '0', value: value ? String(value) : '' }, attrs || {}));
          return [h('label', { class: 'field', for: id }, h('span', { class: 'field-label' }, label), el), el];
        };
        const [rpmField, rpm] = input('limit-rpm', 'Requests / min', l.rpm);
        const [tpmField, tpm] = input('limit-tpm', 'Tokens / min', l.tpm);
        const [concField, conc] = input('limit-concurrent', 'In flight', l.max_concurrent);
        const [budgetField, budget] = input('limit-budget', 'Budget (USD)', l.budget_usd, { step: '0.01' });
        const period = h('select', { id: 'limit-period', name: 'limit-period' },
          ['', 'day', 'week', 'month', 'total'].map((p) => h('option', { value: p, selected: (l.budget_period || '') === p ? 'selected' : null }, p || '(none)')));
        const logBodies = h('input', { id: 'limit-log-bodies', name: 'limit-log-bodies', type: 'checkbox', checked: !!key.log_bodies });
        const save = h('button', { type: 'submit', id: 'limit-save', class: 'primary' }, 'Save');
        const cancel = h('button', { type: 'button', id: 'limit-cancel', onclick: () => { limitsBox.hidden = true; } }, 'Cancel');
        const form = h('form', { id: 'key-limits-form', class: 'form-row', autocomplete: 'off' },
          rpmField, tpmField, concField, budgetField,
          h('label', { class: 'field', for: 'limit-period' }, h('span', { class: 'field-label' }, 'Per'), period),
          h('label', { class: 'field', for: 'limit-log-bodies', title: 'Keep request and answer bodies (after the firewall\u2019s masking) for 7 days' },
            h('span', { class: 'field-label' }, 'Log bodies'), logBodies),
          h('div', { class: 'field' }, h('span', { class: 'field-label' }, '\u00A0'), h('span', { class: 'row-actions' }, save, cancel)));
        const num = (el) => (el.value.trim() === '' ? 0 : Number(el.value));
        form.addEventListener('submit', async (e) => {
          e.preventDefault();
          save.disabled = true;
          try {
            await ctx.send('PUT', 'keys/' + encodeURIComponent(key.name) + '/limits', {
              rpm: num(rpm), tpm: num(tpm), max_concurrent: num(conc), budget_usd: num(budget), budget_period: period.value,
              rpm_burst: l.rpm_burst || 0,
            });
            if (logBodies.checked !== !!key.log_bodies) {
              await ctx.send('PUT', 'keys/' + encodeURIComponent(key.name) + '/log-bodies', { enabled: logBodies.checked });
            }
            if (ctx.dead()) return;
            ctx.ok();
            limitsBox.hidden = true;
            load();
          } catch (err) {
            ctx.fail(err);
          } finally {
            save.disabled = false;
          }
        });
        replace(limitsBox, card(h('span', null, 'Limits of ', h('strong', null, inline(key.name))), form, { id: 'key-limits-card' }));
        limitsBox.hidden = false;
        rpm.focus();
      }

      async function setEnabled(keyName, on, button) {
        button.disabled = true;
        try {
          await ctx.send('POST', 'keys/' + encodeURIComponent(keyName) + (on ? '/enable' : '/disable'), {});
          if (ctx.dead()) return;
          ctx.ok();
          load();
        } catch (err) {
          button.disabled = false;
          ctx.fail(err);
        }
      }

      const columns = [
        { key: 'name', label: 'Name', class: 'group' },
        { key: 'prefix', label: 'Prefix', fmt: (v) => h('code', { class: 'prefix' }, inline(v) + '\u2026') },
        { key: 'disabled', label: 'Status', fmt: (v, r) => h('span', null, v ? badge('disabled', 'error') : badge('active', 'ok'), r.log_bodies ? badge('logs bodies', 'warn', { title: 'Bodies kept 7 days' }) : null) },
        { key: 'models', label: 'Models', fmt: (v) => (Array.isArray(v) && v.length ? h('span', { class: 'chips' }, v.map((m) => h('span', { class: 'chip' }, inline(m)))) : h('span', { class: 'muted' }, 'every model')) },
        { key: 'limits', label: 'Limits', fmt: limitsCell },
        { key: 'minute', label: 'Last 60 s', fmt: (v, r) => minuteCell(r.usage), title: 'Requests and tokens recorded in the last minute' },
        { key: 'budget', label: 'Budget', fmt: (v, r) => budgetCell(r.usage) },
        { key: 'today', label: 'Today', num: true, fmt: (v, r) => (r.usage ? h('span', null, fmt.int(r.usage.today_requests) + ' req', h('span', { class: 'muted' }, ' \u00B7 ' + fmt.cost(r.usage.today_cost_usd))) : fmt.DASH) },
      ];
      if (ctx.canWrite) {
        columns.push({
          key: 'actions', label: '', class: 'actions',
          fmt: (v, r) => h('span', { class: 'row-actions' },
            h('button', { type: 'button', class: 'small key-limits', dataset: { name: r.name }, onclick: () => editLimits(r) }, 'Limits'),
            r.disabled
              ? h('button', { type: 'button', class: 'small key-enable', dataset: { name: r.name }, onclick: (e) => setEnabled(r.name, true, e.currentTarget) }, 'Enable')
              : h('button', {
                type: 'button', class: 'danger small key-disable', dataset: { name: r.name }, title: 'Refuse every request made with this key',
                onclick: (e) => setEnabled(r.name, false, e.currentTarget),
              }, 'Disable')),
        });
      }

      const load = loader(ctx, root, () => ctx.get('keys'), (d) => {
        keys = d.keys || [];
        if (!keys.length) {
          replace(list, empty('No keys yet', ctx.canWrite ? 'Create one above.' : null, 'keys-empty'));
          return;
        }
        replace(list, table(columns, keys, {
          id: 'keys-table',
          rowAttrs: (r) => ({ class: 'key-row' + (r.disabled ? ' row-muted' : ''), dataset: { name: r.name } }),
        }));
      });
      load();
      return { refresh: load };
    },
  };

  // ---- Configuration ----------------------------------------------------

  const CONFIG_KNOWN = new Set(['version', 'providers', 'models', 'rules', 'policies', 'data_planes']);

  views.config = {
    title: 'Configuration',
    mount(root, ctx) {
      const body = h('div', { id: 'config', class: 'stack' });
      root.append(body);
      const load = loader(ctx, root, () => ctx.get('config'), (d) => {
        const section = (id, title, content, count) => card(title + (count === undefined ? '' : ' (' + count + ')'), content, { id });
        const providers = d.providers || [];
        const planes = d.data_planes || [];
        replace(body,
          h('p', { class: 'muted' }, 'Read-only. The configuration is changed in the control plane\u2019s config file or through the CLI.'),
          section('config-version', 'Version', dl([['Configuration version', inline(d.version), 'version']])),
          section('config-providers', 'Providers', providers.length
            ? table([
              { key: 'name', label: 'Name', class: 'group' },
              { key: 'kind', label: 'Kind' },
              { key: 'base_url', label: 'Base URL', fmt: (v) => h('code', null, inline(v)) },
              { key: 'models', label: 'Models', fmt: (v) => (Array.isArray(v) && v.length ? h('span', { class: 'chips' }, v.map((m) => h('span', { class: 'chip' }, typeof m === 'object' && m !== null ? inline(m.name || m.id || m) : inline(m)))) : fmt.DASH) },
            ], providers, { id: 'config-providers-table' })
            : empty('No providers configured'), providers.length),
          section('config-models', 'Models', genericTable(d.models || [], 'config-models-table', ['name', 'id', 'provider']), (d.models || []).length),
          section('config-rules', 'Rules', genericTable(d.rules || [], 'config-rules-table', ['name', 'id']), (d.rules || []).length),
          section('config-policies', 'Policies', genericTable(d.policies || [], 'config-policies-table', ['name', 'id']), (d.policies || []).length),
          section('config-data-planes', 'Data planes', planes.length
            ? table([
              { key: 'node_id', label: 'Node', fmt: (v) => h('code', null, inline(v)) },
              { key: 'version', label: 'Version' },
              { key: 'connected', label: 'Status', fmt: (v) => connected(v) },
            ].concat(planes.some((p) => p.last_error) ? [{ key: 'last_error', label: 'Last error', fmt: (v) => (v ? h('span', { class: 'error-text' }, inline(v)) : fmt.DASH) }] : []),
            planes, { id: 'config-data-planes-table' })
            : empty('No data planes have connected'), planes.length),
          // any further list the API adds (e.g. firewall rules), as a generic table
          Object.entries(d)
            .filter(([k, v]) => !CONFIG_KNOWN.has(k) && Array.isArray(v))
            .map(([k, v]) => section('config-' + k.replace(/_/g, '-'), k.charAt(0).toUpperCase() + k.slice(1).replace(/_/g, ' '),
              genericTable(v, 'config-' + k.replace(/_/g, '-') + '-table', ['name', 'id']), v.length)));
      });
      load();
      return { refresh: load };
    },
  };
})();
