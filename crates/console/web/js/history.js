// Traffic history from GET /v1/traffic: one bar per bucket (in below,
// out on top) over the last day, week or month, with the totals. The live
// charts show the last minutes; this shows what the rollups kept.

import * as api from './api.js';
import { Loaded, bytes, html, num, useLoad, useState } from './ui.js';

const W = 600;
const H = 140;
const PAD_L = 64;
const PAD_B = 18;

/** The spans a history panel offers: label, seconds back, step. */
export const SPANS = [
  ['24 h', 86400, '1h'],
  ['7 days', 7 * 86400, '6h'],
  ['30 days', 30 * 86400, '1d'],
];
const POLL_MS = 30000;

/** The query of one span: the window ending now, at the span's step. */
export function spanQuery(scope, span) {
  const [, secs, step] = span;
  const since = new Date(Date.now() - secs * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  return `/traffic?${scope ? scope + '&' : ''}since=${encodeURIComponent(since)}&step=${step}`;
}

/** A round upper bound: 1, 2 or 5 times a power of ten. */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

/** The bars of a traffic answer, as SVG. */
export function Bars({ answer, label }) {
  const b = answer.buckets;
  const max = niceMax(Math.max(0, ...b.map((x) => x.bytes_in + x.bytes_out)));
  const slot = (W - PAD_L - 4) / Math.max(1, b.length);
  const y = (v) => 4 + (1 - v / max) * (H - PAD_B - 8);
  const bars = b.map((x, i) => {
    const left = PAD_L + i * slot;
    const w = Math.max(1, slot - 1);
    const yIn = y(x.bytes_in);
    const yAll = y(x.bytes_in + x.bytes_out);
    return html`<g data-bucket=${x.start}><title>${`${x.start}: in ${bytes(x.bytes_in)}, out ${bytes(x.bytes_out)}, ${num(x.connections)} connections`}</title>
      <rect class="b0" x=${left.toFixed(1)} y=${yIn.toFixed(1)} width=${w.toFixed(1)} height=${(y(0) - yIn).toFixed(1)} />
      <rect class="b1" x=${left.toFixed(1)} y=${yAll.toFixed(1)} width=${w.toFixed(1)} height=${(yIn - yAll).toFixed(1)} /></g>`;
  });
  const grid = [0, 0.5, 1].map(
    (f) => html`<line class="grid" x1=${PAD_L} x2=${W - 4} y1=${y(max * f)} y2=${y(max * f)} />
      <text class="axis" x=${PAD_L - 6} y=${y(max * f) + 4} text-anchor="end">${bytes(max * f)}</text>`,
  );
  return html`<svg class="chart history" viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${`${label}: bytes per ${answer.step}`}>
    ${grid}${bars}
    <text class="axis" x=${PAD_L} y=${H - 4}>${answer.since.slice(0, 16).replace('T', ' ')}</text>
    <text class="axis" x=${W - 4} y=${H - 4} text-anchor="end">now (UTC, per ${answer.step})</text>
  </svg>`;
}

/**
 * A panel with the history of `scope` (`rule=…`, `client=…` or empty for
 * everything the caller may see) and a span switch.
 */
export function History({ scope, id, label = 'Traffic history' }) {
  const [span, setSpan] = useState(SPANS[0]);
  const load = useLoad(() => api.get(spanQuery(scope, span)), [scope, span[0]], POLL_MS);
  return html`<figure class="panel" id=${id}>
    <figcaption class="spread"><strong>${label}</strong>
      <span class="spans">${SPANS.map((s) => html`<button type="button" class=${s[0] === span[0] ? 'small on' : 'small'}
        aria-pressed=${s[0] === span[0]} onClick=${() => setSpan(s)}>${s[0]}</button>`)}</span>
    </figcaption>
    <${Loaded} load=${load}>${(a) => html`
      <p class="legend"><span><span class="key k0"></span>in: <span data-total="in">${bytes(a.bytes_in)}</span></span>
        <span><span class="key k1"></span>out: <span data-total="out">${bytes(a.bytes_out)}</span></span>
        <span>connections: <span data-total="connections">${num(a.connections)}</span></span></p>
      <${Bars} answer=${a} label=${label} />`}
    </${Loaded}>
  </figure>`;
}
