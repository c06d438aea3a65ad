// API: the operator API's own OpenAPI document, rendered as a reference.
// Every operation by tag, with who may call it, what it takes and every
// status and error code it answers with. The document is the contract;
// this page only reads it.

import * as api from '../api.js';
import { Field, Loaded, Page, html, useLoad, useState } from '../ui.js';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];
const REF = '#/components/schemas/';

/** The schema a `$ref` names, or the schema itself. */
function resolve(doc, s) {
  return s && s.$ref ? doc.components.schemas[s.$ref.slice(REF.length)] || {} : s || {};
}

/** A short type: `string`, `RuleSpec`, `Target[]`, `integer | null`, `"tcp" | "udp"`. */
function typeOf(doc, s) {
  if (!s) return '';
  if (s.$ref) return s.$ref.slice(REF.length);
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  const alts = s.oneOf || s.anyOf;
  if (alts) return alts.map((a) => typeOf(doc, a)).join(' | ');
  const types = [].concat(s.type || []);
  return types.map((t) => (t === 'array' ? typeOf(doc, s.items) + '[]' : t)).join(' | ') || 'any';
}

/** Text with `code` spans, as the document's descriptions write them. */
function md(text) {
  return (text || '').split('`').map((part, i) => (i % 2 ? html`<code>${part}</code>` : part));
}

/** Bounds and patterns, the way a reader checks a value against them. */
function constraints(s) {
  const out = [];
  // A bound past what a JS number holds exactly (a u64's) says no more than its format.
  const max = s.maximum != null && s.maximum <= Number.MAX_SAFE_INTEGER ? s.maximum : null;
  if (s.minimum != null || max != null) out.push(`${s.minimum ?? '…'}–${max ?? '…'}`);
  if (s.minLength != null || s.maxLength != null) out.push(`${s.minLength ?? 0}–${s.maxLength ?? '…'} chars`);
  if (s.minItems != null || s.maxItems != null) out.push(`${s.minItems ?? 0}–${s.maxItems ?? '…'} items`);
  if (s.format) out.push(s.format);
  if (s.pattern) out.push('/' + s.pattern + '/');
  if (s.default !== undefined) out.push('default ' + JSON.stringify(s.default));
  return out.join(', ');
}

function auth(op) {
  if (!op.security || op.security.length === 0) return 'Public: no credentials.';
  const csrf = op.security.some((r) => 'csrf' in r);
  return csrf
    ? 'Bearer token, or session cookie with X-Portunus-CSRF: 1.'
    : 'Bearer token or session cookie.';
}

/** The object schemas a field refers to, by name: `Target` of `Target[]`. */
function nested(doc, props) {
  const names = new Set();
  const visit = (p) => {
    if (!p) return;
    if (p.$ref && resolve(doc, p).properties) names.add(p.$ref.slice(REF.length));
    visit(p.items);
    (p.oneOf || p.anyOf || []).forEach(visit);
  };
  props.forEach(([, p]) => visit(p));
  return [...names];
}

function Fields({ doc, schema, depth = 0 }) {
  const s = resolve(doc, schema);
  const props = Object.entries(s.properties || {});
  if (!props.length) return html`<p class="small mono">${typeOf(doc, schema)}</p>`;
  const required = new Set(s.required || []);
  const inner = depth < 2 ? nested(doc, props) : [];
  return html`<div class="table-wrap"><table class="fields">
    <thead><tr><th>Field</th><th>Type</th><th>Limits</th><th>Meaning</th></tr></thead>
    <tbody>${props.map(([name, p]) => html`<tr>
      <td class="mono">${name}${required.has(name) ? '' : '?'}</td><td class="mono">${typeOf(doc, p)}</td>
      <td class="small">${constraints(resolve(doc, p))}</td><td class="small">${md(p.description || resolve(doc, p).description)}</td>
    </tr>`)}</tbody></table></div>
    ${inner.map((name) => html`<details class="nested"><summary class="mono small">${name}</summary>
      <${Fields} doc=${doc} schema=${{ $ref: REF + name }} depth=${depth + 1} /></details>`)}`;
}

