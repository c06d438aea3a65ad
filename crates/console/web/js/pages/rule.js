// One rule: live traffic from the SSE stats stream (polling when the
// stream is unavailable), its counters, per-target and per-port tables,
// cap editing and removal.

import * as api from '../api.js';
import {
  Badge, ConfirmButton, FormError, Loaded, Notice, Page, Stat, bytes, go, html, num, useEffect, useForm, useLoad,
  useState, when,
} from '../ui.js';
import { LineChart, levels, rates } from '../chart.js';
import { History } from '../history.js';
import { CAP_FIELDS, CapFields, capsOf } from './rule_form.js';
import { RuleBadges, RuleState, ruleListen } from './rules.js';

/** How much history the charts keep, in milliseconds. */
const WINDOW_MS = 5 * 60 * 1000;
const POLL_MS = 2000;
/** After the stream fails, how long to poll before trying it again. */
const RETRY_STREAM_MS = 15000;

/**
 * The rule's stats as they arrive, with the samples the charts need.
 * `mode` is "stream", "polling" or "gone" (the rule was removed).
 */
function useLiveStats(id) {
  const [live, setLive] = useState({ latest: null, samples: [], mode: 'connecting' });
  useEffect(() => {
    const query = '?per_port=true&per_target=true';
    let closed = false;
    let source = null;
    let timer = null;
    const take = (s, mode) => {
      const t = s.reported_at ? Date.parse(s.reported_at) : Date.now();
      setLive((old) => {
        const prev = old.samples[old.samples.length - 1];
        const fresh = !prev || prev.t !== t;
        const samples = fresh ? [...old.samples, { t, ...s }].filter((p) => p.t >= Date.now() - WINDOW_MS - 10000) : old.samples;
        return { latest: s, samples, mode };
      });
    };
    const poll = async () => {
      // Polling stops once the stream is back.
      if (closed || source) return;
      try {
        take(await api.get(`/rules/${api.seg(id)}/stats${query}`), 'polling');
      } catch (e) {
        if (e instanceof api.ApiError && e.status === 404) return setLive((o) => ({ ...o, mode: 'gone' }));
      }
      timer = setTimeout(poll, POLL_MS);
    };
    const stream = () => {
      if (closed) return;
      source = new EventSource(`/v1/rules/${api.seg(id)}/stats/stream${query}`);
      source.addEventListener('stats', (ev) => take(JSON.parse(ev.data), 'stream'));
      source.onerror = () => {
        // The browser reconnects by itself while it can; once it gives
        // up (or the rule is gone), poll, and try the stream again later.
        if (source.readyState !== EventSource.CLOSED) return;
        source = null;
        poll();
        setTimeout(() => {
          clearTimeout(timer);
          stream();
        }, RETRY_STREAM_MS);
      };
    };
    stream();
    return () => {
      closed = true;
      if (source) source.close();
      clearTimeout(timer);
    };
  }, [id]);
  return live;
}

/** Re-renders every second so charts scroll even when nothing changes. */
function useNow() {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  return now;
}

