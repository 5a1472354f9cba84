// DOM and formatting helpers shared by the console's pages. No framework: `h()` builds
// elements, the rest formats times and talks to the status region and the confirm dialog.

/**
 * Creates an element. `props`: `class`, `dataset` (object), `text` (textContent), `onX`
 * (function: an event listener, never an attribute), anything else an attribute (`true` → "",
 * `null`/`undefined`/`false` → left out). Children: nodes, strings, arrays, null (skipped).
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else if (key === 'text') el.textContent = value;
      else if (key.startsWith('on') && typeof value === 'function') {
        el.addEventListener(key.slice(2).toLowerCase(), value);
      } else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

const pad2 = (n) => String(n).padStart(2, '0');

/** `YYYY-MM-DD HH:MM:SS` in the browser's time zone; "—" for nothing or an invalid date. */
export function formatDate(date) {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) return '—';
  return `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())} ` +
    `${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}`;
}

/** A `<time>` for Unix ms or an RFC 2822 / ISO string (Twilio's dates); "—" when absent. */
export function timeEl(value) {
  if (value === null || value === undefined || value === '') return document.createTextNode('—');
  const date = typeof value === 'number' ? new Date(value) : new Date(Date.parse(value));
  if (Number.isNaN(date.getTime())) return document.createTextNode(String(value));
  return h('time', { datetime: date.toISOString() }, formatDate(date));
}

/** Seconds (number or numeric string) as `m:ss`; "—" when absent. */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || seconds === '') return '—';
  const n = Number(seconds);
  if (!Number.isFinite(n)) return '—';
  const s = Math.max(0, Math.floor(n));
  return `${Math.floor(s / 60)}:${pad2(s % 60)}`;
}

let statusToken = 0;

/** Shows a message in the page's `aria-live="polite"` status region. */
export function announce(message, kind = 'info') {
  const region = document.getElementById('status');
  if (!region) return;
  const token = ++statusToken;
  region.className = `status status--${kind}`;
  // Emptied first so the same message twice in a row is announced again.
  region.textContent = '';
  setTimeout(() => {
    if (token === statusToken) region.textContent = message;
  }, 30);
}

/** Shows an API (or network) error in the status region, prefixed with what was being done. */
export function announceError(what, err) {
  const message = err && err.message ? err.message : String(err);
  announce(what ? `${what}: ${message}` : message, 'error');
}

export function clearStatus() {
  const region = document.getElementById('status');
  if (!region) return;
  statusToken += 1;
  region.textContent = '';
  region.className = 'status';
}

/** A horizontally scrolling, keyboard-focusable wrapper for a wide table. */
export function tableWrap(table, label) {
  return h('div', { class: 'table-wrap', role: 'region', 'aria-label': label, tabindex: '0' }, table);
}

/** A `<thead>` row of column headers. */
export function headRow(names) {
  return h('thead', null, h('tr', null, names.map((n) => h('th', { scope: 'col' }, n))));
}

/** The single full-width row shown when a table has nothing to list. */
export function emptyRow(columns, text) {
  return h('tr', { class: 'empty' }, h('td', { colspan: String(columns) }, text));
}

let dialogAbort = null;

/**
 * Asks for confirmation in the native `dialog#confirm-dialog`. Resolves true on OK, false on
 * Cancel, Escape, or when the page changes underneath (closeConfirm()).
 */
export function confirmAction(text, okLabel = 'Delete') {
  const dialog = document.getElementById('confirm-dialog');
  const ok = document.getElementById('confirm-ok');
  const cancel = document.getElementById('confirm-cancel');
  closeConfirm();
  document.getElementById('confirm-text').textContent = text;
  ok.textContent = okLabel;
  const abort = new AbortController();
  dialogAbort = abort;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (answer) => {
      if (settled) return;
      settled = true;
      abort.abort();
      if (dialogAbort === abort) dialogAbort = null;
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const opts = { signal: abort.signal };
    ok.addEventListener('click', () => finish(true), opts);
    cancel.addEventListener('click', () => finish(false), opts);
    dialog.addEventListener('cancel', (e) => { e.preventDefault(); finish(false); }, opts);
    dialog.addEventListener('close', () => finish(false), opts);
    abort.signal.addEventListener('abort', () => finish(false));
    dialog.showModal();
    cancel.focus();
  });
}

/** Closes the confirm dialog if open (its promise resolves false). */
export function closeConfirm() {
  if (dialogAbort) dialogAbort.abort();
  const dialog = document.getElementById('confirm-dialog');
  if (dialog && dialog.open) dialog.close();
}

/** The first `<h1>` of main, focusable by script, to move focus to after a navigation. */
export function focusHeading(main) {
  const heading = main.querySelector('h1');
  if (!heading) return;
  heading.setAttribute('tabindex', '-1');
  heading.focus({ preventScroll: false });
}

/** Paging buttons `#prev-page` / `#next-page` in a `<nav>`. */
export function pager(label, onPrev, onNext) {
  const prev = h('button', { type: 'button', id: 'prev-page', disabled: true, onClick: onPrev }, '← Previous');
  const next = h('button', { type: 'button', id: 'next-page', disabled: true, onClick: onNext }, 'Next →');
  const nav = h('nav', { class: 'pager', 'aria-label': label }, prev, next);
  return { nav, prev, next };
}

/** A labelled form field: `<div class="field"><label>…</label><input|select></div>`. */
export function field(labelText, control) {
  if (!control.id) control.id = `f-${control.name}`;
  return h('div', { class: 'field' }, h('label', { for: control.id }, labelText), control);
}

/** A `<select>` with the given options (`[value, label]` pairs or plain strings). */
export function select(props, options, selected) {
  return h('select', props, options.map((o) => {
    const [value, label] = Array.isArray(o) ? o : [o, o];
    return h('option', { value, selected: value === selected }, label);
  }));
}
