// First run: while no superadmin exists, the setup token printed by
// `serve` creates the first one, who is then signed in.

import * as api from '../api.js';
import { Field, FormError, html, useForm } from '../ui.js';

export function Onboarding({ onDone }) {
  const f = useForm({ setup_token: '', user_id: '', display_name: '', password: '', confirm: '' });
  const save = f.submit(
    async (v) => {
      if (v.password !== v.confirm) {
        f.setErrors({ confirm: 'The two passwords differ.' });
        return;
      }
      const { confirm: _, ...body } = v;
      body.setup_token = body.setup_token.trim();
      await api.post('/auth/onboarding', body);
      await api.post('/auth/login', { user_id: v.user_id, password: v.password });
      onDone();
    },
    { setup_token_invalid: 'setup_token', superadmin_exists: 'setup_token', invalid_user_id: 'user_id' },
  );
  return html`<main class="narrow"><div class="panel">
    <h1 id="page-title">Set up Portunus</h1>
    <p>Create the first superadmin. The setup token is the line
      <code>First-run setup token</code> that <code>portunus-server serve</code> printed
      (valid 30 minutes; restart <code>serve</code> for a new one).</p>
    <form onSubmit=${save} novalidate>
      <${Field} label="Setup token" autocomplete="off" spellcheck="false" ...${f.bind('setup_token')} />
      <${Field} label="User id" hint="Lowercase letters, digits, - and _; starts with a letter." autocomplete="username" ...${f.bind('user_id')} />
      <${Field} label="Display name" autocomplete="name" ...${f.bind('display_name')} />
      <${Field} label="Password" type="password" autocomplete="new-password" hint="At least 12 characters." ...${f.bind('password')} />
      <${Field} label="Repeat the password" type="password" autocomplete="new-password" ...${f.bind('confirm')} />
      <${FormError} errors=${f.errors} />
      <div class="actions"><button class="primary" type="submit" disabled=${f.busy}>Create superadmin</button></div>
    </form>
  </div></main>`;
}
