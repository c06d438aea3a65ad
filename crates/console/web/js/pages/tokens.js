// A user's API tokens: list, issue (shown once), rotate (the old token
// stops at once, the new one is shown once) and revoke.

import * as api from '../api.js';
import { ConfirmButton, Field, FormError, Loaded, ShownOnce, html, useForm, useLoad, useState, when } from '../ui.js';

export function Tokens({ userId, title = 'API tokens', children }) {
  const path = `/users/${api.seg(userId)}/credentials`;
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
  const rotate = async (c) => {
    setIssued(await api.post(`${path}/${api.seg(c.credential_id)}/rotate`));
    list.reload();
  };
  return html`<div class="panel">
    <h2>${title}</h2>
    ${children}
    ${issued && html`<${ShownOnce} title=${'New token: ' + issued.label} value=${issued.token}>
      Store it now; to replace it, rotate or issue another and revoke this one.</${ShownOnce}>`}
    <${Loaded} load=${list}>${(rows) => html`<div class="table-wrap"><table class="tokens">
      <thead><tr><th>Label</th><th class="hide-sm">Id</th><th>Created</th><th>State</th><th></th></tr></thead>
      <tbody>${rows.length === 0 && html`<tr><td colspan="5" class="muted">No tokens.</td></tr>`}
        ${rows.map((c) => html`<tr data-credential=${c.credential_id}>
          <td>${c.label}</td><td class="mono small hide-sm">${c.credential_id}</td><td>${when(c.created_at)}</td>
          <td>${c.revoked_at ? 'revoked' : c.rotated_at ? html`rotated ${when(c.rotated_at)}` : 'active'}</td>
          <td>${!c.revoked_at && html`<div class="actions">
            <${ConfirmButton} label="Rotate" danger=${false} title=${'Rotate ' + c.label + '?'}
              message="The current token stops working at once; the new one is shown once." confirmLabel="Rotate token" onConfirm=${() => rotate(c)} />
            <${ConfirmButton} label="Revoke" title=${'Revoke ' + c.label + '?'}
              message="Requests with this token fail at once." confirmLabel="Revoke token" onConfirm=${() => revoke(c)} /></div>`}</td>
        </tr>`)}</tbody></table></div>`}</${Loaded}>
    <form onSubmit=${issue} novalidate class="row">
      <${Field} label="New token label" id="token-label" hint="What will use it, e.g. ci or laptop." ...${f.bind('label')} />
      <div class="field act"><button class="primary" type="submit" disabled=${f.busy}>Issue token</button></div>
    </form>
    <${FormError} errors=${f.errors} />
  </div>`;
}
