// HTTP calls to the Confab API and the signed-in session.
//
// The access token lives only in this module's memory, never in
// localStorage or sessionStorage, so a script injected into the page cannot
// read it from storage and it is gone when the tab closes. The refresh token
// is an HttpOnly cookie limited to /auth that scripts cannot read: the
// browser sends it to POST /auth/refresh, which returns a new access token.

let accessToken = null;
let user = null;
let refreshTimer = null;
let pendingRefresh = null;

/** Fires `signedout` (detail: a message for the user, or '') when the session ends. */
export const sessionEvents = new EventTarget();

/** A failed request, with a message that can be shown to the user as is. */
export class ApiError extends Error {
  constructor(message, { status = 0, code = 'network_error', retryAfter = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

const UNREACHABLE =
  'The server is unreachable. Check your connection and that Confab is running, then try again.';

/** Messages for error codes whose server wording is written for developers. */
const MESSAGES = {
  invalid_credentials: 'The email or password is incorrect.',
  email_taken: 'An account with this email already exists. Sign in instead.',
  account_disabled: 'This account is disabled. Ask an administrator to enable it.',
  chat_not_found: 'This conversation no longer exists or you are no longer a member.',
  message_not_found: 'This message no longer exists.',
  message_deleted: 'This message was deleted, so it cannot be edited.',
};

const FIELD_NAMES = {
  email: 'Email',
  password: 'Password',
  display_name: 'Display name',
  body: 'Message',
  title: 'Group name',
  member_ids: 'Members',
  query: 'Search',
};

export function currentUser() {
  return user;
}

export function accessTokenValue() {
  return accessToken;
}

/** Sends a request and returns the parsed JSON body, or null for an empty one. */
export async function request(path, { method = 'GET', body, auth = true } = {}) {
  let response = await send(path, method, body, auth);
  if (response.status === 401 && auth && accessToken) {
    // The access token expired or was revoked: renew it once and retry.
    if (!(await refresh())) {
      endSession('Your session has ended. Sign in again.');
      throw await errorFrom(response);
    }
    response = await send(path, method, body, auth);
  }
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

async function send(path, method, body, auth) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (auth && accessToken) headers.Authorization = `Bearer ${accessToken}`;
  try {
    return await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch {
    throw new ApiError(UNREACHABLE);
  }
}

/** Builds an ApiError from a failed response, preferring its problem details. */
async function errorFrom(response) {
  let problem = {};
  try {
    problem = await response.json();
  } catch {
    // Not JSON, for example an error page from a proxy in front of Confab.
  }
  const status = response.status;
  const code = problem.code ?? `http_${status}`;
  const retryAfter = Number.parseInt(response.headers.get('Retry-After') ?? '', 10);
  return new ApiError(describe(status, code, problem, retryAfter), {
    status,
    code,
    retryAfter: Number.isNaN(retryAfter) ? null : retryAfter,
  });
}

function describe(status, code, problem, retryAfter) {
  if (status === 429) {
    const wait = Number.isNaN(retryAfter) ? 'a moment' : plural(retryAfter, 'second');
    return `Too many attempts. Wait ${wait} and try again.`;
  }
  if (MESSAGES[code]) return MESSAGES[code];
  if (Array.isArray(problem.errors) && problem.errors.length > 0) {
    const fields = problem.errors.map(
      (error) => `${FIELD_NAMES[error.field] ?? error.field} ${error.message}.`,
    );
    return fields.join(' ');
  }
  if (status >= 500 && !problem.detail) {
    return `The server failed to handle the request (HTTP ${status}). Try again shortly.`;
  }
  if (problem.detail) return capitalize(problem.detail) + '.';
  return `The request failed (HTTP ${status}).`;
}

function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1).replace(/\.$/, '');
}

/** Stores a token response and schedules the renewal before the token expires. */
function adopt(tokens) {
  accessToken = tokens.access_token;
  user = tokens.user;
  clearTimeout(refreshTimer);
  // Renew a minute early, but never sooner than 10 seconds from now.
  const delay = Math.max(10, (tokens.expires_in ?? 900) - 60) * 1000;
  refreshTimer = setTimeout(async () => {
    const renewed = await refresh().catch(() => false);
    if (!renewed) endSession('Your session has ended. Sign in again.');
  }, delay);
}

/**
 * Asks for a new access token with the refresh cookie. Resolves to true on
 * success and false when there is no valid session; rejects with an ApiError
 * when the server cannot be reached. Concurrent calls share one request,
 * because a refresh token is rotated on use.
 */
export function refresh() {
  pendingRefresh ??= (async () => {
    try {
      const response = await send('/auth/refresh', 'POST', {}, false);
      if (!response.ok) return false;
      adopt(await response.json());
      return true;
    } finally {
      pendingRefresh = null;
    }
  })();
  return pendingRefresh;
}

/** Restores the session of an earlier visit; resolves to the user or null. */
export async function restore() {
  return (await refresh()) ? user : null;
}

export async function register(email, password, displayName) {
  const body = { email, password };
  if (displayName) body.display_name = displayName;
  adopt(await request('/auth/register', { method: 'POST', body, auth: false }));
  return user;
}

export async function login(email, password) {
  adopt(await request('/auth/login', { method: 'POST', body: { email, password }, auth: false }));
  return user;
}

/**
 * Logs out on the server, which revokes the access token and ends the
 * refresh session, and forgets the token here even when that call fails.
 */
export async function logout() {
  let notice = '';
  try {
    await request('/auth/logout', { method: 'POST' });
  } catch (error) {
    notice = `Signed out on this device, but the server did not confirm the logout: ${error.message}`;
  }
  endSession(notice);
}

/** Drops the session in this page and dispatches `signedout`, so the app shows the sign-in form. */
export function endSession(notice) {
  if (!accessToken && !user) return;
  accessToken = null;
  user = null;
  clearTimeout(refreshTimer);
  sessionEvents.dispatchEvent(new CustomEvent('signedout', { detail: notice }));
}
