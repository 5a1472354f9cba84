// `#/live`: calls in progress, kept current by the server-sent events of /console/api/live
// (no polling). Durations tick client-side from the server's clock; hang up and recording
// control go through Twilio's REST API.

import { request, accountPath } from './api.js';
import { h, announce, formatDuration, headRow, tableWrap } from './ui.js';

const COLUMNS = ['From', 'To', 'Node', 'State', 'Duration', 'Legs', 'Verb', 'Recording', 'Actions'];
const MAX_RETRY_MS = 15000;

/** Which recording buttons a call's `recording` state allows. */
const RECORDING_ACTIONS = {
  off: ['record-start'],
  on: ['record-pause', 'record-stop'],
  paused: ['record-resume', 'record-stop'],
};

const ACTIONS = [
  { action: 'hangup', text: 'Hang up', label: (from) => `Hang up call from ${from}`, class: 'danger' },
  { action: 'record-start', text: 'Record', label: (from) => `Record call from ${from}` },
  { action: 'record-pause', text: 'Pause', label: (from) => `Pause recording of call from ${from}` },
  { action: 'record-resume', text: 'Resume', label: (from) => `Resume recording of call from ${from}` },
  { action: 'record-stop', text: 'Stop', label: (from) => `Stop recording of call from ${from}` },
];

