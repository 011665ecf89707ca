// ui.js — small DOM helpers shared by the views: an element builder that never
// parses HTML (API strings are always set as text), tables with optional
// sorting, badges, empty states, stat tiles and pretty JSON. Defines TR.ui.
'use strict';
(function () {
  const TR = (window.TR = window.TR || {});
  const fmt = TR.fmt;

  function append(el, children) {
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      if (Array.isArray(c)) append(el, c);
      else if (c instanceof Node) el.appendChild(c);
      else el.appendChild(document.createTextNode(String(c)));
    }
    return el;
  }

  /**
   * h('a', {href: '#/x', class: 'btn', onclick: fn, dataset: {id: 1}}, 'text', child...)
   * Attributes: `class`, `text`, `dataset`, `on<event>` (a listener), `value`,
   * `checked`, `disabled`, `hidden` (properties); anything else is an attribute.
   */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    let value;
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = String(v);
        else if (k === 'dataset') for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k === 'value') value = v;
        else if (k === 'checked' || k === 'disabled' || k === 'hidden' || k === 'selected') el[k] = !!v;
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    append(el, children);
    if (value !== undefined) el.value = String(value);
    return el;
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }

  function replace(el, ...children) {
    clear(el);
    return append(el, children);
  }

  function badge(text, kind, attrs) {
    return h('span', Object.assign({ class: 'badge' + (kind ? ' badge-' + kind : '') }, attrs || {}), text);
  }

  function empty(message, hint, id) {
    return h('div', { class: 'empty', id }, h('div', { class: 'empty-title' }, message), hint ? h('div', { class: 'empty-hint' }, hint) : null);
  }

  function card(title, body, attrs, extraHead) {
    return h(
      'section',
      Object.assign({ class: 'card' }, attrs || {}),
      title || extraHead ? h('div', { class: 'card-head' }, title ? h('h2', { class: 'card-title' }, title) : null, extraHead || null) : null,
      h('div', { class: 'card-body' }, body)
    );
  }

  function json(value, id) {
    let text;
    try {
      text = JSON.stringify(value, null, 2);
    } catch (_) {
      text = String(value);
    }
    return h('pre', { class: 'json', id }, text === undefined ? 'null' : text);
  }

  /** A compact one-line rendering of any JSON value, for table cells. */
  function inline(value) {
    if (value === null || value === undefined) return fmt.DASH;
    if (Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null)) return value.length ? value.join(', ') : fmt.DASH;
    if (typeof value === 'object') {
      const s = JSON.stringify(value);
      return s === '{}' ? fmt.DASH : s;
    }
    if (typeof value === 'boolean') return fmt.bool(value);
    return String(value);
  }

  /** One big number: label above, value (with a stable id and the raw number in data-value). */
  function stat(id, label, text, raw, sub) {
    return h(
      'div',
      { class: 'stat' },
      h('div', { class: 'stat-label' }, label),
      h('div', { class: 'stat-value', id, dataset: { value: raw === null || raw === undefined ? '' : raw } }, text),
      sub ? h('div', { class: 'stat-sub' }, sub) : null
    );
  }

  function compare(a, b) {
    const an = a === null || a === undefined || a === '';
    const bn = b === null || b === undefined || b === '';
    if (an || bn) return an && bn ? 0 : an ? 1 : -1; // empty values last
    if (typeof a === 'number' && typeof b === 'number') return a - b;
    if (typeof a === 'boolean' && typeof b === 'boolean') return a === b ? 0 : a ? -1 : 1;
    return String(a).localeCompare(String(b), undefined, { numeric: true, sensitivity: 'base' });
  }

  /**
   * A table. columns: [{key, label, num, fmt(value,row) → text|Node, value(row) → sort key,
   * title}]. opts: {id, rowAttrs(row) → attrs, sort: {key, dir}, onSort(sort), foot: [cells]}.
   * With opts.sort the headers are buttons that sort by that column.
   */
  function table(columns, rows, opts) {
    opts = opts || {};
    const sortable = !!opts.sort;
    const sort = opts.sort;
    let list = rows;
    if (sortable && sort && sort.key) {
      const col = columns.find((c) => c.key === sort.key);
      const key = col && col.value ? col.value : (r) => r[sort.key];
      const sign = sort.dir === 'asc' ? 1 : -1;
      list = rows.slice().sort((a, b) => {
        const ka = key(a);
        const kb = key(b);
        const emptyA = ka === null || ka === undefined || ka === '';
        const emptyB = kb === null || kb === undefined || kb === '';
        if (emptyA || emptyB) return compare(ka, kb); // empty last in both directions
        return sign * compare(ka, kb);
      });
    }
    const head = h(
      'tr',
      null,
      columns.map((c) => {
        const cls = (c.num ? 'num ' : '') + (c.class || '');
        if (!sortable || c.sortable === false) return h('th', { class: cls, scope: 'col', title: c.title }, c.label);
        const active = sort && sort.key === c.key;
        const arrow = active ? (sort.dir === 'asc' ? '\u00A0\u25B2' : '\u00A0\u25BC') : '';
        return h(
          'th',
          { class: cls + ' sortable' + (active ? ' sorted' : ''), scope: 'col', 'aria-sort': active ? (sort.dir === 'asc' ? 'ascending' : 'descending') : 'none', dataset: { key: c.key } },
          h(
            'button',
            {
              type: 'button',
              class: 'th-button',
              title: c.title || 'Sort by ' + c.label,
              onclick: () => {
                const dir = active ? (sort.dir === 'asc' ? 'desc' : 'asc') : c.num ? 'desc' : 'asc';
                if (opts.onSort) opts.onSort({ key: c.key, dir });
              },
            },
            c.label,
            h('span', { class: 'sort-arrow' }, arrow)
          )
        );
      })
    );
    const body = h(
      'tbody',
      null,
      list.map((r) =>
        h(
          'tr',
          opts.rowAttrs ? opts.rowAttrs(r) : null,
          columns.map((c) => {
            const v = r[c.key];
            const out = c.fmt ? c.fmt(v, r) : c.num ? fmt.int(v) : inline(v);
            return h('td', { class: (c.num ? 'num ' : '') + (c.class || ''), dataset: { col: c.key } }, out);
          })
        )
      )
    );
    const foot = opts.foot ? h('tfoot', null, h('tr', null, opts.foot.map((cell, i) => h('td', { class: columns[i] && columns[i].num ? 'num' : '' }, cell)))) : null;
    return h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: opts.id }, h('thead', null, head), body, foot));
  }

  /** A table for an array of arbitrary JSON values (objects: one column per key). */
  function genericTable(items, id, preferred) {
    if (!Array.isArray(items) || items.length === 0) return empty('None configured', null, id ? id + '-empty' : undefined);
    if (items.every((x) => x === null || typeof x !== 'object' || Array.isArray(x))) {
      return table([{ key: 'value', label: 'Value' }], items.map((x) => ({ value: x })), { id });
    }
    const keys = [];
    for (const k of preferred || []) if (items.some((x) => x && typeof x === 'object' && k in x)) keys.push(k);
    for (const x of items) if (x && typeof x === 'object') for (const k of Object.keys(x)) if (!keys.includes(k)) keys.push(k);
    const columns = keys.map((k) => ({
      key: k,
      label: (k.charAt(0).toUpperCase() + k.slice(1)).replace(/_/g, ' '),
      num: items.every((x) => !x || x[k] === null || x[k] === undefined || typeof x[k] === 'number'),
      fmt: (v) => {
        if (typeof v === 'number') return Number.isInteger(v) ? fmt.int(v) : String(v);
        if (v !== null && typeof v === 'object' && !Array.isArray(v)) return h('code', { class: 'inline-json' }, inline(v));
        return inline(v);
      },
    }));
    return table(columns, items.map((x) => (x && typeof x === 'object' ? x : { value: x })), { id });
  }

  /** A definition list from [label, value (text or Node), field name] triples. */
  function dl(items, id) {
    return h(
      'dl',
      { class: 'dl', id },
      items.map(([label, value, field]) => [h('dt', null, label), h('dd', { dataset: field ? { field } : undefined }, value)])
    );
  }

  /**
   * A view's data load, callable again for refreshes: answers to a load that
   * a later one superseded, or that arrive after the view left, are dropped;
   * errors go to the banner. Sets root[data-state] to loading / ready / error.
   */
  function loader(ctx, root, fetcher, onData) {
    let gen = 0;
    return async function load() {
      const mine = ++gen;
      if (root.dataset.state !== 'ready') root.dataset.state = 'loading';
      try {
        const data = await fetcher();
        if (mine !== gen || ctx.dead()) return;
        onData(data || {});
        root.dataset.state = 'ready';
        ctx.ok();
      } catch (e) {
        if (mine !== gen || ctx.dead() || TR.api.isAbort(e)) return;
        root.dataset.state = 'error';
        ctx.fail(e);
      }
    };
  }

  TR.ui = { h, clear, replace, append, badge, empty, card, json, inline, stat, table, genericTable, dl, compare, loader };
})();
