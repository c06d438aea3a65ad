// One client: its state, the edits an operator makes to it, its rules and
// the owners' rate-limit envelopes on it.

import * as api from '../api.js';
import {
  Badge, ConfirmButton, Field, FormError, Loaded, Page, bytes, html, go, useForm, useLoad, useState, when,
} from '../ui.js';
import { ClientBadge, EnrollCommand, POLL_MS } from './clients.js';
import { RuleState, ruleListen } from './rules.js';
import { History } from '../history.js';

export function Client({ id }) {
  const path = '/clients/' + api.seg(id);
  const client = useLoad(() => api.get(path), [path], POLL_MS);
  const [created, setCreated] = useState(null);
  return html`<${Loaded} load=${client}>${(c) => html`<${Page} title=${'Client ' + c.name}>
    <p><a href="#/clients">← All clients</a></p>
    ${created && html`<${EnrollCommand} created=${created} onClose=${() => setCreated(null)} />`}
    <div class="panel">
      <dl class="facts">
        <dt>State</dt><dd><${ClientBadge} client=${c} /></dd>
        <dt>Client id</dt><dd class="mono small">${c.client_id}</dd>
        <dt>Remote address</dt><dd class="mono" id="client-remote">${c.remote_addr || '—'}</dd>
        <dt>Connected since</dt><dd>${c.connected ? when(c.connected_since) : '—'}</dd>
        <dt>Entry address</dt><dd class="mono">${c.address || '—'}</dd>
        <dt>Created</dt><dd>${when(c.created_at)}</dd>
      </dl>
    </div>
    <${Edit} c=${c} path=${path} onChange=${client.reload} onEnrolled=${setCreated} />
    <${Rules} c=${c} />
    <${History} scope=${'client=' + api.seg(c.client_id)} id="history-client" />
    <${Quotas} c=${c} />
    <${Owners} path=${path} />
  </${Page}>`}</${Loaded}>`;
}

function Edit({ c, path, onChange, onEnrolled }) {
  const name = useForm({ name: c.name });
  const addr = useForm({ address: c.address || '' });
  const rename = name.submit(async (v) => {
    await api.patch(path + '/name', { name: v.name.trim() });
    onChange();
  }, { invalid_client_name: 'name', already_exists: 'name' });
  const setAddress = addr.submit(async (v) => {
    await api.put(path, { address: v.address.trim() || null });
    onChange();
  }, { invalid_client_address: 'address' });
  return html`<div class="panel">
    <h2>Manage</h2>
    <form class="row" onSubmit=${rename} novalidate>
      <${Field} label="Name" id="client-name" ...${name.bind('name')} />
      <div class="field act"><button type="submit" disabled=${name.busy}>Rename</button></div>
    </form>
    <${FormError} errors=${name.errors} />
    <form class="row" onSubmit=${setAddress} novalidate>
      <${Field} label="Entry address" id="client-address" hint="Empty clears it." ...${addr.bind('address')} />
      <div class="field act"><button type="submit" disabled=${addr.busy}>Save address</button></div>
    </form>
    <${FormError} errors=${addr.errors} />
    <div class="actions">
      ${!c.revoked && html`<${ConfirmButton} label="Revoke" title=${'Revoke ' + c.name + '?'}
        message="Its credential stops working and its control stream drops at once. Its listeners keep forwarding until it restarts without rules; re-enroll to bring it back."
        confirmLabel="Revoke client" onConfirm=${async () => { await api.post(path + '/revoke'); onChange(); }} />`}
      <${ConfirmButton} label="Re-enroll" danger=${false} title=${'New enrollment for ' + c.name + '?'}
        message="Creates a one-time command; redeeming it replaces the client's credential. Unredeemed older commands stop working."
        confirmLabel="Create enrollment" onConfirm=${async () => { onEnrolled(await api.post(path + '/enrollment', {})); onChange(); }} />
      ${c.revoked && html`<${ConfirmButton} label="Delete" title=${'Delete ' + c.name + '?'}
        message="Removes the revoked client and every rule it had, for good."
        confirmLabel="Delete client" onConfirm=${async () => { await api.del(path); go('clients'); }} />`}
    </div>
  </div>`;
}

