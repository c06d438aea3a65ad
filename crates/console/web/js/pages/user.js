// One user (superadmin): profile, role, disable, password reset, removal
// with a preview of what it takes along, API tokens, grants and the
// owner's rate-limit envelopes on each client.

import * as api from '../api.js';
import {
  ConfirmButton, Field, FormError, Loaded, Notice, Page, Select, ShownOnce, go, html, useForm, useLoad, useState, when,
} from '../ui.js';
import { CAP_FIELDS, CapFields, capsOf } from './rule_form.js';
import { Tokens } from './tokens.js';
import { UserBadges } from './users.js';
import { ruleListen } from './rules.js';

export function User({ id }) {
  const path = '/users/' + api.seg(id);
  const user = useLoad(() => api.get(path), [path]);
  return html`<${Loaded} load=${user}>${(u) => html`<${Page} title=${'User ' + u.user_id}>
    <p><a href="#/users">← All users</a></p>
    <${Profile} u=${u} path=${path} reload=${user.reload} />
    <${Tokens} userId=${u.user_id} />
    <${Grants} userId=${u.user_id} />
    <${OwnerCaps} userId=${u.user_id} />
  </${Page}>`}</${Loaded}>`;
}

function Profile({ u, path, reload }) {
  const f = useForm({ display_name: u.display_name, role: u.role });
  const [temp, setTemp] = useState(null);
  const save = f.submit(async (v) => {
    await api.patch(path, v);
    reload();
  }, { last_superadmin: 'role' });
  const preview = useLoad(
    () => Promise.all([api.get('/rules?owner=' + api.seg(u.user_id)), api.get('/grants?user_id=' + api.seg(u.user_id))]),
    [u.user_id],
  );
  const [rules, grants] = preview.data || [[], []];
  return html`<div class="panel">
    <dl class="facts"><dt>State</dt><dd><${UserBadges} user=${u} />${!u.disabled && 'enabled'}</dd>
      <dt>Created</dt><dd>${when(u.created_at)}</dd></dl>
    ${temp && html`<${ShownOnce} title=${'Temporary password for ' + u.user_id} value=${temp}>
      Their sessions were ended; they choose a new password at sign-in.</${ShownOnce}>`}
    <form class="row" onSubmit=${save} novalidate>
      <${Field} label="Display name" id="profile-name" ...${f.bind('display_name')} />
      <${Select} label="Role" id="profile-role" options=${[['user', 'user'], ['superadmin', 'superadmin']]} ...${f.bind('role')} />
      <div class="field act"><button type="submit" disabled=${f.busy}>Save</button></div>
    </form>
    <${FormError} errors=${f.errors} />
    <div class="actions">
      <${ConfirmButton} label="Reset password" danger=${false} title=${'Reset the password of ' + u.user_id + '?'}
        message="A temporary password replaces the current one, shown once; every session of the user ends."
        confirmLabel="Reset password" onConfirm=${async () => { setTemp((await api.post(path + '/password', {})).temporary_password); reload(); }} />
      <${ConfirmButton} label=${u.disabled ? 'Enable' : 'Disable'} danger=${!u.disabled} title=${(u.disabled ? 'Enable ' : 'Disable ') + u.user_id + '?'}
        message=${u.disabled ? 'The user can sign in and use their tokens again.' : 'Sign-in and every token of the user stop working; their rules keep forwarding.'}
        confirmLabel=${u.disabled ? 'Enable user' : 'Disable user'} onConfirm=${async () => { await api.patch(path, { disabled: !u.disabled }); reload(); }} />
      <${ConfirmButton} label="Remove user" title=${'Remove ' + u.user_id + '?'}
        message=${html`<span id="remove-preview">This removes ${rules.length} rule${rules.length === 1 ? '' : 's'} (their listeners close on their edges)
          and ${grants.length} grant${grants.length === 1 ? '' : 's'}, and every token and session of the user.
          ${rules.length > 0 && html`<br />Rules: ${rules.map((r) => `${r.client} ${r.protocol} ${ruleListen(r)}`).join(', ')}`}</span>`}
        confirmLabel="Remove user" onConfirm=${async () => { await api.del(path); go('users'); }} />
    </div>
  </div>`;
}

