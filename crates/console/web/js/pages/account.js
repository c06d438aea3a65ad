// My account: who I am, my password, and my API tokens (issued tokens are
// shown once).

import * as api from '../api.js';
import {
  ConfirmButton, Field, FormError, Loaded, Notice, Page, ShownOnce, html, useForm, useLoad, useState, when,
} from '../ui.js';
import { PasswordForm } from './signin.js';

export function Account({ me }) {
  const [changed, setChanged] = useState(false);
  return html`<${Page} title="My account">
    <div class="panel">
      <dl class="facts">
        <dt>User id</dt><dd class="mono">${me.user_id}</dd>
        <dt>Display name</dt><dd>${me.display_name}</dd>
        <dt>Role</dt><dd>${me.role}</dd>
      </dl>
    </div>
    <div class="panel">
      <h2>Password</h2>
      ${changed && html`<${Notice} kind="ok">Password changed. Your other sessions were signed out.</${Notice}>`}
      <${PasswordForm} onDone=${() => setChanged(true)} />
    </div>
    <${Tokens} me=${me} />
  </${Page}>`;
}

function Tokens({ me }) {
  const path = `/users/${api.seg(me.user_id)}/credentials`;
  const list = useLoad(() => api.get(path), [path]);
  const [issued, setIssued] = useState(null);
  const f = useForm({ label: '' });
  const issue = f.submit(async (v) => {
    setIssued(await api.post(path, { label: v.label }));
    f.reset();
    list.reload();
  });
  const revoke = async (c) => {
    await api.del(`${path}/${api.seg(c.credential_id)}`);
    list.reload();
  };
  return html`<div class="panel">
    <h2>API tokens</h2>
    <p class="muted small">For the CLI and automation: <code>PORTUNUS_OPERATOR_TOKEN</code>. The console itself uses your session.</p>
    ${issued && html`<${ShownOnce} title=${'New token: ' + issued.label} value=${issued.token}>
      Store it now; to replace it, issue another and revoke this one.</${ShownOnce}>`}
    <${Loaded} load=${list}>${(rows) => html`<div class="table-wrap"><table>
      <thead><tr><th>Label</th><th>Id</th><th>Created</th><th>State</th><th></th></tr></thead>
      <tbody>${rows.length === 0 && html`<tr><td colspan="5" class="muted">No tokens.</td></tr>`}
        ${rows.map((c) => html`<tr data-credential=${c.credential_id}>
          <td>${c.label}</td><td class="mono small">${c.credential_id}</td><td>${when(c.created_at)}</td>
          <td>${c.revoked_at ? 'revoked' : 'active'}</td>
          <td>${!c.revoked_at && html`<${ConfirmButton} label="Revoke" title=${'Revoke ' + c.label + '?'}
            message="Requests with this token fail at once." confirmLabel="Revoke token" onConfirm=${() => revoke(c)} />`}</td>
        </tr>`)}</tbody></table></div>`}</${Loaded}>
    <form onSubmit=${issue} novalidate class="row">
      <${Field} label="New token label" id="token-label" hint="What will use it, e.g. ci or laptop." ...${f.bind('label')} />
      <div class="field act"><button class="primary" type="submit" disabled=${f.busy}>Issue token</button></div>
    </form>
    <${FormError} errors=${f.errors} />
  </div>`;
}