export function Rule({ id }) {
  const path = '/rules/' + api.seg(id);
  const rule = useLoad(() => api.get(path), [path], 3000);
  return html`<${Loaded} load=${rule}>${(r) => html`<${Page} title=${`Rule ${r.protocol.toUpperCase()} ${ruleListen(r)} on ${r.client}`}>
    <p><a href="#/rules">← All rules</a></p>
    <div class="panel"><dl class="facts">
      <dt>State</dt><dd id="rule-state"><${RuleState} rule=${r} /><${RuleBadges} rule=${r} /></dd>
      <dt>Rule id</dt><dd class="mono small">${r.rule_id}</dd>
      ${r.name && html`<dt>Name</dt><dd id="rule-name">${r.name}</dd>`}
      ${r.note && html`<dt>Note</dt><dd id="rule-note">${r.note}</dd>`}
      <dt>Client</dt><dd>${r.client}</dd>
      <dt>Owner</dt><dd>${r.owner}</dd>
      <dt>Listen</dt><dd class="mono">${ruleListen(r)}${r.sni_pattern ? ` (SNI ${r.sni_pattern})` : ''}</dd>
      <dt>Targets</dt><dd class="mono small">${r.targets.map((t) => `${t.host}:${t.port}@${t.priority}${t.proxy_protocol ? ' PROXY ' + t.proxy_protocol : ''}`).join(', ')}</dd>
      ${r.prefer_ipv6 && html`<dt>DNS</dt><dd>IPv6 first</dd>`}
      ${r.health_check_interval_secs && html`<dt>Health checks</dt><dd>every ${r.health_check_interval_secs} s</dd>`}
      <dt>Caps</dt><dd class="mono small" id="rule-caps">${r.rate_limit ? Object.entries(r.rate_limit).map(([k, v]) => `${k}=${v}`).join(' ') : 'none'}</dd>
      <dt>Updated</dt><dd>${when(r.updated_at)}</dd>
    </dl></div>
    <${Traffic} rule=${r} />
    <${History} scope=${'rule=' + api.seg(r.rule_id)} id="history-rule" />
    <${Caps} rule=${r} path=${path} onSaved=${rule.reload} />
    <div class="actions">
      ${r.enabled
        ? html`<${ConfirmButton} label="Disable rule" title="Disable this rule?"
            message=${`The edge closes the listener on ${ruleListen(r)}; open connections drain. The rule, its caps and its stats stay, and enabling it binds the port again.`}
            confirmLabel="Disable rule" onConfirm=${async () => { await api.patch(path, { enabled: false }); rule.reload(); }} />`
        : html`<${ConfirmButton} label="Enable rule" title="Enable this rule?" danger=${false}
            message=${`The edge binds ${ruleListen(r)} again, all ports or none.`}
            confirmLabel="Enable rule" onConfirm=${async () => { await api.patch(path, { enabled: true }); rule.reload(); }} />`}
      <${ConfirmButton} label="Remove rule" title="Remove this rule?"
        message=${`The edge closes the listener on ${ruleListen(r)} at once; open connections drain before the rule is gone. The rule and its stats are deleted.`}
        confirmLabel="Remove rule" onConfirm=${async () => { await api.del(path); go('rules'); }} />
    </div>
  </${Page}>`}</${Loaded}>`;
}

