// chart.js - the few charts the log browser needs, drawn as SVG by hand:
// the rate gauge (a bullet bar with warn and alert zones) and the sending
// chart (volume bars over bounce- and complaint-rate panels with their
// threshold lines, one crosshair and tooltip across all three).

import { h, s, num, pct, fmtTime, fmtAxis } from './dom.js';

/**
 * A horizontal gauge of a rate against its warn and alert thresholds.
 * m: {state, value, warn, alert}. Returns an element.
 */
export function gauge(m, label) {
  const W = 100;
  const x = gaugeX(m);
  const over = m.value > gaugeMax(m);
  const svg = s('svg', {
    class: 'gauge-svg', viewBox: `0 0 ${W} 12`, preserveAspectRatio: 'none',
    role: 'img', 'aria-label': `${label}: ${pct(m.value)}, warn at ${pct(m.warn)}, alert at ${pct(m.alert)}`,
  },
  s('rect', { class: 'zone ok', x: 0, y: 0, width: x(m.warn), height: 12 }),
  s('rect', { class: 'zone warn', x: x(m.warn), y: 0, width: x(m.alert) - x(m.warn), height: 12 }),
  s('rect', { class: 'zone alert', x: x(m.alert), y: 0, width: W - x(m.alert), height: 12 }),
  s('rect', { class: `bar s-${m.state}`, x: 0, y: 3, width: Math.max(m.value > 0 ? 0.8 : 0, x(m.value)), height: 6, rx: 0 }));
  const ticks = h('div', { class: 'gauge-ticks' },
    h('span', { class: 'tick warn', style: { left: `${x(m.warn)}%` } }, `warn ${pct(m.warn)}`),
    h('span', { class: 'tick alert', style: { left: `${x(m.alert)}%` } }, `alert ${pct(m.alert)}`));
  const marks = h('div', { class: 'gauge-marks' },
    h('span', { class: 'mark warn', style: { left: `${x(m.warn)}%` } }),
    h('span', { class: 'mark alert', style: { left: `${x(m.alert)}%` } }));
  return h('div', { class: ['gauge', over ? 'over' : ''] },
    h('div', { class: 'gauge-track' }, svg, marks, over ? h('span', { class: 'gauge-over', title: 'beyond the scale' }, '▶') : null), ticks);
}

/**
 * The gauge's scale: a rate to its position in percent of the width. A
 * fixed scale (0 to twice the alert threshold) keeps the marks in place
 * from one look to the next; a rate beyond it fills the bar and gets an
 * arrow.
 */
function gaugeMax(m) {
  return m.alert > 0 ? m.alert * 2 : Math.max(m.warn * 2, m.value, 1e-9);
}

function gaugeX(m) {
  const max = gaugeMax(m);
  return (v) => Math.min(100, (v / max) * 100);
}

/**
 * Marks another figure of the same rate on a gauge made for m (AWS's own,
 * beside seslog's): a dotted line across the track with its label.
 */
export function gaugeMark(gaugeEl, m, value, label) {
  const track = gaugeEl && gaugeEl.querySelector('.gauge-track');
  if (!track || typeof value !== 'number') return;
  track.append(h('span', {
    class: 'mark other', style: { left: `${gaugeX(m)(value)}%` }, title: `${label} ${pct(value)}`,
  }, h('span', { class: 'mark-label' }, label)));
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmtCount(v) {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e4) return `${+(v / 1e3).toFixed(0)}k`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(Math.round(v));
}

/**
 * The sending chart. data: {points, bucketMs, since, until, thresholds:
 * {bounce: {warn, alert}, complaint: {warn, alert}}}. Returns an element
 * that draws itself at its container's width and redraws on resize.
 */
export function sendingChart(data) {
  const wrap = h('div', { class: 'chart' });
  const tip = h('div', { class: 'chart-tip', role: 'status', 'aria-live': 'off' });
  const holder = h('div', { class: 'chart-svg' });
  wrap.append(holder, tip);
  let lastW = 0;
  const draw = () => {
    const W = Math.max(280, Math.floor(holder.clientWidth || wrap.clientWidth || 800));
    if (W === lastW) return;
    lastW = W;
    holder.replaceChildren(render(data, W, tip, holder));
  };
  const ro = new ResizeObserver(() => draw());
  ro.observe(wrap);
  requestAnimationFrame(draw);
  wrap.dispose = () => ro.disconnect();
  return wrap;
}