function Rules({ c }) {
  const rules = useLoad(() => api.get('/rules?client=' + api.seg(c.client_id)), [c.client_id], POLL_MS);
  return html`<div class="panel"><h2>Rules</h2>
    <${Loaded} load=${rules}>${(rows) => html`<div class="table-wrap"><table>
      <thead><tr><th>Listen</th><th>Protocol</th><th>Targets</th><th>State</th><th>Owner</th></tr></thead>
      <tbody>${rows.length === 0 && html`<tr><td colspan="5" class="muted">No rules on this client.</td></tr>`}
      ${rows.map((r) => html`<tr data-rule=${r.rule_id}>
        <td><a class="mono" href=${'#/rules/' + api.seg(r.rule_id)}>${ruleListen(r)}</a>${r.sni_pattern ? ' · ' + r.sni_pattern : ''}</td><td>${r.protocol}</td>
        <td class="mono small">${r.targets.map((t) => `${t.host}:${t.port}`).join(', ')}</td>
        <td><${RuleState} rule=${r} /></td><td>${r.owner}</td></tr>`)}
      </tbody></table></div>`}</${Loaded}></div>`;
}

function Owners({ path }) {
  const owners = useLoad(() => api.get(path + '/owners'), [path]);
  return html`<div class="panel"><h2>Owner envelopes</h2>
    <${Loaded} load=${owners}>${(rows) => html`<div class="table-wrap"><table>
      <thead><tr><th>Owner</th><th>Rules</th><th>Rate-limit envelope</th></tr></thead>
      <tbody>${rows.length === 0 && html`<tr><td colspan="3" class="muted">No owners on this client.</td></tr>`}
      ${rows.map((o) => html`<tr><td>${o.owner}</td><td>${o.rules}</td>
        <td class="mono small">${o.rate_limit ? Object.entries(o.rate_limit).filter(([, v]) => v != null).map(([k, v]) => `${k}=${v}`).join(' ') : 'none'}</td></tr>`)}
      </tbody></table></div>`}</${Loaded}></div>`;
}

function Quotas({ c }) {
  const quotas = useLoad(() => api.get('/quotas?client=' + api.seg(c.client_id)), [c.client_id], POLL_MS);
  const clear = (q) => async () => {
    await api.post(`/clients/${api.seg(c.client_id)}/owners/${api.seg(q.owner)}/quota/clear-usage`);
    quotas.reload();
  };
  return html`<div class="panel"><h2>Traffic quotas</h2>
    <${Loaded} load=${quotas}>${(rows) => html`<div class="table-wrap"><table id="quotas">
      <thead><tr><th>Owner</th><th>Used</th><th>Limit</th><th>State</th><th>Resets</th><th>Until</th><th></th></tr></thead>
      <tbody>${rows.length === 0 && html`<tr><td colspan="7" class="muted">No quotas on this client (<code>portunus-server quota set</code>).</td></tr>`}
      ${rows.map((q) => html`<tr data-owner=${q.owner}><td>${q.owner}</td><td>${bytes(q.used_bytes)}</td><td>${bytes(q.monthly_bytes)}</td>
        <td><${Badge} kind=${q.state === 'ok' ? 'ok' : 'bad'}>${q.state}</${Badge}></td>
        <td>${q.never_reset ? 'never' : `day ${q.reset_day} (next ${(q.next_reset || "").slice(0, 10)})`}</td><td>${q.until || '—'}</td>
        <td><${ConfirmButton} label="Clear usage" danger=${false} title=${`Clear ${q.owner}'s usage?`}
          message="The current period counts from zero again; if the quota was spent, the owner's rules on this client forward again."
          confirmLabel="Clear usage" onConfirm=${clear(q)} /></td></tr>`)}
      </tbody></table></div>`}</${Loaded}></div>`;
}
