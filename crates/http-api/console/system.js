// `#/system`: version, node, health (the /healthz body), engine readiness and a metrics summary.

import { request } from './api.js';
import { h, headRow, tableWrap, emptyRow, announce, formatDate } from './ui.js';

// /healthz fields that describe the node rather than a component.
const NOT_COMPONENTS = new Set(['status', 'node_id']);

export function renderSystem(ctx) {
  const dd = (field) => h('dd', { dataset: { field } }, '…');
  const fields = {
    version: dd('version'),
    node_id: dd('node_id'),
    account_sid: dd('account_sid'),
    health: dd('health'),
    health_status: dd('health_status'),
  };
  const dl = h('dl', { id: 'system', class: 'details' },
    h('dt', null, 'Version'), fields.version,
    h('dt', null, 'Node'), fields.node_id,
    h('dt', null, 'Account'), fields.account_sid,
    h('dt', null, 'Health'), fields.health,
    h('dt', null, 'Health check HTTP status'), fields.health_status);
  const readyBody = h('tbody');
  const readiness = h('table', { id: 'readiness', class: 'data' },
    h('caption', null, 'Readiness of the components'), headRow(['Component', 'Ready', 'Detail']), readyBody);
  const metricsBody = h('tbody');
  const metrics = h('table', { id: 'metrics', class: 'data' },
    h('caption', null, 'Metrics'), headRow(['Name', 'Value']), metricsBody);
  const refresh = h('button', { type: 'button', id: 'refresh' }, 'Refresh');
  const updated = h('p', { class: 'muted' });
  ctx.main.append(
    h('div', { class: 'title-row' }, h('h1', null, 'System'), refresh),
    updated,
    dl,
    h('h2', null, 'Readiness'),
    tableWrap(readiness, 'Readiness table'),
    h('h2', null, 'Metrics'),
    tableWrap(metrics, 'Metrics table'),
  );

  let generation = 0;
  async function load(manual) {
    const mine = ++generation;
    ctx.loading();
    refresh.disabled = true;
    try {
      const body = await request('GET', '/console/api/system', { signal: ctx.signal });
      if (!ctx.isCurrent() || mine !== generation) return;
      fill(body || {});
      updated.textContent = `As of ${formatDate(new Date())}.`;
      if (manual) announce('System status refreshed.');
    } catch (err) {
      if (mine !== generation) return;
      ctx.fail('Loading the system status failed', err);
    } finally {
      if (mine === generation && ctx.isCurrent()) {
        refresh.disabled = false;
        ctx.ready();
      }
    }
  }

  function fill(body) {
    const health = body.health && typeof body.health === 'object' ? body.health : {};
    fields.version.textContent = body.version || '—';
    fields.node_id.textContent = body.node_id || health.node_id || '—';
    fields.account_sid.textContent = body.account_sid || '—';
    const status = health.status || (body.health_status >= 500 ? 'unavailable' : '—');
    fields.health.textContent = status;
    fields.health.dataset.health = status;
    fields.health_status.textContent = body.health_status ? String(body.health_status) : '—';

    const components = Object.entries(health).filter(([name]) => !NOT_COMPONENTS.has(name));
    readyBody.replaceChildren(...(components.length
      ? components.map(([name, value]) => componentRow(name, value))
      : [emptyRow(3, 'No components reported.')]));

    const entries = Object.entries(body.metrics || {}).sort(([a], [b]) => a.localeCompare(b));
    metricsBody.replaceChildren(...(entries.length
      ? entries.map(([name, value]) => h('tr', { dataset: { metric: name } },
        h('th', { scope: 'row', class: 'metric-name' }, name),
        h('td', { class: 'num' }, typeof value === 'object' ? JSON.stringify(value) : String(value))))
      : [emptyRow(2, 'No metrics.')]));
  }

  refresh.addEventListener('click', () => load(true));
  return load(false);
}

function componentRow(name, value) {
  let ready;
  let detail;
  if (value && typeof value === 'object') {
    ready = value.ready === true;
    detail = Object.entries(value)
      .filter(([k]) => k !== 'ready')
      .map(([k, v]) => `${k}: ${typeof v === 'object' && v !== null ? JSON.stringify(v) : v}`)
      .join('; ');
  } else {
    // `"database": "ok"` or the reason it is not.
    ready = value === 'ok' || value === true;
    detail = value === 'ok' || value === true ? '' : String(value);
  }
  return h('tr', { dataset: { component: name } },
    h('th', { scope: 'row' }, name),
    h('td', { class: `ready ${ready ? 'yes' : 'no'}` }, ready ? 'yes' : 'no'),
    h('td', { class: 'detail' }, detail || '—'));
}
