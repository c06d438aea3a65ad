// Audit (superadmin): newest first, filters, cursor paging, live follow
// and an NDJSON download of everything the filters match.

import * as api from '../api.js';
import { Badge, Field, FormError, Page, Problem, Select, errText, html, useEffect, useForm, useState } from '../ui.js';

const FOLLOW_MS = 2000;
/** Most rows one download fetches. */
const DOWNLOAD_MAX = 100000;

function query(filters, extra = {}) {
  const q = new URLSearchParams();
  const iso = (v) => (v ? new Date(v).toISOString() : '');
  const all = { outcome: filters.outcome, actor: filters.actor.trim(), since: iso(filters.since), until: iso(filters.until), ...extra };
  for (const [k, v] of Object.entries(all)) if (v !== '' && v != null) q.set(k, v);
  return '?' + q.toString();
}

export function Audit() {
  const f = useForm({ outcome: '', actor: '', since: '', until: '' });
  const [applied, setApplied] = useState(f.values);
  const [page, setPage] = useState({ entries: [], next: null, error: null, loading: true });
  const [follow, setFollow] = useState(false);
  const [note, setNote] = useState(null);

  const load = async (filters, cursor) => {
    const r = await api.get('/audit' + query(filters, { limit: 100, cursor: cursor || '' }));
    setPage((p) => ({
      entries: cursor ? [...p.entries, ...r.entries] : r.entries,
      next: r.next_cursor,
      error: null,
      loading: false,
    }));
  };
  useEffect(() => {
    load(applied).catch((error) => setPage((p) => ({ ...p, error, loading: false })));
  }, [applied]);
  useEffect(() => {
    if (!follow) return undefined;
    const t = setInterval(async () => {
      try {
        const r = await api.get('/audit' + query(applied, { limit: 100 }));
        setPage((p) => {
          const top = p.entries.length ? p.entries[0].id : 0;
          return { ...p, entries: [...r.entries.filter((e) => e.id > top), ...p.entries] };
        });
      } catch (_) {
        // The next tick tries again; a 401 already went to sign-in.
      }
    }, FOLLOW_MS);
    return () => clearInterval(t);
  }, [follow, applied]);

  const apply = f.submit(async (v) => {
    await api.get('/audit' + query(v, { limit: 1 }));
    setApplied({ ...v });
  }, { since: 'since', until: 'until' });

  const download = async () => {
    setNote('Preparing the download…');
    const lines = [];
    let cursor = '';
    try {
      do {
        const r = await api.get('/audit' + query(applied, { limit: 1000, cursor }));
        for (const e of r.entries) lines.push(JSON.stringify(e));
        cursor = r.next_cursor || '';
      } while (cursor && lines.length < DOWNLOAD_MAX);
    } catch (e) {
      setNote('Download failed: ' + errText(e));
      return;
    }
    const blob = new Blob(lines.map((l) => l + '\n'), { type: 'application/x-ndjson' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `portunus-audit-${new Date().toISOString().replace(/[:.]/g, '-')}.ndjson`;
    a.id = 'audit-download-link';
    document.body.appendChild(a);
    a.click();
    setTimeout(() => {
      URL.revokeObjectURL(a.href);
      a.remove();
    }, 60000);
    setNote(`Downloaded ${lines.length} rows as NDJSON.`);
  };

  return html`<${Page} title="Audit">
    <form class="panel" onSubmit=${apply} novalidate aria-label="Filter the audit trail">
      <div class="filters">
        <${Select} label="Outcome" id="audit-outcome" options=${[['', 'any'], ['allow', 'allow'], ['deny', 'deny']]} ...${f.bind('outcome')} />
        <${Field} label="Actor" id="audit-actor" placeholder="user id" ...${f.bind('actor')} />
        <${Field} label="Since" id="audit-since" type="datetime-local" step="1" ...${f.bind('since')} />
        <${Field} label="Until" id="audit-until" type="datetime-local" step="1" ...${f.bind('until')} />
      </div>
      <${FormError} errors=${f.errors} />
      <div class="actions"><button class="primary" type="submit" disabled=${f.busy}>Apply filters</button>
        <div class="check"><input type="checkbox" id="audit-follow" checked=${follow} onInput=${(e) => setFollow(e.target.checked)} />
          <label for="audit-follow">Live follow</label></div>
        <button type="button" onClick=${download}>Download NDJSON</button>
        <span class="small muted" role="status" id="audit-note">${note}</span></div>
    </form>
    ${page.error && html`<${Problem} error=${page.error} />`}
    <div class="table-wrap"><table class="audit">
      <thead><tr><th>Time</th><th>Actor</th><th>Request</th><th>Outcome</th><th>Reason</th></tr></thead>
      <tbody>${page.entries.length === 0 && !page.loading && html`<tr><td colspan="5" class="muted">No rows match.</td></tr>`}
      ${page.entries.map((e) => html`<tr data-audit=${e.id}><td class="small"><time datetime=${e.at}>${e.at.replace('T', ' ').replace('Z', '')}</time></td>
        <td>${e.actor || '—'}</td><td class="mono small">${e.method} ${e.path}</td>
        <td><${Badge} kind=${e.outcome === 'allow' ? 'ok' : 'bad'}>${e.outcome}</${Badge}></td><td class="mono small">${e.reason}</td></tr>`)}
      </tbody></table></div>
    ${page.next && html`<div class="actions"><button type="button" onClick=${() => load(applied, page.next)}>Older</button></div>`}
  </${Page}>`;
}
