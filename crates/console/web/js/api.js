// The one fetch layer: every read and write of the console goes to the
// public /v1 API through here. Writes carry the CSRF header the server
// requires of cookie sessions; failures become ApiError values carrying the
// stable code, the message, and the field the message names.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
    const m = /^([a-z_][a-z0-9_.[\]]*): (.*)$/s.exec(message || '');
    this.field = m ? m[1] : null;
    this.detail = m ? m[2] : message;
  }
}

let unauthenticated = () => {};

/** Called with the error when a signed-in request answers 401. */
export function onUnauthenticated(f) {
  unauthenticated = f;
}

export async function call(method, path, body) {
  const headers = { accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (method !== 'GET') headers['x-portunus-csrf'] = '1';
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch('/v1' + path, init);
  } catch (e) {
    throw new ApiError(0, 'unreachable', 'The server cannot be reached (' + e.message + ').');
  }
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (_) {
    data = text;
  }
  if (!resp.ok) {
    const env = data && data.error;
    const err = env
      ? new ApiError(resp.status, env.code, env.message)
      : new ApiError(resp.status, 'http_' + resp.status, resp.statusText);
    if (resp.status === 401 && !path.startsWith('/auth/')) unauthenticated(err);
    throw err;
  }
  return data;
}

export const get = (p) => call('GET', p);
export const post = (p, b) => call('POST', p, b);
export const put = (p, b) => call('PUT', p, b);
export const patch = (p, b) => call('PATCH', p, b);
export const del = (p) => call('DELETE', p);

/** Encodes one path segment. */
export const seg = (s) => encodeURIComponent(s);
