// Clients: the live fleet list and the one-time enrollment command.

import * as api from '../api.js';
import {
  Badge, CopyButton, Field, FormError, Loaded, Page, html, mmss, useCountdown, useForm, useLoad, useState, when,
} from '../ui.js';

/** How often the fleet list refreshes, in milliseconds. */
export const POLL_MS = 2000;

export function clientState(c) {
  if (c.revoked) return ['revoked', 'bad'];
  if (c.connected) return ['connected', 'ok'];
  if (!c.enrolled) return ['awaiting enrollment', 'warn'];
  return ['offline', 'off'];
}

export function ClientBadge({ client }) {
  const [text, kind] = clientState(client);
  return html`<${Badge} kind=${kind}>${text}</${Badge}>`;
}

export function Clients() {
  const list = useLoad(() => api.get('/clients'), [], POLL_MS);
  const [filter, setFilter] = useState('');
  const [enrolling, setEnrolling] = useState(false);
  const [created, setCreated] = useState(null);
  const q = filter.trim().toLowerCase();
  const shown = (rows) =>
    rows.filter((c) =>
      !q || [c.name, c.client_id, c.address, c.remote_addr, clientState(c)[0]].some((v) => v && v.toLowerCase().includes(q)),
    );
  return html`<${Page} title="Clients" actions=${html`<button type="button" class="primary" onClick=${() => setEnrolling(true)}>Enroll client</button>`}>
    ${created && html`<${EnrollCommand} created=${created} onClose=${() => setCreated(null)} />`}
    ${enrolling && html`<${EnrollForm} onCancel=${() => setEnrolling(false)}
      onCreated=${(c) => { setCreated(c); setEnrolling(false); list.reload(); }} />`}
    <div class="field"><label for="client-filter">Filter</label>
      <input id="client-filter" type="search" value=${filter} onInput=${(e) => setFilter(e.target.value)}
        placeholder="name, address, state" /></div>
    <${Loaded} load=${list}>${(rows) => html`<div class="table-wrap"><table class="clients">
      <thead><tr><th>Name</th><th>State</th><th>Remote address</th><th class="hide-sm">Since</th><th class="hide-sm">Entry address</th></tr></thead>
      <tbody>
        ${rows.length === 0 && html`<tr><td colspan="5" class="muted">No clients yet: enroll the first edge.</td></tr>`}
        ${shown(rows).map((c) => html`<tr data-client=${c.name}>
          <td><a href=${'#/clients/' + api.seg(c.client_id)}>${c.name}</a></td>
          <td><${ClientBadge} client=${c} /></td>
          <td class="mono small">${c.remote_addr || '—'}</td>
          <td class="hide-sm">${c.connected ? when(c.connected_since) : '—'}</td>
          <td class="hide-sm mono small">${c.address || '—'}</td>
        </tr>`)}
      </tbody></table></div>
      <p class="muted small">${shown(rows).length} of ${rows.length} shown · refreshed every ${POLL_MS / 1000} s</p>`}
    </${Loaded}>
  </${Page}>`;
}

function EnrollForm({ onCreated, onCancel }) {
  const f = useForm({ name: '', address: '', ttl_secs: '600' });
  const save = f.submit(
    async (v) => {
      const body = { name: v.name.trim() };
      if (v.address.trim()) body.address = v.address.trim();
      if (v.ttl_secs.trim()) body.ttl_secs = Number(v.ttl_secs);
      onCreated(await api.post('/client-enrollments', body));
    },
    { invalid_client_name: 'name', invalid_client_address: 'address', invalid_ttl: 'ttl_secs' },
  );
  return html`<form class="panel" onSubmit=${save} novalidate aria-label="Enroll a client">
    <h2>Enroll a client</h2>
    <div class="row">
      <${Field} label="Client name" id="enroll-name" hint="e.g. edge-01" ...${f.bind('name')} />
      <${Field} label="Entry address (optional)" id="enroll-address" hint="The host users reach this edge at." ...${f.bind('address')} />
      <${Field} label="Valid for (seconds)" id="enroll-ttl" type="number" min="1" max="86400" ...${f.bind('ttl_secs')} />
    </div>
    <${FormError} errors=${f.errors} />
    <div class="actions"><button class="primary" type="submit" disabled=${f.busy}>Create enrollment</button>
      <button type="button" onClick=${onCancel}>Cancel</button></div>
  </form>`;
}

/** The one-time command, shown once, with its expiry counting down. */
export function EnrollCommand({ created, onClose }) {
  const left = useCountdown(created.expires_at);
  return html`<div class="panel once" role="region" aria-label="Enrollment command">
    <h2>Run this on ${created.client_name}</h2>
    <pre class="cmd" tabindex="0" id="enroll-command">${created.command}</pre>
    <div class="actions"><${CopyButton} text=${created.command} label="Copy command" /></div>
    <p class="small" aria-live="polite">${left > 0
      ? html`One use; expires in <strong class="countdown">${mmss(left)}</strong>.`
      : html`<strong>Expired.</strong> Re-enroll the client for a new command.`}${' '}
      Shown this once: the server keeps only a hash of the code.</p>
    <div class="actions"><button type="button" onClick=${onClose}>Done</button></div>
  </div>`;
}
