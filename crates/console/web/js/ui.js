// Shared pieces of every page: labelled fields, forms that put the API's
// errors next to the field they name, loaders with polling, badges, copy
// buttons and confirmation dialogs.

import { html, useEffect, useRef, useState } from '../vendor/preact-htm.js';
import { ApiError } from './api.js';

export { html, useEffect, useState };

/** Shows the page at `#/path`. */
export function go(path) {
  location.hash = '#/' + path;
}

/** "message (code)", the way the CLI prints an error too. */
export function errText(e) {
  if (e instanceof ApiError) return `${e.message} (${e.code})`;
  return String((e && e.message) || e);
}

export function Field({ label, name, id, type = 'text', value, onInput, error, hint, ...rest }) {
  const fid = id || 'f-' + name;
  const described = [hint && fid + '-hint', error && fid + '-err'].filter(Boolean).join(' ');
  return html`<div class="field">
    <label for=${fid}>${label}</label>
    <input id=${fid} name=${name} type=${type} value=${value ?? ''} onInput=${onInput}
      aria-invalid=${error ? 'true' : 'false'} aria-describedby=${described || undefined} ...${rest} />
    ${hint && html`<span class="hint" id=${fid + '-hint'}>${hint}</span>`}
    ${error && html`<span class="error" id=${fid + '-err'} role="alert">${error}</span>`}
  </div>`;
}

export function Select({ label, name, id, value, onInput, error, options, hint }) {
  const fid = id || 'f-' + name;
  return html`<div class="field">
    <label for=${fid}>${label}</label>
    <select id=${fid} name=${name} value=${value} onInput=${onInput}
      aria-invalid=${error ? 'true' : 'false'}>
      ${options.map(([v, text]) => html`<option value=${v}>${text}</option>`)}
    </select>
    ${hint && html`<span class="hint">${hint}</span>`}
    ${error && html`<span class="error" role="alert">${error}</span>`}
  </div>`;
}

/**
 * Form state. `submit(fn, fieldOf)` runs `fn(values)`; an API error lands
 * next to the field its message names (or `fieldOf[code]`), anything else
 * above the buttons.
 */
export function useForm(initial) {
  const [values, setValues] = useState(initial);
  const [errors, setErrors] = useState({});
  const [busy, setBusy] = useState(false);
  const bind = (name) => ({
    name,
    value: values[name],
    error: errors[name],
    onInput: (e) => {
      const v = e.target.type === 'checkbox' ? e.target.checked : e.target.value;
      setValues((old) => ({ ...old, [name]: v }));
    },
  });
  // `fieldOf` maps a code (or an API field name) to the form field that
  // shows it; `extra` names fields that are not keys of `values`.
  const submit = (fn, fieldOf = {}, extra = []) => async (e) => {
    if (e) e.preventDefault();
    setBusy(true);
    setErrors({});
    try {
      await fn(values);
    } catch (err) {
      setErrors(placeError(err, fieldOf, [...Object.keys(values), ...extra]));
    } finally {
      setBusy(false);
    }
  };
  return { values, setValues, errors, setErrors, busy, bind, submit, reset: () => setValues(initial) };
}

function placeError(err, fieldOf, names) {
  if (!(err instanceof ApiError)) return { '': errText(err) };
  const field = fieldOf[err.code] || fieldOf[err.field] || err.field;
  if (field && names.includes(field)) return { [field]: `${err.detail} (${err.code})` };
  return { '': errText(err) };
}

export function FormError({ errors }) {
  return errors[''] ? html`<p class="form-error" role="alert">${errors['']}</p>` : null;
}

export function Notice({ kind = 'info', children }) {
  return html`<div class=${'notice ' + kind} role=${kind === 'error' ? 'alert' : 'status'}>${children}</div>`;
}

export function Badge({ kind, children }) {
  return html`<span class=${'badge ' + kind} data-state=${children}>${children}</span>`;
}

/**
 * Loads `fn()` when `deps` change and, with `pollMs`, again every
 * `pollMs` while the page shows it.
 */
