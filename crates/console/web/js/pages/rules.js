// Rules: the list with filters and state badges, and the push form.

import * as api from '../api.js';
import { Badge, Loaded, Page, html, useLoad, useState } from '../ui.js';
import { RuleForm } from './rule_form.js';

export function ruleListen(r) {
  return r.listen_port_end ? `${r.listen_port}-${r.listen_port_end}` : String(r.listen_port);
}

export function RuleState({ rule }) {
  const kind = { active: 'ok', pending: 'warn', failed: 'bad' }[rule.state] || 'off';
  return html`<${Badge} kind=${kind}>${rule.state}</${Badge}>${rule.reason && html` <span class="small">${rule.reason}</span>`}${
    rule.quota_exhausted && html` <${Badge} kind="bad">quota exhausted</${Badge}>`}`;
}

export function RuleBadges({ rule }) {
  const proxies = [...new Set(rule.targets.map((t) => t.proxy_protocol).filter(Boolean))];
  return html`${rule.targets.length > 1 && html` <${Badge} kind="off">${rule.targets.length} targets</${Badge}>`}
    ${proxies.map((p) => html` <${Badge} kind="off">PROXY ${p}</${Badge}>`)}
    ${rule.rate_limit && html` <${Badge} kind="off">capped</${Badge}>`}`;
}

const FILTERS = ['client', 'owner', 'protocol', 'state'];

export function Rules({ me }) {
  const list = useLoad(() => api.get('/rules'), [], 3000);
  const [pushing, setPushing] = useState(false);
  const [flt, setFlt] = useState({ client: '', owner: '', protocol: '', state: '', q: '' });
  const set = (k) => (e) => setFlt((f) => ({ ...f, [k]: e.target.value }));
  const matches = (r) => {
    if (FILTERS.some((k) => flt[k] && r[k] !== flt[k])) return false;
    const q = flt.q.trim().toLowerCase();
    if (!q) return true;
    const hay = [ruleListen(r), r.sni_pattern, r.rule_id, r.name, r.note, ...r.targets.map((t) => `${t.host}:${t.port}`)];
    return hay.some((h) => h && String(h).toLowerCase().includes(q));
  };
  const options = (rows, k) => [['', 'any'], ...[...new Set(rows.map((r) => r[k]))].sort().map((v) => [v, v])];
  return html`<${Page} title="Rules" actions=${!pushing && html`<button type="button" class="primary" onClick=${() => setPushing(true)}>Push rule</button>`}>
    ${pushing && html`<${RuleForm} me=${me} onCancel=${() => setPushing(false)} />`}
    <${Loaded} load=${list}>${(rows) => html`
      <div class="filters" role="search" aria-label="Filter rules">
        ${FILTERS.map((k) => html`<div class="field"><label for=${'flt-' + k}>${k[0].toUpperCase() + k.slice(1)}</label>
          <select id=${'flt-' + k} value=${flt[k]} onInput=${set(k)}>
            ${options(rows, k).map(([v, t]) => html`<option value=${v}>${t}</option>`)}</select></div>`)}
        <div class="field"><label for="flt-q">Search</label>
          <input id="flt-q" type="search" placeholder="port, target, SNI" value=${flt.q} onInput=${set('q')} /></div>
      </div>
      <div class="table-wrap"><table class="rules">
        <thead><tr><th>Listen</th><th>Protocol</th><th>Client</th><th>Targets</th><th>State</th><th class="hide-sm">Owner</th></tr></thead>
        <tbody>
          ${rows.length === 0 && html`<tr><td colspan="6" class="muted">No rules yet.</td></tr>`}
          ${rows.filter(matches).map((r) => html`<tr data-rule=${r.rule_id}>
            <td><a href=${'#/rules/' + api.seg(r.rule_id)} class="mono">${ruleListen(r)}</a>${r.sni_pattern && html` <span class="small">SNI ${r.sni_pattern}</span>`}${r.name && html` <span class="small">${r.name}</span>`}</td>
            <td>${r.protocol}</td><td>${r.client}</td>
            <td class="mono small">${r.targets.map((t) => `${t.host}:${t.port}`).join(', ')}<${RuleBadges} rule=${r} /></td>
            <td><${RuleState} rule=${r} /></td><td class="hide-sm">${r.owner}</td>
          </tr>`)}
        </tbody></table></div>
      <p class="muted small">${rows.filter(matches).length} of ${rows.length} shown</p>`}
    </${Loaded}>
  </${Page}>`;
}