export function renderLive(ctx) {
  const status = h('span', { id: 'live-status', class: 'live-status' }, 'reconnecting');
  const dual = h('input', { type: 'checkbox', id: 'record-dual', name: 'dual' });
  const tbody = h('tbody');
  const empty = h('tr', { class: 'empty' },
    h('td', { colspan: String(COLUMNS.length) }, 'No calls in progress.'));
  const table = h('table', { id: 'live-calls', class: 'data' },
    h('caption', null, 'Calls in progress'), headRow(COLUMNS), tbody);
  ctx.main.append(
    h('h1', null, 'Live calls'),
    h('div', { class: 'toolbar' },
      h('p', { class: 'live-line' }, 'Live updates: ', status),
      h('div', { class: 'check' }, dual,
        h('label', { for: 'record-dual' }, 'Record new recordings in two channels (caller / called)'))),
    tableWrap(table, 'Live calls table'),
  );

  const rows = new Map(); // sid → { tr, call, cells, buttons, busy }
  let offsetMs = 0; // server clock − client clock
  let lastNow = -Infinity;
  let source = null;
  let retryTimer = null;
  let retries = 0;
  let rendered = false;

  const setStatus = (text) => {
    status.textContent = text;
    status.dataset.state = text;
  };

  function serverNow() {
    return Date.now() + offsetMs;
  }

  function tick() {
    const now = serverNow();
    for (const row of rows.values()) {
      row.cells.duration.textContent = formatDuration((now - row.call.started_ms) / 1000);
    }
  }

  function makeRow(call) {
    const cells = {
      from: h('td', { class: 'from' }),
      to: h('td', { class: 'to' }),
      node: h('td', { class: 'node' }),
      state: h('td', { class: 'state' }),
      duration: h('td', { class: 'duration num' }),
      legs: h('td', { class: 'legs num' }),
      verb: h('td', { class: 'verb' }),
      recording: h('td', { class: 'recording' }),
      actions: h('td', { class: 'actions' }),
    };
    const buttons = {};
    const group = h('div', { class: 'button-row' });
    for (const a of ACTIONS) {
      const b = h('button', { type: 'button', class: a.class || null, dataset: { action: a.action } }, a.text);
      b.addEventListener('click', () => act(call.sid, a.action));
      buttons[a.action] = b;
      group.append(b);
    }
    cells.actions.append(group);
    const tr = h('tr', { dataset: { callSid: call.sid } }, Object.values(cells));
    return { tr, call, cells, buttons, busy: false, from: null };
  }

  function updateRow(row, call) {
    row.call = call;
    const c = row.cells;
    const from = call.from || '(unknown)';
    if (row.from !== from) {
      row.from = from;
      c.from.replaceChildren(h('a', { href: `#/calls/${call.sid}`, title: `Call ${call.sid}` }, from));
      for (const a of ACTIONS) row.buttons[a.action].setAttribute('aria-label', a.label(from));
    }
    setText(c.to, call.to || '');
    setText(c.node, call.node || '');
    setText(c.state, call.state || '');
    setText(c.legs, String(call.legs ?? ''));
    setText(c.verb, (call.verb || '—') + (call.bot && call.verb !== 'Bot' ? ' (bot)' : ''));
    setText(c.recording, call.recording || 'off');
    c.recording.dataset.recording = call.recording || 'off';
    applyButtons(row);
  }

  function applyButtons(row) {
    const call = row.call;
    const live = call.state !== 'terminated';
    const allowed = new Set(live ? RECORDING_ACTIONS[call.recording || 'off'] || [] : []);
    if (live) allowed.add('hangup');
    for (const [action, b] of Object.entries(row.buttons)) {
      b.disabled = row.busy || !allowed.has(action);
    }
  }

  function apply(data) {
    if (!ctx.isCurrent() || !data || !Array.isArray(data.calls)) return;
    const now = Number(data.now_ms);
    if (Number.isFinite(now)) {
      if (now < lastNow) return; // an older snapshot (live.json answered after an event)
      lastNow = now;
      offsetMs = now - Date.now();
    }
    const calls = [...data.calls].sort((a, b) =>
      (a.started_ms - b.started_ms) || String(a.sid).localeCompare(String(b.sid)));
    const seen = new Set();
    let before = tbody.firstElementChild === empty ? empty.nextElementSibling : tbody.firstElementChild;
    for (const call of calls) {
      if (!call || !call.sid || seen.has(call.sid)) continue;
      seen.add(call.sid);
      let row = rows.get(call.sid);
      if (!row) {
        row = makeRow(call);
        rows.set(call.sid, row);
      }
      updateRow(row, call);
      // Move a row only when it is out of place, so a focused button keeps focus.
      if (row.tr !== before) tbody.insertBefore(row.tr, before);
      else before = before.nextElementSibling;
    }
    for (const [sid, row] of rows) {
      if (!seen.has(sid)) {
        row.tr.remove();
        rows.delete(sid);
      }
    }
    if (rows.size === 0) {
      if (empty.parentNode !== tbody) tbody.prepend(empty);
    } else empty.remove();
    tick();
    if (!rendered) {
      rendered = true;
      ctx.ready();
    }
  }

  async function act(sid, action) {
    const row = rows.get(sid);
    if (!row || row.busy) return;
    const from = row.from;
    const base = accountPath(`/Calls/${encodeURIComponent(sid)}`);
    const current = `${base}/Recordings/Twilio.CURRENT.json`;
    const plan = {
      hangup: [`${base}.json`, { Status: 'completed' }, `Hung up the call from ${from}.`, 'Hang-up failed'],
      'record-start': [`${base}/Recordings.json`, dual.checked ? { RecordingChannels: 'dual' } : {},
        `Recording started for the call from ${from}.`, 'Starting the recording failed'],
      'record-pause': [current, { Status: 'paused' }, `Recording paused for the call from ${from}.`, 'Pausing the recording failed'],
      'record-resume': [current, { Status: 'in-progress' }, `Recording resumed for the call from ${from}.`, 'Resuming the recording failed'],
      'record-stop': [current, { Status: 'stopped' }, `Recording stopped for the call from ${from}.`, 'Stopping the recording failed'],
    }[action];
    if (!plan) return;
    const [url, form, done, failed] = plan;
    row.busy = true;
    applyButtons(row);
    try {
      await request('POST', url, { form, signal: ctx.signal });
      if (ctx.isCurrent()) announce(done);
    } catch (err) {
      ctx.fail(`${failed} (call from ${from})`, err);
    } finally {
      row.busy = false;
      if (rows.get(sid) === row) applyButtons(row);
    }
  }

  function onEvent(event) {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch (err) {
      console.error('console: bad live event', err);
      return;
    }
    retries = 0;
    apply(data);
  }

  function connect() {
    retryTimer = null;
    if (!ctx.isCurrent()) return;
    source = new EventSource('/console/api/live');
    source.addEventListener('open', () => {
      retries = 0;
      setStatus('connected');
    });
    source.addEventListener('calls', onEvent);
    source.addEventListener('message', onEvent);
    source.addEventListener('error', () => {
      if (!ctx.isCurrent()) return;
      setStatus('reconnecting');
      if (source && source.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error such as 401): find out why, then retry ourselves.
        source.close();
        source = null;
        recheck();
      }
    });
  }

  async function recheck() {
    try {
      await request('GET', '/console/api/session', { signal: ctx.signal });
    } catch (err) {
      if (!ctx.isCurrent() || err.unauthorized) return; // signed out: the sign-in page is shown
    }
    if (!ctx.isCurrent()) return;
    const delay = Math.min(MAX_RETRY_MS, 1000 * 2 ** retries);
    retries += 1;
    retryTimer = setTimeout(connect, delay);
  }

  const timer = setInterval(tick, 1000);
  ctx.onCleanup(() => {
    clearInterval(timer);
    if (retryTimer) clearTimeout(retryTimer);
    if (source) source.close();
    source = null;
  });

  connect();
  // The current state once, in case the stream's first event is a while away.
  request('GET', '/console/api/live.json', { signal: ctx.signal })
    .then(apply)
    .catch((err) => {
      ctx.fail('Loading live calls failed', err);
      if (!rendered && ctx.isCurrent()) ctx.ready();
    });
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}
