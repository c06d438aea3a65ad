// Settings → "Client connect address": the advertised endpoint clients
// dial, its source, and the operator's override.

import * as api from '../api.js';
import { FormError, Field, Loaded, Notice, Page, html, useForm, useLoad, useState } from '../ui.js';

const PATH = '/settings/advertised-endpoint';

const SOURCES = {
  override: 'the override saved here',
  seed: 'the --advertised-endpoint flag or PORTUNUS_ADVERTISED_ENDPOINT',
  derived: "the Host of the request that creates an enrollment (this page's host)",
  loopback: 'the loopback fallback (127.0.0.1 and the control port)',
};

export function Settings() {
  const load = useLoad(() => api.get(PATH), []);
  return html`<${Page} title="Settings">
    <${Loaded} load=${load}>${(s) => html`<${ConnectAddress} s=${s} reload=${load.reload} />`}</${Loaded}>
  </${Page}>`;
}

function ConnectAddress({ s, reload }) {
  const f = useForm({ advertised_endpoint: s.override || '' });
  const [saved, setSaved] = useState(null);
  const fields = { endpoint_invalid: 'advertised_endpoint', endpoint_not_in_cert_san: 'advertised_endpoint' };
  const save = f.submit(async (v) => {
    const r = await api.put(PATH, { advertised_endpoint: v.advertised_endpoint.trim() || null });
    setSaved(r.override ? `Saved: clients enrolled from now on dial ${r.effective}.` : 'Override cleared.');
    reload();
  }, fields);
  const clear = f.submit(async () => {
    await api.put(PATH, { advertised_endpoint: null });
    f.setValues({ advertised_endpoint: '' });
    setSaved('Override cleared.');
    reload();
  }, fields);
  return html`<section class="panel" aria-labelledby="connect-h">
    <h2 id="connect-h">Client connect address</h2>
    <p class="muted small">The host:port edge clients dial for the control stream, written into every new
      enrollment command. It is not this console's address. Existing enrollments keep the address they were
      created with.</p>
    <dl class="facts" id="endpoint-facts">
      <dt>Effective</dt><dd class="mono" id="endpoint-effective">${s.effective || 'none'}</dd>
      <dt>Source</dt><dd id="endpoint-source">${s.source ? `${s.source}: ${SOURCES[s.source] || ''}` : '—'}</dd>
      <dt>Override</dt><dd class="mono">${s.override || 'none'}</dd>
    </dl>
    ${s.source === 'loopback' && html`<p class="small" id="endpoint-derive">With no override and no seed,
      enrollments created from this console derive the address from the host this page was opened at
      (<code>${location.hostname}</code>, with the control port) when the certificate covers it, and
      fall back to the value above otherwise.</p>`}
    ${s.effective == null && html`<${Notice} kind="error"><strong>No address can be advertised.</strong>
      ${s.diagnostic} Enrollments fail until this is fixed: reissue the server certificate with a SAN that
      covers the host, or set an override it covers.</${Notice}>`}
    ${saved && html`<${Notice} kind="ok">${saved}</${Notice}>`}
    <form onSubmit=${save} novalidate>
      <${Field} label="Override (host:port)" placeholder="proxy.example.com:34567" spellcheck="false"
        hint="Leave empty to derive it from this page's host. The host must be covered by the server certificate's SAN."
        ...${f.bind('advertised_endpoint')} />
      <${FormError} errors=${f.errors} />
      <div class="actions"><button class="primary" type="submit" disabled=${f.busy}>Save</button>
        ${s.override && html`<button type="button" onClick=${clear} disabled=${f.busy}>Clear override</button>`}</div>
    </form>
  </section>`;
}
