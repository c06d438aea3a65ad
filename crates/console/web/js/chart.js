// A small SVG line chart: a few series over a time window, drawn by hand
// so the console needs no chart library.

import { html } from '../vendor/preact-htm.js';

const W = 600;
const H = 160;
const PAD_L = 64;
const PAD_B = 18;

/** A round upper bound for the y axis: 1, 2 or 5 times a power of ten. */
export function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

/**
 * `series`: [{ name, points: [{ t, v }] }] with `t` in ms; the x axis is
 * the `windowMs` before `now`. `fmt` formats a y value.
 */
export function LineChart({ series, now, windowMs, fmt, label, id }) {
  // Up to `windowMs` of history, but no wider than the data (30 s at
  // least), so a chart opened a moment ago is not a dot at its right edge.
  const first = Math.min(...series.flatMap((s) => s.points.map((p) => p.t)), now);
  const span = Math.min(windowMs, Math.max(30000, now - first));
  const from = now - span;
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.points.map((p) => p.v))));
  const x = (t) => PAD_L + ((t - from) / span) * (W - PAD_L - 4);
  const y = (v) => 4 + (1 - v / max) * (H - PAD_B - 8);
  const lines = series.map((s, i) => {
    const pts = s.points.filter((p) => p.t >= from - 5000).map((p) => `${x(Math.max(p.t, from)).toFixed(1)},${y(p.v).toFixed(1)}`);
    return html`<polyline class=${'s' + i} points=${pts.join(' ')} />`;
  });
  const grid = [0, 0.5, 1].map(
    (f) => html`<line class="grid" x1=${PAD_L} x2=${W - 4} y1=${y(max * f)} y2=${y(max * f)} />
      <text class="axis" x=${PAD_L - 6} y=${y(max * f) + 4} text-anchor="end">${fmt(max * f)}</text>`,
  );
  const ago = span >= 60000 ? `${Math.round(span / 60000)} min` : `${Math.round(span / 1000)} s`;
  return html`<figure class="panel" id=${id}>
    <figcaption class="spread"><strong>${label}</strong>
      <span class="legend">${series.map((s, i) => html`<span><span class=${'key k' + i}></span>${s.name}: ${fmt(last(s))}</span>`)}</span>
    </figcaption>
    <svg class="chart" viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${`${label}, last ${ago}`}>
      ${grid}
      <text class="axis" x=${PAD_L} y=${H - 4}>-${ago}</text>
      <text class="axis" x=${W - 4} y=${H - 4} text-anchor="end">now</text>
      ${lines}
    </svg>
  </figure>`;
}

function last(s) {
  return s.points.length ? s.points[s.points.length - 1].v : 0;
}

/**
 * Turns cumulative samples [{ t, ...counters }] into a step line of the
 * per-second rate of `key`: each interval between two samples is one flat
 * step. A counter that went down (the edge restarted) starts over from
 * zero instead of going negative. Samples only arrive when something
 * changed, so once the next one is overdue the rate is zero up to `now`.
 */
export function rates(samples, key, now) {
  const out = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1];
    const b = samples[i];
    const dt = (b.t - a.t) / 1000;
    if (dt <= 0) continue;
    const d = b[key] >= a[key] ? b[key] - a[key] : b[key];
    out.push({ t: a.t, v: d / dt }, { t: b.t, v: d / dt });
  }
  const last = samples[samples.length - 1];
  if (last && overdue(samples, now)) out.push({ t: last.t, v: 0 }, { t: now, v: 0 });
  return out;
}

/** No sample for well over the last interval between two (3 s at least). */
function overdue(samples, now) {
  const n = samples.length;
  const gap = n > 1 ? samples[n - 1].t - samples[n - 2].t : 0;
  return n > 0 && now - samples[n - 1].t > Math.max(3000, 2.5 * gap);
}

/** `key` itself as a step line (gauges such as active connections), held up to `now`. */
export function levels(samples, key, now) {
  const out = [];
  samples.forEach((s, i) => {
    if (i > 0) out.push({ t: s.t, v: samples[i - 1][key] });
    out.push({ t: s.t, v: s[key] });
  });
  const last = samples[samples.length - 1];
  if (last && now > last.t) out.push({ t: now, v: last[key] });
  return out;
}