function Grants({ userId }) {
  const list = useLoad(() => api.get('/grants?user_id=' + api.seg(userId)), [userId]);
  const f = useForm({ client: '*', listen_port_start: '', listen_port_end: '', tcp: true, udp: false });
  const add = f.submit(async (v) => {
    await api.post('/grants', {
      user_id: userId,
      client: v.client.trim(),
      listen_port_start: Number(v.listen_port_start),
      listen_port_end: Number(v.listen_port_end || v.listen_port_start),
      protocols: [v.tcp && 'tcp', v.udp && 'udp'].filter(Boolean),
    });
    f.reset();
    list.reload();
  }, { client_not_found: 'client', invalid_port: 'listen_port_start', range_invalid: 'listen_port_end', protocols: 'tcp', invalid_protocol: 'tcp' });
  return html`<div class="panel"><h2>Grants</h2>
    <p class="muted small">A user may push a rule when one grant covers its client, its whole listen range and its protocol.</p>
    <${Loaded} load=${list}>${(rows) => html`<div class="table-wrap"><table class="grants">
      <thead><tr><th>Client</th><th>Ports</th><th>Protocols</th><th></th></tr></thead>
      <tbody>${rows.length === 0 && html`<tr><td colspan="4" class="muted">No grants.</td></tr>`}
      ${rows.map((g) => html`<tr data-grant=${g.grant_id}><td>${g.client}</td><td class="mono">${g.listen_port_start}-${g.listen_port_end}</td>
        <td>${g.protocols.join(', ')}</td><td><${ConfirmButton} label="Revoke" title="Revoke this grant?"
          message="Rules that depended on it are removed from their clients." confirmLabel="Revoke grant"
          onConfirm=${async () => { await api.del('/grants/' + api.seg(g.grant_id)); list.reload(); }} /></td></tr>`)}
      </tbody></table></div>`}</${Loaded}>
    <form onSubmit=${add} novalidate>
      <div class="row">
        <${Field} label="Client (name or *)" id="grant-client" ...${f.bind('client')} />
        <${Field} label="First port" id="grant-start" type="number" min="1" max="65535" ...${f.bind('listen_port_start')} />
        <${Field} label="Last port" id="grant-end" type="number" min="1" max="65535" ...${f.bind('listen_port_end')} />
      </div>
      <div class="row">
        <div class="check"><input type="checkbox" id="grant-tcp" checked=${f.values.tcp} onInput=${f.bind('tcp').onInput} /><label for="grant-tcp">TCP</label></div>
        <div class="check"><input type="checkbox" id="grant-udp" checked=${f.values.udp} onInput=${f.bind('udp').onInput} /><label for="grant-udp">UDP</label></div>
        ${f.errors.tcp && html`<span class="error" role="alert">${f.errors.tcp}</span>`}
      </div>
      <${FormError} errors=${f.errors} />
      <div class="actions"><button class="primary" type="submit" disabled=${f.busy}>Add grant</button></div>
    </form>
  </div>`;
}

function OwnerCaps({ userId }) {
  const load = useLoad(async () => {
    const clients = await api.get('/clients');
    const owners = await Promise.all(clients.map((c) => api.get(`/clients/${api.seg(c.client_id)}/owners`)));
    return { clients, envelopes: owners.flat().filter((o) => o.owner === userId && o.rate_limit) };
  }, [userId]);
  const f = useForm({ client: '', ...Object.fromEntries(Object.values(CAP_FIELDS).map((k) => [k, ''])) });
  const [done, setDone] = useState(null);
  const capPath = (client) => `/clients/${api.seg(client)}/owners/${api.seg(userId)}/rate-limit`;
  const save = f.submit(async (v) => {
    setDone(null);
    await api.put(capPath(v.client.trim()), capsOf(v) || {});
    setDone(`Envelope on ${v.client} saved.`);
    load.reload();
  }, { client_not_found: 'client', 'validation.rate_limit_no_caps_provided': '', ...Object.fromEntries(Object.values(CAP_FIELDS).map((k) => [k, k])) });
  return html`<div class="panel"><h2>Owner caps</h2>
    <p class="muted small">An envelope caps the sum of this user's rules on one client, before per-rule caps.</p>
    <${Loaded} load=${load}>${(d) => html`<div class="table-wrap"><table class="envelopes">
      <thead><tr><th>Client</th><th>Envelope</th><th></th></tr></thead>
      <tbody>${d.envelopes.length === 0 && html`<tr><td colspan="3" class="muted">No envelopes.</td></tr>`}
      ${d.envelopes.map((o) => html`<tr><td>${o.client}</td>
        <td class="mono small">${Object.entries(o.rate_limit).filter(([, x]) => x != null).map(([k, x]) => `${k}=${x}`).join(' ')}</td>
        <td><${ConfirmButton} label="Delete" title=${'Delete the envelope on ' + o.client + '?'} message="The user's rules there are capped only by their own caps."
          confirmLabel="Delete envelope" onConfirm=${async () => { await api.del(capPath(o.client)); load.reload(); }} /></td></tr>`)}
      </tbody></table></div>
      <form onSubmit=${save} novalidate>
        <${Select} label="Client" id="cap-client" options=${[['', 'choose a client'], ...d.clients.map((c) => [c.name, c.name])]} ...${f.bind('client')} />
        <${CapFields} f=${f} prefix="env-" />
        <${FormError} errors=${f.errors} />
        ${done && html`<${Notice} kind="ok">${done}</${Notice}>`}
        <div class="actions"><button class="primary" type="submit" disabled=${f.busy}>Set envelope</button></div>
      </form>`}</${Loaded}>
  </div>`;
}
