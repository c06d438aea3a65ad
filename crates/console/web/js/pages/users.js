// Users (superadmin): the list, and adding a user with a temporary
// password shown once.

import * as api from '../api.js';
import { Badge, Field, FormError, Loaded, Page, Select, ShownOnce, html, useForm, useLoad, useState } from '../ui.js';

export function UserBadges({ user }) {
  return html`${user.disabled && html`<${Badge} kind="bad">disabled</${Badge}> `}
    ${user.password_change_required && html`<${Badge} kind="warn">temporary password</${Badge}> `}
    ${!user.password_set && html`<${Badge} kind="off">token only</${Badge}>`}`;
}

export function Users() {
  const list = useLoad(() => api.get('/users'), []);
  const [adding, setAdding] = useState(false);
  const [created, setCreated] = useState(null);
  return html`<${Page} title="Users" actions=${html`<button type="button" class="primary" onClick=${() => setAdding(true)}>Add user</button>`}>
    ${created && html`<${ShownOnce} title=${`Temporary password for ${created.user_id}`} value=${created.temporary_password}>
      Hand it over safely; ${created.user_id} chooses a new one at first sign-in.</${ShownOnce}>`}
    ${adding && html`<${AddUser} onCancel=${() => setAdding(false)} onCreated=${(u) => { setCreated(u); setAdding(false); list.reload(); }} />`}
    <${Loaded} load=${list}>${(rows) => html`<div class="table-wrap"><table class="users">
      <thead><tr><th>User id</th><th>Display name</th><th>Role</th><th>State</th></tr></thead>
      <tbody>${rows.map((u) => html`<tr data-user=${u.user_id}>
        <td><a class="mono" href=${'#/users/' + api.seg(u.user_id)}>${u.user_id}</a></td><td>${u.display_name}</td>
        <td>${u.role}</td><td><${UserBadges} user=${u} /></td></tr>`)}</tbody></table></div>`}</${Loaded}>
  </${Page}>`;
}

function AddUser({ onCreated, onCancel }) {
  const f = useForm({ user_id: '', display_name: '', role: 'user' });
  const save = f.submit(async (v) => onCreated(await api.post('/users', v)), {
    invalid_user_id: 'user_id', already_exists: 'user_id',
  });
  return html`<form class="panel" onSubmit=${save} novalidate aria-label="Add a user">
    <h2>Add a user</h2>
    <div class="row">
      <${Field} label="User id" id="user-id" ...${f.bind('user_id')} />
      <${Field} label="Display name" id="user-name" ...${f.bind('display_name')} />
      <${Select} label="Role" id="user-role" options=${[['user', 'user'], ['superadmin', 'superadmin']]} ...${f.bind('role')} />
    </div>
    <${FormError} errors=${f.errors} />
    <div class="actions"><button class="primary" type="submit" disabled=${f.busy}>Add user</button>
      <button type="button" onClick=${onCancel}>Cancel</button></div>
  </form>`;
}
