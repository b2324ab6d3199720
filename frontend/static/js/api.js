// Same-origin calls to the orchestrator API. The browser session authenticates them (nginx, or the frontend's
// own proxy, turns it into a bearer token); every request that changes something carries the CSRF token.

export class ApiError extends Error {
  constructor(status, detail, code) {
    super(detail);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? '';
}

export function redirectToLogin() {
  const next = `${location.pathname}${location.search}`;
  location.assign(`/login?next=${encodeURIComponent(next)}`);
}

async function errorFrom(response) {
  let detail = '';
  let code = '';
  try {
    const body = await response.json();
    if (typeof body.detail === 'string') detail = body.detail;
    else if (Array.isArray(body.detail)) detail = body.detail.map((item) => item?.msg ?? '').join('; ');
    if (typeof body.code === 'string') code = body.code;
  } catch {
    // Not JSON: a proxy's error page, or the plain-text 413.
  }
  if (!detail) {
    if (response.status === 413) detail = 'The message is too long to send.';
    else if (response.status === 403) detail = 'The request was refused. Reload the page and try again.';
    else if (response.status >= 500) detail = `The server failed to answer (HTTP ${response.status}). Try again.`;
    else detail = `The request failed (HTTP ${response.status}).`;
  }
  return new ApiError(response.status, detail, code);
}

/**
 * Call `/api{path}` and return the response when it is 2xx.
 *
 * Throws ApiError for any other status (401 also sends the browser to the sign-in page) or when the server cannot
 * be reached; an AbortError is passed through unchanged.
 */
export async function api(path, { method = 'GET', json, signal, accept = 'application/json' } = {}) {
  const headers = { Accept: accept };
  if (!['GET', 'HEAD', 'OPTIONS'].includes(method)) headers['X-CSRF-Token'] = csrfToken();
  if (json !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(`/api${path}`, {
      method,
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
      credentials: 'same-origin',
      cache: 'no-store',
      signal,
    });
  } catch (error) {
    if (error?.name === 'AbortError') throw error;
    throw new ApiError(0, 'The server could not be reached. Check the connection and try again.', 'network_error');
  }
  if (response.status === 401) {
    redirectToLogin();
    throw new ApiError(401, 'The session has ended; opening the sign-in page…', 'unauthenticated');
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

/** `api`, then the JSON body (null for 204 No Content). */
export async function apiJson(path, options) {
  const response = await api(path, options);
  return response.status === 204 ? null : response.json();
}
