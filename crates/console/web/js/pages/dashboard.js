// Dashboard: the fleet at a glance from GET /v1/overview: counts, current
// throughput with a chart, the busiest rules, and what needs attention.
// A plain user sees the same for their own rules.

import * as api from '../api.js';
import { Loaded, Page, Stat, bytes, html, num, useEffect, useLoad, useState } from '../ui.js';
import { LineChart, rates } from '../chart.js';
import { History } from '../history.js';

const POLL_MS = 2000;
const WINDOW_MS = 5 * 60 * 1000;

function alertText(a) {
  switch (a.kind) {
    case 'client_offline':
      return html`Client <strong>${a.client}</strong> is offline with ${a.rules} rule${a.rules === 1 ? '' : 's'}.`;
    case 'rule_failed':
      return html`<a href=${'#/rules/' + api.seg(a.rule_id)}>A rule on ${a.client}</a> failed${a.reason ? `: ${a.reason}` : ''}.`;
    default:
      return html`Target <code>${a.target}</code> of <a href=${'#/rules/' + api.seg(a.rule_id)}>a rule on ${a.client}</a> is failing.`;
  }
}

export function Dashboard({ me }) {
  const load = useLoad(() => api.get('/overview'), [], POLL_MS);
  const [samples, setSamples] = useState([]);
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!load.data) return;
    const t = Date.now();
    setNow(t);
    setSamples((s) => [...s, { t, ...load.data.traffic }].filter((p) => p.t >= t - WINDOW_MS - 10000));
  }, [load.data]);
  const admin = me.role === 'superadmin';
  return html`<${Page} title=${admin ? 'Dashboard' : 'My rules at a glance'}>
    <${Loaded} load=${load}>${(o) => html`
      <div class="stats" id="overview-counts">
        ${o.clients && html`<${Stat} id="ov-connected" label="Clients connected" value=${num(o.clients.connected)} />
          <${Stat} id="ov-offline" label="Clients offline" value=${num(o.clients.offline)} />
          <${Stat} label="Clients revoked" value=${num(o.clients.revoked)} />`}
        <${Stat} id="ov-active" label="Rules active" value=${num(o.rules.active)} />
        <${Stat} label="Rules pending" value=${num(o.rules.pending)} />
        <${Stat} id="ov-failed" label="Rules failed" value=${num(o.rules.failed)} />
        <${Stat} label="Active connections" value=${num(o.traffic.active_connections)} />
        <${Stat} label="Active UDP flows" value=${num(o.traffic.active_flows)} />
        <${Stat} id="ov-bytes" label="Bytes moved" value=${bytes(o.traffic.bytes_in + o.traffic.bytes_out)} />
      </div>
      <div class="charts">
        <${LineChart} id="chart-fleet" label="Total throughput" now=${now} windowMs=${WINDOW_MS} fmt=${(v) => bytes(v) + '/s'}
          series=${[{ name: 'in', points: rates(samples, 'bytes_in', now) }, { name: 'out', points: rates(samples, 'bytes_out', now) }]} />
        <div class="panel"><h2>Needs attention</h2>
          ${o.alerts.length === 0 ? html`<p class="muted" id="alerts-none">Nothing: every client with rules is connected, no rule failed, no target is failing.</p>`
            : html`<ul class="alerts" id="alerts">${o.alerts.map((a) => html`<li data-alert=${a.kind}>${alertText(a)}</li>`)}</ul>`}
        </div>
      </div>
      <${History} scope="" id="history-fleet" label=${admin ? 'Fleet traffic history' : 'My traffic history'} />
      <div class="panel"><h2>Busiest rules</h2>
        ${o.top_rules.length === 0 ? html`<p class="muted">No traffic reported yet.</p>` : html`<div class="table-wrap"><table id="top-rules">
          <thead><tr><th>Rule</th><th>Client</th>${admin && html`<th>Owner</th>`}<th>In</th><th>Out</th></tr></thead>
          <tbody>${o.top_rules.map((r) => html`<tr><td><a class="mono" href=${'#/rules/' + api.seg(r.rule_id)}>${r.protocol} ${r.listen}</a></td>
            <td>${r.client}</td>${admin && html`<td>${r.owner}</td>`}<td>${bytes(r.bytes_in)}</td><td>${bytes(r.bytes_out)}</td></tr>`)}</tbody>
        </table></div>`}
        <p class="small"><a href="#/rules">All ${admin ? '' : 'my '}rules →</a></p>
      </div>`}
    </${Loaded}>
  </${Page}>`;
}
