// `#/webhooks`: status-callback deliveries, newest first, filtered by state (kept in the hash
// query); "Next" follows `next_before`, "Previous" pops the stack of earlier `Before` values.

import { request } from './api.js';
import { h, timeEl, headRow, tableWrap, emptyRow, pager, field, select } from './ui.js';

const PAGE_SIZE = 50;
const STATES = [['', 'any'], 'pending', 'delivered', 'failed'];
const COLUMNS = ['ID', 'URL', 'Method', 'Event', 'State', 'Attempts', 'Last status', 'Last error',
  'Created', 'Last attempt', 'Duration (ms)', 'Next attempt'];

export function renderWebhooks(ctx) {
  let state = STATES.slice(1).includes(ctx.query.get('state')) ? ctx.query.get('state') : '';
  const stateSelect = select({ id: 'webhook-state', name: 'state' }, STATES, state);
  const caption = h('caption', null, 'Webhook deliveries');
  const tbody = h('tbody');
  const table = h('table', { id: 'webhooks-table', class: 'data' }, caption, headRow(COLUMNS), tbody);
  const paging = pager('Webhook delivery pages', () => previous(), () => next());
  ctx.main.append(
    h('h1', null, 'Webhooks'),
    h('p', { class: 'muted' }, 'Status callbacks the daemon sent or is about to send, newest first.'),
    h('form', { class: 'filters compact', 'aria-label': 'Filter deliveries' }, field('State', stateSelect)),
    tableWrap(table, 'Webhook deliveries table'),
    paging.nav,
  );

  let stack = []; // `Before` values of the pages before the current one ('' = the first page)
  let currentBefore = '';
  let nextBefore = null;
  let generation = 0;

  async function load(before) {
    const mine = ++generation;
    ctx.loading();
    paging.prev.disabled = true;
    paging.next.disabled = true;
    const p = new URLSearchParams({ PageSize: String(PAGE_SIZE) });
    if (state) p.set('State', state);
    if (before !== '') p.set('Before', before);
    try {
      const body = await request('GET', `/console/api/webhooks?${p}`, { signal: ctx.signal });
      if (!ctx.isCurrent() || mine !== generation) return;
      currentBefore = before;
      const items = (body && body.deliveries) || [];
      nextBefore = body && body.next_before !== null && body.next_before !== undefined ? String(body.next_before) : null;
      tbody.replaceChildren(...(items.length
        ? items.map(row)
        : [emptyRow(COLUMNS.length, state ? `No ${state} deliveries.` : 'No deliveries.')]));
      caption.textContent = `Webhook deliveries${state ? ` (${state})` : ''}, page ${stack.length + 1}`;
    } catch (err) {
      if (mine !== generation) return;
      ctx.fail('Loading webhook deliveries failed', err);
      if (ctx.isCurrent()) tbody.replaceChildren(emptyRow(COLUMNS.length, 'Could not load the deliveries.'));
    } finally {
      if (mine === generation && ctx.isCurrent()) {
        paging.prev.disabled = stack.length === 0;
        paging.next.disabled = nextBefore === null;
        ctx.ready();
      }
    }
  }

  function next() {
    if (nextBefore === null) return;
    stack.push(currentBefore);
    load(nextBefore);
  }

  function previous() {
    if (stack.length === 0) return;
    load(stack.pop());
  }

  stateSelect.addEventListener('change', () => {
    state = stateSelect.value;
    history.pushState(null, '', state ? `#/webhooks?state=${encodeURIComponent(state)}` : '#/webhooks');
    stack = [];
    nextBefore = null;
    load('');
  });
  stateSelect.form.addEventListener('submit', (event) => event.preventDefault());

  return load('');
}

function row(d) {
  const dash = (v) => (v === null || v === undefined || v === '' ? '—' : String(v));
  return h('tr', { dataset: { deliveryId: String(d.id) } },
    h('td', { class: 'num' }, dash(d.id)),
    h('td', { class: 'url' }, dash(d.url)),
    h('td', null, dash(d.method)),
    h('td', null, d.group ? `${dash(d.event)} (${d.group})` : dash(d.event)),
    h('td', { class: 'state', dataset: { state: d.state || '' } }, dash(d.state)),
    h('td', { class: 'num' }, dash(d.attempts)),
    h('td', { class: 'num' }, dash(d.last_status)),
    h('td', { class: 'error-text' }, dash(d.last_error)),
    h('td', { class: 'date' }, timeEl(d.created_ms)),
    h('td', { class: 'date' }, timeEl(d.last_attempt_ms)),
    h('td', { class: 'num' }, dash(d.last_duration_ms)),
    h('td', { class: 'date' }, d.state === 'pending' ? timeEl(d.next_attempt_ms) : '—'));
}
