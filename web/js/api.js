// api.js - the one way the page talks to the server: JSON over fetch, the
// API token from local storage, and the token prompt when the server
// answers 401 (asked once; concurrent requests wait for the same answer).

import { settings } from './dom.js';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
  }
}

let asking = null; // the pending token prompt, shared by every request that got a 401

function askToken(refused) {
  if (asking) return asking;
  const dlg = document.getElementById('token-dialog');
  const form = document.getElementById('token-form');
  const input = document.getElementById('token-input');
  const msg = document.getElementById('token-msg');
  msg.textContent = refused
    ? 'The server refused this token. Enter the value of --api-token.'
    : 'This server needs an API token (its --api-token). It is kept in this browser only.';
  msg.classList.toggle('bad', !!refused);
  input.value = '';
  asking = new Promise((resolve) => {
    const done = (token) => {
      form.removeEventListener('submit', onSubmit);
      dlg.removeEventListener('cancel', onCancel);
      if (dlg.open) dlg.close();
      asking = null;
      resolve(token);
    };
    const onSubmit = (e) => {
      e.preventDefault();
      const t = input.value.trim();
      if (!t) { input.focus(); return; }
      settings.set('token', t);
      done(t);
    };
    const onCancel = (e) => { e.preventDefault(); }; // Escape keeps the prompt: nothing works without it
    form.addEventListener('submit', onSubmit);
    dlg.addEventListener('cancel', onCancel);
    dlg.showModal();
    input.focus();
  });
  return asking;
}

/** Forgets the stored token (the footer's "Forget token"). */
export function forgetToken() {
  settings.set('token', null);
}

export function hasToken() {
  return !!settings.get('token');
}

/**
 * Calls the API. Resolves with the parsed JSON body; rejects with an
 * ApiError carrying the server's error code and message.
 * opts: {method, body (JSON-encoded), signal, allow: [statuses answered without throwing]}.
 */
export async function api(path, opts = {}) {
  const { method = 'GET', body, signal, allow = [] } = opts;
  for (let attempt = 0; ; attempt++) {
    const headers = { Accept: 'application/json' };
    const token = settings.get('token');
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, {
      method, headers, signal, cache: 'no-store', credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 401 && attempt < 5) {
      await askToken(!!token);
      continue;
    }
    let json = null;
    const text = await res.text();
    try { json = text ? JSON.parse(text) : null; } catch { json = null; }
    if (res.ok || allow.includes(res.status)) return json;
    const e = json && json.error ? json.error : {};
    throw new ApiError(res.status, e.code, e.message || `${res.status} ${res.statusText}`);
  }
}

/** Builds a query string, leaving out empty values. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const enc = encodeURIComponent;
