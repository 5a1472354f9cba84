// Hark console: the entry module. Session (sign-in / sign-out), hash routing, and the page
// lifecycle every page module runs in (abort on leave, body[data-page] / body[data-loading]).

import { request, setSession, getSession, onUnauthorized, isAbort } from './api.js';
import { h, announce, announceError, clearStatus, closeConfirm, focusHeading } from './ui.js';
import { renderLive } from './live.js';
import { renderCalls, renderRecordings } from './lists.js';
import { renderCall } from './call.js';
import { renderWebhooks } from './webhooks.js';
import { renderSystem } from './system.js';

// For the browser tests: wavesurfer instances by recording SID once they are ready.
window.__console = { players: {} };

const ROUTES = [
  { pattern: /^\/live$/, name: 'live', title: 'Live calls', nav: '#/live', render: renderLive },
  { pattern: /^\/calls$/, name: 'calls', title: 'Calls', nav: '#/calls', render: renderCalls },
  { pattern: /^\/calls\/(CA[0-9A-Za-z]+)$/, name: 'call', title: 'Call', nav: '#/calls', render: renderCall },
  { pattern: /^\/recordings$/, name: 'recordings', title: 'Recordings', nav: '#/recordings', render: renderRecordings },
  { pattern: /^\/webhooks$/, name: 'webhooks', title: 'Webhooks', nav: '#/webhooks', render: renderWebhooks },
  { pattern: /^\/system$/, name: 'system', title: 'System', nav: '#/system', render: renderSystem },
];

const DEFAULT_ROUTE = '#/live';

const main = document.getElementById('page');
const nav = document.getElementById('main-nav');
const account = document.getElementById('account');
const whoami = document.getElementById('whoami');
const signout = document.getElementById('signout');

let current = null; // the page context of what is shown
let returnTo = null; // where to go after signing in
let lastPath = null;
let navigated = false; // false until the first hashchange: the first page leaves focus alone

/** `#/calls?from=…` → { path: '/calls', query: URLSearchParams } */
function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#/, '');
  const q = raw.indexOf('?');
  const path = (q < 0 ? raw : raw.slice(0, q)) || '/';
  const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
  return { path, query };
}

function setChrome() {
  const session = getSession();
  nav.hidden = !session;
  account.hidden = !session;
  whoami.textContent = session ? session.username : '';
}