function Traffic({ rule }) {
  const live = useLiveStats(rule.rule_id);
  const now = useNow();
  const s = live.latest;
  const udp = rule.protocol === 'udp';
  const samples = live.samples;
  return html`<section aria-labelledby="traffic-h">
    <div class="spread"><h2 id="traffic-h">Traffic</h2>
      <span class="small muted" id="stats-mode">${{ stream: 'live', polling: 'polling (stream unavailable)', gone: 'rule removed', connecting: 'connecting…' }[live.mode]}
        ${s && s.reported_at ? html` · reported ${when(s.reported_at)}` : ''}</span></div>
    ${live.mode === 'gone' && html`<${Notice} kind="warn">This rule no longer exists.</${Notice}>`}
    <div class="charts">
      <${LineChart} id="chart-throughput" label="Throughput" now=${now} windowMs=${WINDOW_MS} fmt=${(v) => bytes(v) + '/s'}
        series=${[{ name: 'in', points: rates(samples, 'bytes_in', now) }, { name: 'out', points: rates(samples, 'bytes_out', now) }]} />
      <${LineChart} id="chart-active" label=${udp ? 'Active flows' : 'Active connections'} now=${now} windowMs=${WINDOW_MS} fmt=${(v) => (Number.isInteger(v) ? num(v) : v.toFixed(1))}
        series=${[{ name: udp ? 'flows' : 'connections', points: levels(samples, udp ? 'active_flows' : 'active_connections', now) }]} />
    </div>
    ${s ? html`<div class="stats" id="rule-counters">
      <${Stat} id="stat-bytes-in" label="Bytes in" value=${bytes(s.bytes_in)} />
      <${Stat} id="stat-bytes-out" label="Bytes out" value=${bytes(s.bytes_out)} />
      <${Stat} id="stat-connections" label="Connections" value=${num(s.connections_total)} />
      <${Stat} label="Active connections" value=${num(s.active_connections)} />
      ${udp && html`<${Stat} label="UDP datagrams in" value=${num(s.udp_datagrams_in)} />
        <${Stat} label="UDP datagrams out" value=${num(s.udp_datagrams_out)} />
        <${Stat} label="Active flows" value=${num(s.active_flows)} />
        <${Stat} label="Flows dropped" value=${num(s.flows_dropped_overflow)} />`}
      <${Stat} label="Connect failures" value=${num(s.connect_failures)} />
      <${Stat} label="DNS failures" value=${num(s.dns_failures)} />
      <${Stat} label="Failovers" value=${num(s.target_failovers)} />
      <${Stat} label="Rate-limit rejects" value=${num(s.rate_limit_rejects)} />
      ${rule.sni_pattern && html`<${Stat} label="SNI routed" value=${num(s.sni_routed)} />`}
    </div>
    ${s.per_target && s.per_target.length > 0 && html`<h3>Targets</h3><div class="table-wrap"><table id="per-target">
      <thead><tr><th>Target</th><th>Health</th><th>Connects ok</th><th>Failed</th><th>Bytes in</th><th>Bytes out</th></tr></thead>
      <tbody>${s.per_target.map((t) => html`<tr><td class="mono">${t.host}:${t.port}</td>
        <td><${Badge} kind=${t.healthy ? 'ok' : 'bad'}>${t.healthy ? 'healthy' : 'failed'}</${Badge}></td>
        <td>${num(t.connects_ok)}</td><td>${num(t.connects_failed)}</td><td>${bytes(t.bytes_in)}</td><td>${bytes(t.bytes_out)}</td></tr>`)}</tbody>
    </table></div>`}
    ${rule.listen_port_end && s.per_port && html`<h3>Ports</h3><div class="table-wrap"><table id="per-port">
      <thead><tr><th>Port</th><th>Connections</th><th>Active</th><th>Bytes in</th><th>Bytes out</th></tr></thead>
      <tbody>${s.per_port.map((p) => html`<tr data-port=${p.port}><td class="mono">${p.port}</td><td>${num(p.connections_total)}</td>
        <td>${num(p.active_connections)}</td><td>${bytes(p.bytes_in)}</td><td>${bytes(p.bytes_out)}</td></tr>`)}</tbody>
    </table></div>`}` : html`<p class="muted">No report from the edge yet.</p>`}
  </section>`;
}

function Caps({ rule, path, onSaved }) {
  const current = rule.rate_limit || {};
  const f = useForm(Object.fromEntries(Object.values(CAP_FIELDS).map((k) => [k, current[k] ?? ''])));
  const [saved, setSaved] = useState(false);
  const save = f.submit(async (v) => {
    setSaved(false);
    await api.put(path, { rate_limit: capsOf(v) });
    setSaved(true);
    onSaved();
  }, CAP_FIELDS);
  return html`<form class="panel" onSubmit=${save} novalidate aria-labelledby="caps-h">
    <h2 id="caps-h">Edit caps</h2>
    <p class="muted small">Applied in place: new connections get the new caps, open ones keep flowing. Empty fields remove that cap.</p>
    <${CapFields} f=${f} prefix="cap-" />
    <${FormError} errors=${f.errors} />
    ${saved && html`<${Notice} kind="ok">Caps saved and pushed to the edge.</${Notice}>`}
    <div class="actions"><button class="primary" type="submit" disabled=${f.busy}>Save caps</button></div>
  </form>`;
}
