// The push-rule form: every form `push-rule` has on the command line.
// Validation is the server's: its errors land next to the field they name.

import * as api from '../api.js';
import { Field, FormError, Select, html, go, numbers, useForm, useLoad, useState } from '../ui.js';

export const CAPS = [
  ['bandwidth_in_bps', 'Bandwidth in (bytes/s)'],
  ['bandwidth_in_burst', 'Bandwidth in burst (bytes)'],
  ['bandwidth_out_bps', 'Bandwidth out (bytes/s)'],
  ['bandwidth_out_burst', 'Bandwidth out burst (bytes)'],
  ['new_connections_per_sec', 'New connections per second'],
  ['new_connections_burst', 'New connections burst'],
  ['concurrent_connections', 'Concurrent connections'],
];
const CAP_NAMES = CAPS.map(([k]) => k);

/** "8080" → [8080, null]; "30000-30050" → [30000, 30050]; else null. */
export function parseListen(text) {
  const m = /^\s*(\d{1,5})\s*(?:-\s*(\d{1,5}))?\s*$/.exec(text);
  return m ? [Number(m[1]), m[2] ? Number(m[2]) : null] : null;
}

/** The caps fields, bound to `f` with `rate_limit.` API names. */
export function CapFields({ f, prefix }) {
  return html`<div class="filters">${CAPS.map(([k, label]) => html`<${Field} label=${label} type="number" min="1"
    id=${prefix + k} ...${f.bind(k)} />`)}</div>`;
}

/** The caps a form holds, or null when none is filled in. */
export function capsOf(values) {
  const caps = numbers(values, CAP_NAMES);
  return Object.keys(caps).length ? caps : null;
}

/** API field names (`rate_limit.x`) → the form's field names. */
export const CAP_FIELDS = Object.fromEntries(CAP_NAMES.map((k) => [`rate_limit.${k}`, k]));

const emptyTarget = () => ({ host: '', port: '', priority: '1', proxy: '' });