function markNav(href) {
  for (const a of nav.querySelectorAll('a')) {
    if (a.getAttribute('href') === href) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function teardown() {
  closeConfirm();
  if (current) {
    const old = current;
    current = null;
    old.teardown();
  }
}

/** Starts a page: a fresh context, main emptied, body marked loading until ctx.ready(). */
function startPage(name, title, render, params, query) {
  teardown();
  const abort = new AbortController();
  const cleanups = [];
  const body = document.body;
  const ctx = {
    name,
    params,
    query,
    main,
    signal: abort.signal,
    onCleanup(fn) {
      cleanups.push(fn);
    },
    isCurrent() {
      return current === ctx && !abort.signal.aborted;
    },
    /** Marks the page as (re)loading its data: data-loading="1", no data-page. */
    loading() {
      if (!ctx.isCurrent()) return;
      delete body.dataset.page;
      body.dataset.loading = '1';
      main.setAttribute('aria-busy', 'true');
    },
    /** The page has rendered its data (or the error that kept it from doing so). */
    ready() {
      if (!ctx.isCurrent()) return;
      delete body.dataset.loading;
      main.removeAttribute('aria-busy');
      body.dataset.page = name;
    },
    /** Shows an error unless the page is gone (navigated away, or the session ended). */
    fail(what, err) {
      if (!ctx.isCurrent() || isAbort(err) || (err && err.unauthorized)) return;
      announceError(what, err);
    },
    teardown() {
      abort.abort();
      for (const fn of cleanups.splice(0)) {
        try {
          fn();
        } catch (err) {
          console.error('console: cleanup failed', err);
        }
      }
    },
  };
  current = ctx;
  document.title = `${title} — Hark console`;
  main.replaceChildren();
  ctx.loading();
  let result;
  try {
    result = render(ctx);
  } catch (err) {
    ctx.fail(`${title} page failed`, err);
    ctx.ready();
    return ctx;
  }
  Promise.resolve(result).catch((err) => {
    ctx.fail(`${title} page failed`, err);
    ctx.ready();
  });
  return ctx;
}

function route() {
  const { path, query } = parseHash();
  const session = getSession();
  const samePath = path === lastPath;
  lastPath = path;
  if (!session) {
    if (path !== '/signin') {
      if (path !== '/' && path !== '') returnTo = location.hash;
      history.replaceState(null, '', '#/signin');
      lastPath = '/signin';
    }
    markNav(null);
    if (!samePath) clearStatus();
    startPage('signin', 'Sign in', renderSignin, [], new URLSearchParams());
    return;
  }
  if (path === '/signin' || path === '/' || path === '') {
    history.replaceState(null, '', DEFAULT_ROUTE);
    route();
    return;
  }
  if (!samePath) clearStatus();
  for (const r of ROUTES) {
    const m = r.pattern.exec(path);
    if (!m) continue;
    markNav(r.nav);
    startPage(r.name, r.title, r.render, m.slice(1), query);
    if (!samePath && navigated) focusHeading(main);
    return;
  }
  markNav(null);
  startPage('notfound', 'Not found', (ctx) => {
    ctx.main.append(
      h('h1', null, 'Page not found'),
      h('p', null, 'There is no page at ', h('code', null, location.hash), '. ',
        h('a', { href: DEFAULT_ROUTE }, 'Go to live calls'), '.'),
    );
    ctx.ready();
  }, [], query);
}

function renderSignin(ctx) {
  const error = h('p', { id: 'signin-error', role: 'alert', class: 'form-error' });
  const username = h('input', {
    id: 'username', name: 'username', type: 'text', autocomplete: 'username', required: true,
    spellcheck: 'false', autocapitalize: 'off', 'aria-describedby': 'username-hint',
  });
  const password = h('input', {
    id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true,
  });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { id: 'signin-form', class: 'signin' },
    h('div', { class: 'field' },
      h('label', { for: 'username' }, 'Account SID or API key SID'),
      username,
      h('p', { id: 'username-hint', class: 'hint' }, 'AC… with the auth token, or SK… with the key secret.')),
    h('div', { class: 'field' }, h('label', { for: 'password' }, 'Auth token or API key secret'), password),
    error,
    h('div', { class: 'actions' }, submit),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.textContent = '';
    submit.disabled = true;
    form.setAttribute('aria-busy', 'true');
    try {
      const body = await request('POST', '/console/api/session', {
        json: { username: username.value.trim(), password: password.value },
        redirectOn401: false,
        signal: ctx.signal,
      });
      if (!ctx.isCurrent()) return;
      setSession(body);
      password.value = '';
      setChrome();
      const target = returnTo && !returnTo.startsWith('#/signin') ? returnTo : DEFAULT_ROUTE;
      returnTo = null;
      navigated = true;
      if (location.hash === target) route();
      else location.hash = target;
    } catch (err) {
      if (!ctx.isCurrent() || isAbort(err)) return;
      if (err.status === 401) error.textContent = (err.body && err.body.error) || 'Wrong credentials.';
      else if (err.status === 429) {
        error.textContent = `Too many failed attempts; wait and try again. ${(err.body && err.body.error) || ''}`.trim();
      } else error.textContent = `Sign-in failed: ${err.message}`;
      password.focus();
      password.select();
    } finally {
      submit.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });
  ctx.main.append(h('h1', null, 'Sign in'), form);
  ctx.ready();
  if (!username.value) username.focus();
}

function sessionEnded() {
  if (!getSession() && current && current.name === 'signin') return;
  setSession(null);
  setChrome();
  const { path } = parseHash();
  if (path !== '/signin') returnTo = location.hash;
  lastPath = null;
  route();
  announce('Your session has ended: sign in again.', 'error');
}

async function doSignout() {
  signout.disabled = true;
  try {
    await request('DELETE', '/console/api/session', { redirectOn401: false });
  } catch (err) {
    if (err.status !== 401) {
      announceError('Sign-out failed', err);
      return;
    }
  } finally {
    signout.disabled = false;
  }
  setSession(null);
  setChrome();
  returnTo = null;
  lastPath = null;
  teardown();
  history.pushState(null, '', '#/signin');
  route();
  announce('Signed out.');
}

async function boot() {
  onUnauthorized(sessionEnded);
  signout.addEventListener('click', doSignout);
  document.querySelector('.skip-link').addEventListener('click', (event) => {
    event.preventDefault();
    main.focus();
  });
  window.addEventListener('hashchange', () => {
    navigated = true;
    route();
  });
  document.body.dataset.loading = '1';
  try {
    const body = await request('GET', '/console/api/session', { redirectOn401: false });
    setSession(body);
  } catch (err) {
    setSession(null);
    if (err.status !== 401) {
      setChrome();
      route();
      announceError('Could not check the session', err);
      return;
    }
  }
  setChrome();
  route();
}

boot();
