// Sign in with a local password (the server sets an HttpOnly session
// cookie), and the password change a temporary password forces.

import * as api from '../api.js';
import { Field, FormError, Notice, html, useForm } from '../ui.js';

export function SignIn({ notice, onDone }) {
  const f = useForm({ user_id: '', password: '' });
  const save = f.submit(async (v) => {
    await api.post('/auth/login', v);
    onDone();
  });
  return html`<main class="narrow"><div class="panel">
    <h1 id="page-title">Sign in to Portunus</h1>
    ${notice && html`<${Notice} kind="warn">${notice}</${Notice}>`}
    <form onSubmit=${save} novalidate>
      <${Field} label="User id" autocomplete="username" ...${f.bind('user_id')} />
      <${Field} label="Password" type="password" autocomplete="current-password" ...${f.bind('password')} />
      <${FormError} errors=${f.errors} />
      <div class="actions"><button class="primary" type="submit" disabled=${f.busy}>Sign in</button></div>
    </form>
  </div></main>`;
}

/** Current password, new password twice; `onDone` after the change. */
export function PasswordForm({ onDone, submitLabel = 'Change password' }) {
  const f = useForm({ current_password: '', new_password: '', confirm: '' });
  const save = f.submit(
    async (v) => {
      if (v.new_password !== v.confirm) {
        f.setErrors({ confirm: 'The two passwords differ.' });
        return;
      }
      await api.post('/users/me/password', { current_password: v.current_password, new_password: v.new_password });
      f.reset();
      onDone();
    },
    { forbidden: 'current_password', password_too_weak: 'new_password' },
  );
  return html`<form onSubmit=${save} novalidate>
    <${Field} label="Current password" type="password" id="pw-current" autocomplete="current-password" ...${f.bind('current_password')} />
    <${Field} label="New password" type="password" id="pw-new" autocomplete="new-password" hint="At least 12 characters." ...${f.bind('new_password')} />
    <${Field} label="Repeat the new password" type="password" id="pw-confirm" autocomplete="new-password" ...${f.bind('confirm')} />
    <${FormError} errors=${f.errors} />
    <div class="actions"><button class="primary" type="submit" disabled=${f.busy}>${submitLabel}</button></div>
  </form>`;
}

export function ChangePassword({ me, onDone, onSignOut }) {
  return html`<main class="narrow"><div class="panel">
    <h1 id="page-title">Choose a new password</h1>
    <p>${me.display_name}, your password is temporary. Choose your own before going on;
      until then nothing else is open to this session.</p>
    <${PasswordForm} onDone=${onDone} submitLabel="Save and continue" />
    <div class="actions"><button type="button" onClick=${onSignOut}>Sign out</button></div>
  </div></main>`;
}