function render(data, W, tip, holder) {
  const pts = data.points;
  const n = pts.length;
  // AWS's reputation series (data.aws, /api/timeseries?source=aws), by bucket start.
  const awsAt = new Map((data.aws || []).map((p) => [p.t, p]));
  const narrow = W < 560;
  const L = narrow ? 40 : 52;
  const R = 12;
  const PW = W - L - R;
  const volH = narrow ? 110 : 150;
  const rateH = narrow ? 70 : 90;
  const gap = 26;
  const top = 18;
  const y0 = top;
  const y1 = y0 + volH + gap;
  const y2 = y1 + rateH + gap;
  const axisY = y2 + rateH;
  const H = axisY + 24;
  const bw = PW / Math.max(1, n);
  const xAt = (i) => L + i * bw;

  const svg = s('svg', {
    width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: 'chart-root', role: 'img',
    'aria-label': `Sends, bounces and complaints per ${data.bucketLabel}, with bounce and complaint rate against their thresholds`,
  });

  // -- volume panel: each bar is the sends; bounces and complaints inside it
  const maxVol = niceMax(Math.max(1, ...pts.map((p) => Math.max(p.sends, p.deliveries + p.bounces))));
  const vy = (v) => y0 + volH - (v / maxVol) * volH;
  const g = s('g', { class: 'panel vol' });
  g.appendChild(s('text', { class: 'panel-title', x: L, y: y0 - 6 }, 'Sends, bounces, complaints'));
  for (const f of [0, 0.5, 1]) {
    const v = maxVol * f;
    g.appendChild(s('line', { class: 'grid', x1: L, x2: L + PW, y1: vy(v), y2: vy(v) }));
    g.appendChild(s('text', { class: 'ylab', x: L - 6, y: vy(v) + 4 }, fmtCount(v)));
  }
  const pad = bw > 6 ? Math.min(3, bw * 0.18) : bw > 2.5 ? 0.5 : 0;
  pts.forEach((p, i) => {
    const total = Math.max(p.sends, p.deliveries + p.bounces);
    if (!total) return;
    const x = xAt(i) + pad;
    const w = Math.max(0.6, bw - 2 * pad);
    g.appendChild(s('rect', { class: 'b-send', x, y: vy(total), width: w, height: volH - (vy(total) - y0) }));
    let base = y0 + volH;
    const bh = (p.bounces / maxVol) * volH;
    if (p.bounces) {
      const hh = Math.max(1.5, bh);
      g.appendChild(s('rect', { class: 'b-bounce', x, y: base - hh, width: w, height: hh }));
      base -= hh;
    }
    if (p.complaints) {
      const hh = Math.max(1.5, (p.complaints / maxVol) * volH);
      g.appendChild(s('rect', { class: 'b-complaint', x, y: base - hh, width: w, height: hh }));
    }
  });
  svg.appendChild(g);

  // -- rate panels
  const ratePanel = (yTop, key, title, th, cls) => {
    const vals = pts.map((p) => (p.sends > 0 ? p[key] : null));
    const awsVals = pts.map((p) => { const a = awsAt.get(p.t); return a && a[key] !== null ? a[key] : null; });
    const maxR = niceMax(Math.max(th.alert * 1.3, ...vals.filter((v) => v !== null), ...awsVals.filter((v) => v !== null)));
    const ry = (v) => yTop + rateH - (v / maxR) * rateH;
    const pg = s('g', { class: `panel ${cls}` });
    pg.appendChild(s('text', { class: 'panel-title', x: L, y: yTop - 6 }, title));
    pg.appendChild(s('line', { class: 'grid', x1: L, x2: L + PW, y1: ry(0), y2: ry(0) }));
    pg.appendChild(s('line', { class: 'grid', x1: L, x2: L + PW, y1: ry(maxR), y2: ry(maxR) }));
    pg.appendChild(s('text', { class: 'ylab', x: L - 6, y: ry(0) + 4 }, '0'));
    pg.appendChild(s('text', { class: 'ylab', x: L - 6, y: ry(maxR) + 4 }, pct(maxR).replace(' ', '')));
    // Labels at the right end; when the two lines are too close to label
    // apart, the warn label moves to the left end.
    const close = Math.abs(ry(th.warn) - ry(th.alert)) < 12;
    for (const [name, v] of [['warn', th.warn], ['alert', th.alert]]) {
      pg.appendChild(s('line', { class: `thr ${name}`, x1: L, x2: L + PW, y1: ry(v), y2: ry(v) }));
      const left = close && name === 'warn';
      pg.appendChild(s('text', {
        class: `thr-lab ${name}`, x: left ? L + 4 : L + PW - 2, y: ry(v) - 3, 'text-anchor': left ? 'start' : 'end',
      }, `${name} ${pct(v)}`));
    }
    // the line, broken where a bucket had no sends
    let d = '';
    let area = '';
    let run = [];
    const flush = () => {
      if (!run.length) return;
      if (run.length === 1) {
        const [i, v] = run[0];
        pg.appendChild(s('circle', { class: 'dot', cx: xAt(i) + bw / 2, cy: ry(v), r: 2.5 }));
      }
      d += run.map(([i, v], k) => `${k ? 'L' : 'M'}${(xAt(i) + bw / 2).toFixed(1)},${ry(v).toFixed(1)}`).join('');
      const first = xAt(run[0][0]) + bw / 2;
      const last = xAt(run[run.length - 1][0]) + bw / 2;
      area += `M${first.toFixed(1)},${ry(0)}` +
        run.map(([i, v]) => `L${(xAt(i) + bw / 2).toFixed(1)},${ry(v).toFixed(1)}`).join('') +
        `L${last.toFixed(1)},${ry(0)}Z`;
      run = [];
    };
    vals.forEach((v, i) => { if (v === null) flush(); else run.push([i, v]); });
    flush();
    if (area) pg.appendChild(s('path', { class: 'area', d: area }));
    if (d) pg.appendChild(s('path', { class: 'line', d }));
    // AWS's own figure for the same buckets, dashed, broken where AWS gave no point.
    let ad = '';
    let k = 0;
    awsVals.forEach((v, i) => {
      if (v === null) { k = 0; return; }
      ad += `${k++ ? 'L' : 'M'}${(xAt(i) + bw / 2).toFixed(1)},${ry(v).toFixed(1)}`;
      if (k === 1) ad += `h0.1`; // a lone point still shows
    });
    if (ad) {
      pg.appendChild(s('path', { class: 'line aws', d: ad }));
      // Marked at its first point: the threshold labels sit at the right end.
      const first = awsVals.findIndex((v) => v !== null);
      pg.appendChild(s('text', { class: 'aws-lab', x: xAt(first) + bw / 2, y: ry(awsVals[first]) - 5, 'text-anchor': 'start' }, 'AWS'));
    }
    return pg;
  };
  svg.appendChild(ratePanel(y1, 'bounceRate', 'Bounce rate (permanent)', data.thresholds.bounce, 'r-bounce'));
  svg.appendChild(ratePanel(y2, 'complaintRate', 'Complaint rate', data.thresholds.complaint, 'r-complaint'));

  // -- time axis
  const span = data.until - data.since;
  const ax = s('g', { class: 'axis' });
  ax.appendChild(s('line', { class: 'axis-line', x1: L, x2: L + PW, y1: axisY, y2: axisY }));
  const labels = Math.max(2, Math.min(8, Math.floor(PW / 90)));
  const step = Math.max(1, Math.round(n / labels));
  for (let i = 0; i < n; i += step) {
    const x = xAt(i) + bw / 2;
    ax.appendChild(s('line', { class: 'tick', x1: x, x2: x, y1: axisY, y2: axisY + 4 }));
    ax.appendChild(s('text', { class: 'xlab', x, y: axisY + 16 }, fmtAxis(pts[i].t, span)));
  }
  svg.appendChild(ax);

  // -- crosshair and tooltip
  const cross = s('line', { class: 'cross', x1: 0, x2: 0, y1: y0, y2: axisY, visibility: 'hidden' });
  svg.appendChild(cross);
  const hit = s('rect', { class: 'hit', x: L, y: y0, width: PW, height: axisY - y0 });
  svg.appendChild(hit);
  const show = (i) => {
    if (i < 0 || i >= n) { hide(); return; }
    const p = pts[i];
    const x = xAt(i) + bw / 2;
    cross.setAttribute('x1', x);
    cross.setAttribute('x2', x);
    cross.setAttribute('visibility', 'visible');
    tip.replaceChildren(
      h('div', { class: 'tip-time' }, fmtTime(p.t, { seconds: false }), ` · ${data.bucketLabel}`),
      row('sends', num(p.sends), 'c-send'),
      row('deliveries', num(p.deliveries), 'c-delivery'),
      row('bounces', `${num(p.bounces)}${p.permanentBounces !== undefined ? ` (${num(p.permanentBounces)} permanent)` : ''}`, 'c-bounce'),
      row('complaints', num(p.complaints), 'c-complaint'),
      row('bounce rate', p.sends ? pct(p.bounceRate) : '–', 'c-bounce'),
      row('complaint rate', p.sends ? pct(p.complaintRate) : '–', 'c-complaint'),
      ...(awsAt.size ? [
        row('AWS bounce rate', awsAt.get(p.t)?.bounceRate != null ? pct(awsAt.get(p.t).bounceRate) : '–', 'c-bounce'),
        row('AWS complaint rate', awsAt.get(p.t)?.complaintRate != null ? pct(awsAt.get(p.t).complaintRate) : '–', 'c-complaint'),
      ] : []));
    tip.classList.add('show');
    const tw = tip.offsetWidth || 180;
    const hostW = holder.clientWidth || W;
    let left = x + 14;
    if (left + tw > hostW) left = x - tw - 14;
    tip.style.left = `${Math.max(0, left)}px`;
    tip.style.top = `${y0}px`;
  };
  const hide = () => {
    cross.setAttribute('visibility', 'hidden');
    tip.classList.remove('show');
  };
  const idxAt = (ev) => {
    const r = svg.getBoundingClientRect();
    return Math.floor((ev.clientX - r.left - L) / bw);
  };
  hit.addEventListener('pointermove', (ev) => show(idxAt(ev)));
  hit.addEventListener('pointerleave', hide);
  // keyboard: focus the chart, arrows walk the buckets
  let kidx = n - 1;
  svg.setAttribute('tabindex', '0');
  svg.addEventListener('keydown', (ev) => {
    if (ev.key === 'ArrowLeft') kidx = Math.max(0, kidx - 1);
    else if (ev.key === 'ArrowRight') kidx = Math.min(n - 1, kidx + 1);
    else if (ev.key === 'Home') kidx = 0;
    else if (ev.key === 'End') kidx = n - 1;
    else return;
    ev.preventDefault();
    show(kidx);
  });
  svg.addEventListener('focus', () => show(kidx));
  svg.addEventListener('blur', hide);
  return svg;
}

function row(label, value, cls) {
  return h('div', { class: 'tip-row' }, h('span', { class: ['sw', cls] }), h('span', { class: 'tip-l' }, label), h('span', { class: 'tip-v' }, value));
}

/** Horizontal bars: items [{label, value, href, cls, note}]. */
export function barList(items, { max } = {}) {
  const top = max ?? Math.max(1, ...items.map((i) => i.value));
  return h('ul', { class: 'barlist' }, items.map((it) => {
    const inner = [
      h('span', { class: 'bl-label' }, it.label),
      h('span', { class: 'bl-value' }, it.display ?? num(it.value)),
      h('span', { class: 'bl-track' }, h('span', { class: ['bl-bar', it.cls], style: { width: `${Math.max(it.value > 0 ? 1 : 0, (it.value / top) * 100)}%` } })),
      it.note ? h('span', { class: 'bl-note' }, it.note) : null,
    ];
    return h('li', {}, it.href ? h('a', { href: it.href, class: 'bl-row' }, inner) : h('div', { class: 'bl-row' }, inner));
  }));
}
