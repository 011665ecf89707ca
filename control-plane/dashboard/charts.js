// charts.js — time-series charts on the vendored uPlot (vendor/uPlot.iife.min.js):
// stacked areas per group (requests, errors, tokens, cost) and plain lines
// (latency percentiles), sized to their container, with a drag-to-select that
// sets the dashboard's time range. Defines TR.charts.
'use strict';
(function () {
  const TR = (window.TR = window.TR || {});
  const fmt = TR.fmt;

  const PALETTE = ['#3366cc', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#b07aa1', '#edc948', '#ff9da7', '#9c755f', '#4e79a7', '#8cd17d', '#bab0ac'];
  const OTHER_COLOR = '#9aa3b2';
  const FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
  const AXIS = { stroke: '#5b6578', font: FONT, grid: { stroke: '#eceff4', width: 1 }, ticks: { stroke: '#dfe3ea', width: 1 } };

  const color = (i) => PALETTE[i % PALETTE.length];

  function rgba(hex, a) {
    const n = parseInt(hex.slice(1), 16);
    return 'rgba(' + ((n >> 16) & 255) + ',' + ((n >> 8) & 255) + ',' + (n & 255) + ',' + a + ')';
  }

  function clean(values, len, nullAs) {
    const out = new Array(len);
    for (let i = 0; i < len; i++) {
      const v = values && values[i];
      out[i] = v === null || v === undefined || v === '' || !Number.isFinite(+v) ? nullAs : +v;
    }
    return out;
  }

  /** Cumulative sums of the shown series, and the bands that fill between neighbours. */
  function stack(x, raw, shown) {
    const acc = new Array(x.length).fill(0);
    const data = [x];
    const bands = [];
    let below = -1;
    raw.forEach((vals, i) => {
      if (!shown[i]) {
        data.push(vals.slice());
        return;
      }
      data.push(vals.map((v, j) => (acc[j] += v)));
      if (below >= 0) bands.push({ series: [i + 1, below + 1] });
      below = i;
    });
    return { data, bands };
  }

  /**
   * Keeps the `limit` groups with the largest total of `metric`, and folds the
   * rest into one "other" group. Returns [{label, color, index}] in that order
   * and a function that gives any metric's values for one of them.
   */
  function topGroups(series, metric, limit, len) {
    const total = (s) => (s[metric] || []).reduce((a, v) => a + (Number.isFinite(+v) && v !== null ? +v : 0), 0);
    const ranked = series.map((s, i) => ({ s, i, t: total(s) })).sort((a, b) => b.t - a.t || String(a.s.group).localeCompare(String(b.s.group)));
    const kept = ranked.slice(0, limit);
    const rest = ranked.slice(limit);
    const groups = kept.map((r, k) => ({ label: r.s.group === null || r.s.group === '' ? '(none)' : String(r.s.group), color: color(k), members: [r.s] }));
    if (rest.length) groups.push({ label: 'other (' + rest.length + ')', color: OTHER_COLOR, members: rest.map((r) => r.s) });
    const values = (g, m) => {
      const out = new Array(len).fill(null);
      for (const s of g.members) {
        const vs = s[m] || [];
        for (let j = 0; j < len; j++) {
          const v = vs[j];
          if (v === null || v === undefined || !Number.isFinite(+v)) continue;
          out[j] = (out[j] || 0) + +v;
        }
      }
      return out;
    };
    return { groups, values };
  }

  function axisSize(u, values) {
    if (!values) return 40;
    const longest = values.reduce((m, v) => Math.max(m, String(v).length), 0);
    return Math.max(36, Math.ceil(longest * 7.2) + 16);
  }

  /**
   * A time chart in `host`. o: {buckets: [unix ms], series: [{label, color, values, dash}],
   * stacked, value(v) → legend text, axis(v) → tick text, range: [from, to] (unix ms),
   * onSelect(from, to), height}. Returns {destroy()}.
   */
  function timeChart(host, o) {
    if (typeof window.uPlot !== 'function') {
      host.appendChild(TR.ui.empty('Charts are unavailable', 'vendor/uPlot.iife.min.js did not load'));
      return { destroy() {} };
    }
    const uPlot = window.uPlot;
    const x = (o.buckets || []).map(Number);
    const len = x.length;
    const raw = o.series.map((s) => clean(s.values, len, o.stacked ? 0 : null));
    const shown = o.series.map(() => true);
    const first = o.stacked ? stack(x, raw, shown) : { data: [x].concat(raw), bands: [] };
    const valueText = o.value || fmt.int;
    const axisText = o.axis || fmt.compact;

    let lo = Math.min.apply(null, x.length ? x : [Date.now()]);
    let hi = Math.max.apply(null, x.length ? x : [Date.now()]);
    if (o.range) {
      lo = Math.min(lo, o.range[0]);
      hi = Math.max(hi, o.range[1]);
    }
    if (hi <= lo) hi = lo + 60000;

    const height = o.height || 220;
    const width = () => Math.max(240, Math.floor(host.clientWidth || 600));

    const opts = {
      width: width(),
      height,
      ms: 1,
      cursor: { drag: { x: !!o.onSelect, y: false, setScale: false }, points: { size: 7 } },
      legend: { show: true, live: true },
      scales: {
        x: { time: true, range: () => [lo, hi] },
        y: {
          range: (u, min, max) => {
            if (max === null || max === undefined || !Number.isFinite(max) || max <= 0) return [0, 1];
            return [0, uPlot.rangeNum(0, max, 0.1, true)[1]];
          },
        },
      },
      axes: [
        Object.assign({}, AXIS),
        Object.assign({}, AXIS, { size: axisSize, values: (u, ticks) => ticks.map(axisText) }),
      ],
      series: [
        { label: 'Time', value: (u, v) => (v === null || v === undefined ? fmt.DASH : fmt.time(v)) },
      ].concat(
        o.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 1.5,
          dash: s.dash,
          fill: o.stacked ? rgba(s.color, 0.3) : undefined,
          spanGaps: false,
          value: (u, v, si, di) => {
            if (di === null || di === undefined) return fmt.DASH;
            const r = raw[si - 1][di];
            return r === null || r === undefined ? fmt.DASH : valueText(r);
          },
        }))
      ),
      bands: first.bands,
      hooks: {
        setSelect: [
          (u) => {
            if (!o.onSelect || u.select.width < 5) return;
            const a = u.posToVal(u.select.left, 'x');
            const b = u.posToVal(u.select.left + u.select.width, 'x');
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            if (Number.isFinite(a) && Number.isFinite(b) && b > a) o.onSelect(Math.floor(a), Math.ceil(b));
          },
        ],
        setSeries: [
          (u) => {
            if (!o.stacked) return;
            const now = u.series.slice(1).map((s) => s.show !== false);
            const next = stack(x, raw, now);
            u.delBand(null);
            next.bands.forEach((b) => u.addBand(b));
            u.setData(next.data);
          },
        ],
      },
    };

    const wrap = document.createElement('div');
    wrap.className = 'chart';
    host.appendChild(wrap);
    const plot = new uPlot(opts, first.data, wrap);

    let frame = 0;
    let lastWidth = opts.width;
    const ro = typeof ResizeObserver === 'function'
      ? new ResizeObserver(() => {
        cancelAnimationFrame(frame);
        frame = requestAnimationFrame(() => {
          const w = width();
          if (w !== lastWidth) {
            lastWidth = w;
            plot.setSize({ width: w, height });
          }
        });
      })
      : null;
    if (ro) ro.observe(host);

    return {
      plot,
      destroy() {
        if (ro) ro.disconnect();
        cancelAnimationFrame(frame);
        plot.destroy();
      },
    };
  }

  TR.charts = { timeChart, topGroups, color, PALETTE };
})();
