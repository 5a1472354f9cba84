// The console's side of the HTTP API: the session (account SID, CSRF token, kept in memory
// only), fetch with the CSRF header on every state change, and errors turned into exceptions
// that carry the server's own message (Twilio's `{"message"}` or the console's `{"error"}`).

let session = null;
let unauthorizedHandler = () => {};

/** An HTTP error from the API: `status` is the HTTP status (0: the request never got an answer). */
export class ApiError extends Error {
  constructor(message, status, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

/** Called (once per 401) when the API says the session is gone. */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

export function getSession() {
  return session;
}

/** Keeps the session body (`account_sid`, `username`, `csrf_token`, `expires_ms`), or null. */
export function setSession(body) {
  session = body ? { ...body } : null;
}

/** `/2010-04-01/Accounts/{AC}` + suffix, for the signed-in account. */
export function accountPath(suffix = '') {
  if (!session) throw new ApiError('not signed in', 401, null);
  return `/2010-04-01/Accounts/${encodeURIComponent(session.account_sid)}${suffix}`;
}

/** True for the error a fetch throws when its AbortSignal fired (the page went away). */
export function isAbort(err) {
  return err && (err.name === 'AbortError' || err.name === 'TimeoutError');
}

/**
 * Calls the API. Options: `json` (a JSON body), `form` (an object or URLSearchParams, sent
 * form-encoded as Twilio's API takes it), `signal`, `redirectOn401` (default true: a 401 ends
 * the session in the UI). Resolves to the parsed JSON body, or null for an empty one (204).
 */
export async function request(method, url, options = {}) {
  const { json, form, signal, redirectOn401 = true } = options;
  const headers = { Accept: 'application/json' };
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    body = (form instanceof URLSearchParams ? form : new URLSearchParams(form)).toString();
  }
  if (method !== 'GET' && method !== 'HEAD' && session && session.csrf_token) {
    headers['X-CSRF-Token'] = session.csrf_token;
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body, signal, credentials: 'same-origin', cache: 'no-store' });
  } catch (err) {
    if (isAbort(err)) throw err;
    throw new ApiError(`network error (${err && err.message ? err.message : err})`, 0, null);
  }
  const text = await response.text();
  let parsed = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  if (response.ok) return parsed;
  const message = errorMessage(response, parsed, text);
  const err = new ApiError(message, response.status, parsed);
  if (response.status === 401 && redirectOn401) {
    err.unauthorized = true;
    unauthorizedHandler(err);
  }
  throw err;
}

function errorMessage(response, parsed, text) {
  let message = '';
  if (parsed && typeof parsed === 'object') {
    message = parsed.message || parsed.error || '';
    if (typeof message !== 'string') message = JSON.stringify(message);
  }
  if (!message && text && text.length < 300 && !/^\s*</.test(text)) message = text.trim();
  if (!message) message = response.statusText || 'request failed';
  const code = parsed && typeof parsed === 'object' && parsed.code ? `, code ${parsed.code}` : '';
  return `${message} (HTTP ${response.status}${code})`;
}