export function useLoad(fn, deps, pollMs) {
  const [state, setState] = useState({ data: undefined, error: null });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    let timer;
    const run = async () => {
      try {
        const data = await fn();
        if (live) setState({ data, error: null });
      } catch (error) {
        if (live) setState((s) => ({ data: s.data, error }));
      }
      if (live && pollMs) timer = setTimeout(run, pollMs);
    };
    run();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

/** A failed load: forbidden and missing pages say so in words. */
export function Problem({ error: e }) {
  if (e instanceof ApiError && e.status === 403) {
    return html`<${Notice} kind="error">
      <strong>Not allowed.</strong> Your account cannot see this page: ${errText(e)}</${Notice}>`;
  }
  if (e instanceof ApiError && e.status === 404) {
    return html`<${Notice} kind="error"><strong>Not found.</strong> ${errText(e)}</${Notice}>`;
  }
  return html`<${Notice} kind="error">${errText(e)}</${Notice}>`;
}

/** Renders a load: a failure before any data is a `Problem`; data goes to `children`. */
export function Loaded({ load, children }) {
  const e = load.error;
  if (e && load.data === undefined) return html`<${Problem} error=${e} />`;
  if (load.data === undefined) return html`<p class="muted">Loading…</p>`;
  return html`${e && html`<${Notice} kind="warn">Refresh failed: ${errText(e)}</${Notice}>`}
    ${children(load.data)}`;
}

export function Page({ title, actions, children }) {
  useEffect(() => {
    document.title = `${title} · Portunus`;
  }, [title]);
  return html`<div class="spread"><h1 tabindex="-1" id="page-title">${title}</h1>${actions}</div>${children}`;
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.className = 'skip';
  document.body.appendChild(area);
  area.select();
  document.execCommand('copy');
  area.remove();
}

export function CopyButton({ text, label = 'Copy' }) {
  const [state, setState] = useState('');
  const copy = async () => {
    try {
      await copyText(text);
      setState('Copied');
    } catch (_) {
      setState('Copy failed: select the text and copy it');
    }
  };
  return html`<button type="button" class="copy" onClick=${copy}>${label}</button>
    <span class="muted small" role="status">${state}</span>`;
}

/** A secret shown once: the value, a copy button and the warning. */
export function ShownOnce({ title, value, children }) {
  return html`<div class="panel once" role="region" aria-label=${title}>
    <h2>${title}</h2>
    <pre class="cmd" tabindex="0">${value}</pre>
    <div class="actions"><${CopyButton} text=${value} /></div>
    <p class="muted small">Shown this once: the server keeps only a hash. ${children}</p>
  </div>`;
}

let dialogs = 0;

/** A button that asks first, in a modal dialog, then runs `onConfirm`. */
export function ConfirmButton({ label, title, message, confirmLabel, onConfirm, danger = true }) {
  const ref = useRef(null);
  const [id] = useState(() => 'dlg-' + ++dialogs);
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState(null);
  const close = () => ref.current && ref.current.open && ref.current.close();
  const go = async () => {
    setBusy(true);
    setErr(null);
    try {
      await onConfirm();
      close();
    } catch (e) {
      setErr(errText(e));
    } finally {
      setBusy(false);
    }
  };
  return html`<button type="button" class=${danger ? 'danger' : ''} onClick=${() => ref.current.showModal()}>${label}</button>
    <dialog ref=${ref} aria-labelledby=${id}>
      <h2 id=${id}>${title}</h2>
      <p>${message}</p>
      ${err && html`<p class="form-error" role="alert">${err}</p>`}
      <div class="actions">
        <button type="button" class=${danger ? 'danger confirm' : 'primary confirm'} disabled=${busy} onClick=${go}>${confirmLabel}</button>
        <button type="button" onClick=${close}>Cancel</button>
      </div>
    </dialog>`;
}

export function ago(iso) {
  if (!iso) return '—';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function when(iso) {
  return iso ? html`<time datetime=${iso} title=${iso}>${ago(iso)}</time>` : '—';
}

/** Seconds until `iso`, re-rendered every second. */
export function useCountdown(iso) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [iso]);
  return Math.max(0, Math.round((Date.parse(iso) - now) / 1000));
}

export function mmss(secs) {
  const m = Math.floor(secs / 60);
  const s = String(secs % 60).padStart(2, '0');
  return `${m}:${s}`;
}

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];

/** 1536 → "1.5 KB" (powers of 1024). */
export function bytes(n) {
  let v = Number(n) || 0;
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${UNITS[i]}`;
}

/** 1234567 → "1,234,567". */
export function num(n) {
  return (Number(n) || 0).toLocaleString('en-US');
}

/** A labelled figure, for counter grids. */
export function Stat({ label, value, id }) {
  return html`<div class="stat" id=${id}><span class="stat-label">${label}</span><span class="stat-value">${value}</span></div>`;
}

/** `{a: '', b: '5'}` → `{b: 5}`: the number fields a user filled in. */
export function numbers(values, names) {
  const out = {};
  for (const n of names) {
    const v = String(values[n] ?? '').trim();
    if (v !== '') out[n] = Number(v);
  }
  return out;
}
