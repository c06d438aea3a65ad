// My account: who I am, my password, and my API tokens.

import { Notice, Page, html, useState } from '../ui.js';
import { PasswordForm } from './signin.js';
import { Tokens } from './tokens.js';

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
    <${Tokens} userId=${me.user_id}>
      <p class="muted small">For the CLI and automation: <code>PORTUNUS_OPERATOR_TOKEN</code>. The console itself uses your session.</p>
    </${Tokens}>
  </${Page}>`;
}
