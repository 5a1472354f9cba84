// `#/calls` and `#/recordings`: Twilio's list resources with filters (kept in the hash query,
// so a reload keeps them) and paging (next_page_uri followed as given; a stack of the pages
// before for "Previous").

import { request, accountPath } from './api.js';
import {
  h, timeEl, formatDuration, headRow, tableWrap, emptyRow, pager, field, select,
} from './ui.js';

const PAGE_SIZE = 25;

const CALL_STATUSES = [['', 'any'], 'queued', 'ringing', 'in-progress', 'completed', 'busy', 'failed', 'no-answer', 'canceled'];
const RECORDING_STATUSES = [['', 'any'], 'in-progress', 'paused', 'stopped', 'processing', 'completed', 'absent', 'failed', 'deleted'];

/**
 * The date inputs are days in the browser's time zone (the tables show local times): `after`
 * is from that day's local midnight on, `before` up to the end of that day (inclusive). Sent as
 * UTC instants, `StartTime>=2024-05-01T22:00:00Z` — the API reads a bare YYYY-MM-DD as a UTC
 * day, and `…<=` as "before", so the day after is sent for an inclusive end.
 */
function addDateRange(params, name, q) {
  const from = localMidnightUtc(q.get('after'), 0);
  const to = localMidnightUtc(q.get('before'), 1);
  if (from) params.append(`${name}>`, from);
  if (to) params.append(`${name}<`, to);
}

function localMidnightUtc(day, addDays) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day || '');
  if (!m) return null;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + addDays);
  if (Number.isNaN(d.getTime())) return null;
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const CALLS = {
  title: 'Calls',
  formId: 'calls-filter',
  tableId: 'calls-table',
  route: '#/calls',
  listKey: 'calls',
  noun: 'calls',
  statuses: CALL_STATUSES,
  columns: ['Call', 'From', 'To', 'Status', 'Direction', 'Start', 'Duration'],
  fields: ['from', 'to', 'status', 'after', 'before'],
  firstUri(q) {
    const p = new URLSearchParams({ PageSize: String(PAGE_SIZE) });
    if (q.get('from')) p.append('From', q.get('from'));
    if (q.get('to')) p.append('To', q.get('to'));
    if (q.get('status')) p.append('Status', q.get('status'));
    addDateRange(p, 'StartTime', q);
    return `${accountPath('/Calls.json')}?${p}`;
  },
  row(call) {
    return h('tr', { dataset: { callSid: call.sid } },
      h('td', { class: 'sid' }, h('a', { href: `#/calls/${call.sid}` }, call.sid)),
      h('td', null, call.from || ''),
      h('td', null, call.to || ''),
      h('td', null, call.status || ''),
      h('td', null, call.direction || ''),
      h('td', { class: 'date' }, timeEl(call.start_time)),
      h('td', { class: 'num' }, formatDuration(call.duration)));
  },
};

const RECORDINGS = {
  title: 'Recordings',
  formId: 'recordings-filter',
  tableId: 'recordings-table',
  route: '#/recordings',
  listKey: 'recordings',
  noun: 'recordings',
  statuses: RECORDING_STATUSES,
  columns: ['Recording', 'Call', 'Created', 'Duration', 'Channels', 'Status', 'Source'],
  fields: ['from', 'to', 'status', 'after', 'before'],
  firstUri(q) {
    const p = new URLSearchParams({ PageSize: String(PAGE_SIZE) });
    addDateRange(p, 'DateCreated', q);
    if (q.get('status')) p.append('Status', q.get('status'));
    if (q.get('status') === 'deleted') p.append('IncludeSoftDeleted', 'true');
    if (q.get('from')) p.append('From', q.get('from'));
    if (q.get('to')) p.append('To', q.get('to'));
    return `${accountPath('/Recordings.json')}?${p}`;
  },
  row(rec) {
    return h('tr', { dataset: { recordingSid: rec.sid } },
      h('td', { class: 'sid' }, rec.sid),
      h('td', { class: 'sid' }, rec.call_sid
        ? h('a', { href: `#/calls/${rec.call_sid}`, 'aria-label': `Call ${rec.call_sid} (recording ${rec.sid})` }, rec.call_sid)
        : '—'),
      h('td', { class: 'date' }, timeEl(rec.date_created)),
      h('td', { class: 'num duration' }, formatDuration(rec.duration)),
      h('td', { class: 'num channels' }, String(rec.channels ?? '—')),
      h('td', { class: 'status' }, rec.status || ''),
      h('td', null, rec.source || ''));
  },
};