function Params({ params }) {
  if (!params || !params.length) return null;
  return html`<h4>Parameters</h4><div class="table-wrap"><table class="fields">
    <thead><tr><th>Name</th><th>In</th><th>Type</th><th>Meaning</th></tr></thead>
    <tbody>${params.map((p) => html`<tr>
      <td class="mono">${p.name}${p.required ? '' : '?'}</td><td>${p.in}</td>
      <td class="mono">${typeOf(null, p.schema)} <span class="small">${constraints(p.schema || {})}</span></td>
      <td class="small">${md(p.description)}</td></tr>`)}</tbody></table></div>`;
}

function Responses({ doc, responses }) {
  return html`<h4>Responses</h4><ul class="responses">${Object.entries(responses).map(([status, r]) => {
    const content = r.content || {};
    const [type, media] = Object.entries(content)[0] || [];
    const codes = Object.entries((media && media.examples) || {});
    const ok = status.startsWith('2');
    return html`<li data-status=${status}>
      <span class=${'badge ' + (ok ? 'ok' : 'bad')}>${status}</span>
      ${ok ? html` ${md(r.description)} ${type && html`<span class="mono small">${type}: ${typeOf(doc, media.schema)}</span>`}`
        : html` ${r.description.split('\n')[0]}
          <ul>${codes.map(([code, ex]) => html`<li><code>${code}</code> <span class="small">${md(ex.summary)}</span></li>`)}</ul>`}
    </li>`;
  })}</ul>`;
}

function Operation({ doc, method, path, op }) {
  const body = op.requestBody && Object.values(op.requestBody.content || {})[0];
  const rest = (op.description || '').trim();
  return html`<details class="op" data-op=${op.operationId}>
    <summary><span class="badge off mono">${method.toUpperCase()}</span> <span class="mono">${path}</span>
      <span class="muted"> ${op.summary}</span></summary>
    ${rest && html`<p>${md(rest)}</p>`}
    <p class="small"><strong>Auth:</strong> ${auth(op)}</p>
    <${Params} params=${op.parameters} />
    ${body && html`<h4>Request body${op.requestBody.required ? '' : ' (optional)'}</h4><${Fields} doc=${doc} schema=${body.schema} />`}
    <${Responses} doc=${doc} responses=${op.responses} />
  </details>`;
}

function operations(doc) {
  const out = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) if (item[method]) out.push({ method, path, op: item[method] });
  }
  return out;
}

function Reference({ doc }) {
  const [filter, setFilter] = useState('');
  const needle = filter.trim().toLowerCase();
  const ops = operations(doc).filter(
    ({ method, path, op }) => !needle || `${method} ${path} ${op.summary}`.toLowerCase().includes(needle),
  );
  return html`<p class="muted small">${doc.info.title} ${doc.info.version}, OpenAPI ${doc.openapi}:
      ${ops.length} operations. <a href="/v1/openapi.json" download="portunus-openapi.json">Download the document</a>
      (also <code>portunus-server openapi</code>).</p>
    <${Field} label="Filter" name="api-filter" value=${filter} onInput=${(e) => setFilter(e.target.value)}
      placeholder="rules, DELETE, stats…" />
    ${doc.tags.map((tag) => {
      const mine = ops.filter((o) => (o.op.tags || [])[0] === tag.name);
      return mine.length > 0 && html`<section class="panel" data-tag=${tag.name} aria-label=${tag.name}>
        <h2>${tag.name}</h2><p class="muted small">${tag.description}</p>
        ${mine.map((o) => html`<${Operation} doc=${doc} ...${o} />`)}
      </section>`;
    })}`;
}

export function Api() {
  const load = useLoad(() => api.get('/openapi.json'), []);
  return html`<${Page} title="API">
    <${Loaded} load=${load}>${(doc) => html`<${Reference} doc=${doc} />`}</${Loaded}>
  </${Page}>`;
}
