// The console's shell: who is signed in, the role-aware navigation and the
// hash router. Every page lives in its own module under pages/.

import { html, render, useEffect, useState } from '../vendor/preact-htm.js';
import * as api from './api.js';
import { Notice, errText, go } from './ui.js';
import { Onboarding } from './pages/onboarding.js';
import { SignIn, ChangePassword } from './pages/signin.js';
import { Account } from './pages/account.js';
import { Api } from './pages/api.js';
import { Audit } from './pages/audit.js';
import { Clients } from './pages/clients.js';
import { Client } from './pages/client.js';
import { Dashboard } from './pages/dashboard.js';
import { Rule } from './pages/rule.js';
import { Rules } from './pages/rules.js';
import { Settings } from './pages/settings.js';
import { User } from './pages/user.js';
import { Users } from './pages/users.js';

// Pages, in navigation order; `admin` pages are offered to superadmins only
// (the API refuses the rest anyway, and the page says so).
const PAGES = [
  { path: 'dashboard', title: 'Dashboard', view: Dashboard },
  { path: 'rules', title: 'Rules', view: Rules },
  { path: 'rules/:id', view: Rule },
  { path: 'clients', title: 'Clients', admin: true, view: Clients },
  { path: 'clients/:id', view: Client },
  { path: 'users', title: 'Users', admin: true, view: Users },
  { path: 'users/:id', view: User },
  { path: 'audit', title: 'Audit', admin: true, view: Audit },
  { path: 'settings', title: 'Settings', admin: true, view: Settings },
  { path: 'account', title: 'My account', view: Account },
  { path: 'api', title: 'API', view: Api },
];

function match(hash) {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  for (const page of PAGES) {
    const want = page.path.split('/');
    if (want.length !== parts.length) continue;
    const params = {};
    if (want.every((w, i) => (w.startsWith(':') ? ((params[w.slice(1)] = parts[i]), true) : w === parts[i]))) {
      return { page, params };
    }
  }
  return null;
}

function useHash() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function Nav({ me, hash, onSignOut }) {
  const admin = me.role === 'superadmin';
  const current = hash.replace(/^#\/?/, '').split('/')[0];
  return html`<header class="top">
    <a class="skip" href="#page-title">Skip to content</a>
    <a class="brand" href="#/">Portunus</a>
    <nav class="main" aria-label="Main">
      ${PAGES.filter((p) => p.title && (admin || !p.admin)).map(
        (p) => html`<a href=${'#/' + p.path} aria-current=${current === p.path ? 'page' : undefined}>${p.title}</a>`,
      )}
    </nav>
    <span class="who"><span class="small" data-user=${me.user_id}>${me.display_name} (${me.role})</span>
      <button type="button" onClick=${onSignOut}>Sign out</button></span>
  </header>`;
}

function useRoute(me) {
  const hash = useHash();
  const home = 'dashboard';
  useEffect(() => {
    if (!match(hash)) go(home);
  }, [hash]);
  const m = match(hash);
  useEffect(() => {
    const h = document.getElementById('page-title');
    if (h && document.activeElement === document.body) h.focus();
  }, [hash]);
  return { hash, view: m ? html`<${m.page.view} me=${me} ...${m.params} />` : null };
}

function Shell({ me, build, onSignOut }) {
  const { hash, view } = useRoute(me);
  return html`<${Nav} me=${me} hash=${hash} onSignOut=${onSignOut} />
    <main id="main">${view}</main>
    ${build && html`<footer class="small muted build" id="build">portunus-server ${build.version} (commit ${build.commit}, built ${build.build_date})</footer>`}`;
}

function App() {
  // loading | onboarding | signin | change | ready | down
  const [state, setState] = useState({ phase: 'loading' });

  const load = async (notice) => {
    try {
      const status = await api.get('/auth/status');
      if (status.onboarding_required) return setState({ phase: 'onboarding' });
      const me = await api.get('/users/me');
      setState({ phase: me.password_change_required ? 'change' : 'ready', me, build: status });
    } catch (e) {
      if (e instanceof api.ApiError && e.status === 401) return setState({ phase: 'signin', notice });
      setState({ phase: 'down', error: e });
    }
  };

  useEffect(() => {
    api.onUnauthenticated(() =>
      setState({ phase: 'signin', notice: 'Your session expired or was ended. Sign in again.' }),
    );
    load();
  }, []);

  const signOut = async () => {
    try {
      await api.post('/auth/logout');
    } catch (_) {
      // Signed out either way: the cookie is gone or was never valid.
    }
    setState({ phase: 'signin', notice: 'You are signed out.' });
  };

  switch (state.phase) {
    case 'loading':
      return html`<p class="boot">Loading…</p>`;
    case 'onboarding':
      return html`<${Onboarding} onDone=${() => load()} />`;
    case 'signin':
      return html`<${SignIn} notice=${state.notice} onDone=${() => load()} />`;
    case 'change':
      return html`<${ChangePassword} me=${state.me} onDone=${() => load()} onSignOut=${signOut} />`;
    case 'ready':
      return html`<${Shell} me=${state.me} build=${state.build} onSignOut=${signOut} />`;
    default:
      return html`<main class="narrow"><${Notice} kind="error">${errText(state.error)}</${Notice}>
        <button type="button" onClick=${() => load()}>Retry</button></main>`;
  }
}

render(html`<${App} />`, document.getElementById('app'));