export function renderCalls(ctx) {
  return renderList(ctx, CALLS);
}

export function renderRecordings(ctx) {
  return renderList(ctx, RECORDINGS);
}

function filterForm(kind, query) {
  const text = (name, label, hint) => field(label, h('input', {
    name, type: 'text', value: query.get(name) || '', spellcheck: 'false', autocapitalize: 'off',
    autocomplete: 'off', placeholder: hint,
  }));
  const date = (name, label) => field(label, h('input', { name, type: 'date', value: query.get(name) || '' }));
  const form = h('form', { id: kind.formId, class: 'filters', role: 'search', 'aria-label': `Filter ${kind.noun}` },
    text('from', kind === CALLS ? 'From' : 'From (caller)', '+15551230000'),
    text('to', kind === CALLS ? 'To' : 'To (called)', 'sip:… or +1…'),
    field('Status', select({ name: 'status' }, kind.statuses, query.get('status') || '')),
    date('after', kind === CALLS ? 'Started on or after' : 'Created on or after'),
    date('before', kind === CALLS ? 'Started on or before' : 'Created on or before'),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Apply'),
      h('button', { type: 'button', class: 'reset' }, 'Clear')),
  );
  return form;
}

function queryFromForm(kind, form) {
  const q = new URLSearchParams();
  for (const name of kind.fields) {
    const value = (form.elements[name].value || '').trim();
    if (value) q.set(name, value);
  }
  return q;
}

function renderList(ctx, kind) {
  let query = ctx.query;
  const form = filterForm(kind, query);
  const caption = h('caption', null, kind.title);
  const tbody = h('tbody');
  const table = h('table', { id: kind.tableId, class: 'data' }, caption, headRow(kind.columns), tbody);
  const summary = h('p', { class: 'summary' });
  const paging = pager(`${kind.title} pages`, () => previous(), () => next());
  ctx.main.append(h('h1', null, kind.title), form, summary, tableWrap(table, `${kind.title} table`), paging.nav);

  let stack = []; // URIs of the pages before the current one
  let currentUri = null;
  let nextUri = null;
  let pageIndex = 0;
  let generation = 0;

  async function load(uri) {
    const mine = ++generation;
    ctx.loading();
    paging.prev.disabled = true;
    paging.next.disabled = true;
    try {
      const body = await request('GET', uri, { signal: ctx.signal });
      if (!ctx.isCurrent() || mine !== generation) return;
      currentUri = uri;
      const items = (body && body[kind.listKey]) || [];
      nextUri = body && body.next_page_uri ? body.next_page_uri : null;
      const page = body && Number.isFinite(Number(body.page)) ? Number(body.page) : pageIndex;
      pageIndex = page;
      tbody.replaceChildren(...(items.length
        ? items.map((item) => kind.row(item))
        : [emptyRow(kind.columns.length, `No ${kind.noun} match these filters.`)]));
      caption.textContent = `${kind.title}, page ${page + 1}`;
      summary.textContent = items.length
        ? `Showing ${items.length} ${kind.noun} on page ${page + 1}.`
        : `No ${kind.noun} on page ${page + 1}.`;
    } catch (err) {
      if (mine !== generation) return;
      ctx.fail(`Loading ${kind.noun} failed`, err);
      if (ctx.isCurrent()) {
        tbody.replaceChildren(emptyRow(kind.columns.length, `Could not load ${kind.noun}.`));
        summary.textContent = '';
      }
    } finally {
      if (mine === generation && ctx.isCurrent()) {
        paging.prev.disabled = stack.length === 0;
        paging.next.disabled = !nextUri;
        ctx.ready();
      }
    }
  }

  function next() {
    if (!nextUri || !currentUri) return;
    stack.push(currentUri);
    load(nextUri);
  }

  function previous() {
    if (stack.length === 0) return;
    load(stack.pop());
  }

  function restart() {
    stack = [];
    nextUri = null;
    pageIndex = 0;
    return load(kind.firstUri(query));
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    query = queryFromForm(kind, form);
    const qs = query.toString();
    // pushState: the page reloads its list itself (a hashchange would rebuild the form).
    history.pushState(null, '', qs ? `${kind.route}?${qs}` : kind.route);
    restart();
  });
  form.querySelector('button.reset').addEventListener('click', () => {
    for (const name of kind.fields) form.elements[name].value = '';
    query = new URLSearchParams();
    history.pushState(null, '', kind.route);
    restart();
  });

  return restart();
}