export function RuleForm({ onCancel }) {
  const clients = useLoad(() => api.get('/clients').catch(() => []), []);
  const grants = useLoad(() => api.get('/grants').catch(() => []), []);
  const [targets, setTargets] = useState([emptyTarget()]);
  const f = useForm({
    client: '', protocol: 'tcp', listen: '', sni_pattern: '', prefer_ipv6: false,
    health_check_interval_secs: '', ...Object.fromEntries(CAP_NAMES.map((k) => [k, ''])),
  });
  const v = f.values;
  const listen = parseListen(v.listen);
  const range = listen && listen[1] != null;
  const sniOffered = (v.protocol === 'tcp' && !range) || v.sni_pattern !== '';
  const setTarget = (i, k) => (e) => {
    const value = e.target.value;
    setTargets((ts) => ts.map((t, j) => (j === i ? { ...t, [k]: value } : t)));
  };
  const targetFields = targets.flatMap((_, i) => ['host', 'port', 'priority', 'proxy_protocol'].map((k) => `targets[${i}].${k}`));
  const save = f.submit(async (vals) => {
    if (!listen) {
      f.setErrors({ listen: 'A port (8080) or a range (30000-30050).' });
      return;
    }
    const body = {
      client: vals.client.trim(),
      protocol: vals.protocol,
      listen_port: listen[0],
      targets: targets.map((t) => {
        const out = { host: t.host.trim(), port: Number(t.port), priority: Number(t.priority || 1) };
        if (t.proxy) out.proxy_protocol = t.proxy;
        return out;
      }),
    };
    if (range) body.listen_port_end = listen[1];
    if (vals.sni_pattern.trim()) body.sni_pattern = vals.sni_pattern.trim();
    if (vals.prefer_ipv6) body.prefer_ipv6 = true;
    if (String(vals.health_check_interval_secs).trim()) body.health_check_interval_secs = Number(vals.health_check_interval_secs);
    const caps = capsOf(vals);
    if (caps) body.rate_limit = caps;
    const rule = await api.post('/rules', body);
    go('rules/' + api.seg(rule.rule_id));
  }, {
    client_not_found: 'client', client_not_connected: 'client', client_not_granted: 'client',
    invalid_client_name: 'client', protocol_not_granted: 'protocol', port_outside_grant: 'listen',
    port_in_use: 'listen', listen_port_conflict: 'listen', range_invalid: 'listen', exceeds_cap: 'listen',
    listen_port: 'listen', listen_port_end: 'listen', targets: 'targets[0].host',
    'conflict.legacy_to_sni_unsupported': 'sni_pattern', ...CAP_FIELDS,
  }, targetFields);
  const names = [
    ...(clients.data || []).map((c) => c.name),
    ...(grants.data || []).map((g) => g.client).filter((c) => c && c !== '*'),
  ];
  const first = targets[0];
  return html`<form class="panel" onSubmit=${save} novalidate aria-label="Push a rule">
    <h2>Push a rule</h2>
    <div class="row">
      <${Field} label="Client" id="rule-client" list="client-names" autocomplete="off" ...${f.bind('client')} />
      <datalist id="client-names">${[...new Set(names)].map((n) => html`<option value=${n} />`)}</datalist>
      <${Select} label="Protocol" id="rule-protocol" options=${[['tcp', 'TCP'], ['udp', 'UDP']]} ...${f.bind('protocol')} />
      <${Field} label="Listen port or range" id="rule-listen" placeholder="8080 or 30000-30050" ...${f.bind('listen')} />
    </div>
    <fieldset><legend>Targets</legend>
      ${range && first && html`<p class="small" id="target-window">Target window: <code>${first.host || 'host'}:${first.port || '?'}-${first.port ? Number(first.port) + listen[1] - listen[0] : '?'}</code> (same width as the listen range; the port below is its first).</p>`}
      ${targets.map((t, i) => html`<div class="target-row" data-target=${i}>
        <${Field} label=${`Host ${i + 1}`} id=${`t${i}-host`} value=${t.host} onInput=${setTarget(i, 'host')} error=${f.errors[`targets[${i}].host`]} />
        <${Field} label="Port" id=${`t${i}-port`} type="number" min="1" max="65535" value=${t.port} onInput=${setTarget(i, 'port')} error=${f.errors[`targets[${i}].port`]} />
        <${Field} label="Priority" id=${`t${i}-priority`} type="number" min="1" value=${t.priority} onInput=${setTarget(i, 'priority')} error=${f.errors[`targets[${i}].priority`]} />
        <${Select} label="PROXY protocol" id=${`t${i}-proxy`} value=${t.proxy} onInput=${setTarget(i, 'proxy')}
          options=${[['', 'none'], ['v1', 'v1'], ['v2', 'v2']]} error=${f.errors[`targets[${i}].proxy_protocol`]} />
        <div class="field act">${targets.length > 1 && html`<button type="button" onClick=${() => setTargets((ts) => ts.filter((_, j) => j !== i))}>Remove</button>`}</div>
      </div>`)}
      ${targets.length < 8 && html`<button type="button" onClick=${() => setTargets((ts) => [...ts, { ...emptyTarget(), priority: String(ts.length + 1) }])}>Add target</button>`}
      <span class="hint small muted"> Lower priority numbers are tried first; up to 8 targets.</span>
    </fieldset>
    <div class="row">
      ${sniOffered && html`<${Field} label="SNI pattern (TLS routing)" id="rule-sni" placeholder="*.example.com"
        hint="TCP, single port only. A rule without one is the port's fallback." ...${f.bind('sni_pattern')} />`}
      <${Field} label="Health check interval (s)" id="rule-health" type="number" min="1" max="3600"
        hint="Active TCP-connect probes; empty: none." ...${f.bind('health_check_interval_secs')} />
    </div>
    <div class="check"><input type="checkbox" id="rule-ipv6" checked=${v.prefer_ipv6} onInput=${f.bind('prefer_ipv6').onInput} />
      <label for="rule-ipv6">Prefer IPv6 for DNS targets</label></div>
    <details><summary>Rate limits</summary><${CapFields} f=${f} prefix="rule-" /></details>
    <${FormError} errors=${f.errors} />
    <div class="actions"><button class="primary" type="submit" disabled=${f.busy}>Push rule</button>
      <button type="button" onClick=${onCancel}>Cancel</button></div>
  </form>`;
}
