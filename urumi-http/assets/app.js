// Urumi dashboard: plain JS, no build step.
//   key (sessionStorage) ─▶ api() = fetch /api/v1/… with Authorization: Bearer
//   follow() = fetch-based SSE reader of /api/v1/events (the key stays in a header, never
//              in a URL) ─▶ stores Map ─▶ render(); reconnects with Last-Event-ID
//   #/ = list + create form   #/stores/NAME = one store: timeline, URLs, login, audit, actions
'use strict';

const KEY = 'urumi.apiKey';
const app = document.getElementById('app');
const stores = new Map();
let lastEventId = null;
let followAbort = null;
let timer = null;

const $ = (tag, attrs = {}, ...children) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'text') el.textContent = v;
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c);
  return el;
};

// The plan names (the core's Plan; their sizes are configured and listed by /api/v1/plans).
const PLANS = ['small', 'medium', 'large'];

function key() { return sessionStorage.getItem(KEY); }

async function api(method, path, body, headers = {}) {
  const init = { method, headers: { Authorization: 'Bearer ' + key(), ...headers } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { detail: text }; }
  if (!res.ok) {
    const err = new Error((data && data.detail) || res.statusText);
    err.problem = data || {};
    err.status = res.status;
    if (res.status === 401) { sessionStorage.removeItem(KEY); route(); }
    throw err;
  }
  return data;
}

function since(iso) {
  if (!iso) return '';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 90) return Math.round(s) + ' s';
  if (s < 5400) return Math.round(s / 60) + ' min';
  if (s < 172800) return Math.round(s / 3600) + ' h';
  return Math.round(s / 86400) + ' d';
}

function elapsed(store) {
  if (store.provisioningSeconds != null) return store.provisioningSeconds.toFixed(1) + ' s to Ready';
  if (store.status === 'Pending' || store.status === 'Provisioning') return since(store.createdAt) + ' so far';
  return '';
}

function badge(status) { return $('span', { class: 'badge ' + status, 'data-testid': 'status', text: status }); }

function suspendedBadge(s) {
  return s.suspended ? $('span', { class: 'badge Suspended', 'data-testid': 'suspended', text: 'suspended' }) : null;
}

function setLive(on) {
  const el = document.getElementById('live');
  el.textContent = on ? 'live' : 'offline';
  el.className = on ? 'live' : 'live off';
}

// ---- the change feed (SSE over fetch) --------------------------------------------------
async function follow() {
  if (followAbort) followAbort.abort();
  const ctl = new AbortController();
  followAbort = ctl;
  let wait = 3000;
  while (!ctl.signal.aborted && key()) {
    try {
      const headers = { Authorization: 'Bearer ' + key(), Accept: 'text/event-stream' };
      if (lastEventId) headers['Last-Event-ID'] = lastEventId;
      const res = await fetch('/api/v1/events', { headers, signal: ctl.signal });
      if (res.status === 401) { sessionStorage.removeItem(KEY); route(); return; }
      if (!res.ok || !res.body) throw new Error('events: ' + res.status);
      setLive(true);
      if (!lastEventId) await reload();
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut).replace(/^\r?\n\r?\n/, '');
          const ev = { event: 'message', data: [], id: null };
          for (const line of block.split(/\r?\n/)) {
            if (!line || line.startsWith(':')) continue;
            const i = line.indexOf(':');
            const field = i < 0 ? line : line.slice(0, i);
            const val = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
            if (field === 'data') ev.data.push(val);
            else if (field === 'event') ev.event = val;
            else if (field === 'id') ev.id = val;
            else if (field === 'retry') wait = Number(val) || wait;
          }
          if (ev.id) lastEventId = ev.id;
          onEvent(ev.event, ev.data.join('\n'));
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
    }
    setLive(false);
    await new Promise(r => setTimeout(r, wait));
  }
}

function onEvent(type, data) {
  if (type === 'store') {
    const s = JSON.parse(data);
    const old = stores.get(s.name);
    if (!old || old.version <= s.version) stores.set(s.name, s);
    changed(s.name);
  } else if (type === 'deleted') {
    const { name } = JSON.parse(data);
    stores.delete(name);
    changed(name, true);
  } else if (type === 'reset') {
    lastEventId = null;
    reload();
  }
}

async function reload() {
  stores.clear();
  let cursor = null;
  do {
    const q = '/api/v1/stores?limit=1000' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '');
    const page = await api('GET', q);
    for (const s of page.items) stores.set(s.name, s);
    cursor = page.nextCursor;
  } while (cursor);
  route();
}

let refreshEvents = null;
function changed(name, gone) {
  const view = current();
  if (view.page === 'list') renderList();
  else if (view.name === name) {
    renderStore(view.name, gone);
    clearTimeout(refreshEvents);
    refreshEvents = setTimeout(() => { loadEvents(name); if (!gone) loadUsage(name); }, 300);
  }
}

// ---- views -----------------------------------------------------------------------------
function current() {
  const m = location.hash.match(/^#\/stores\/([a-z0-9-]+)$/);
  return m ? { page: 'store', name: m[1] } : { page: 'list' };
}

function route() {
  clearInterval(timer);
  document.getElementById('forget').hidden = !key();
  if (!key()) return renderLogin();
  const view = current();
  if (view.page === 'store') { renderStore(view.name); loadEvents(view.name); loadUsage(view.name); }
  else renderList();
  timer = setInterval(() => document.querySelectorAll('[data-since]').forEach(el => {
    const s = stores.get(el.dataset.since);
    if (s) el.textContent = elapsed(s);
  }), 1000);
}

function renderLogin() {
  const input = $('input', { type: 'password', name: 'key', autocomplete: 'off', placeholder: 'API key', 'data-testid': 'key' });
  app.replaceChildren($('div', { class: 'card' },
    $('h1', { text: 'Sign in' }),
    $('p', { class: 'muted', text: 'Enter an API key. It is kept in this tab only (sessionStorage) and sent as a header.' }),
    $('form', { class: 'row', on: { submit: e => {
      e.preventDefault();
      if (!input.value.trim()) return;
      sessionStorage.setItem(KEY, input.value.trim());
      lastEventId = null;
      follow();
      route();
    } } }, input, $('button', { type: 'submit', text: 'Continue' }))));
}

function createForm() {
  const name = $('input', { name: 'name', required: true, placeholder: 'shop1', 'data-testid': 'create-name', autocapitalize: 'off' });
  const plan = $('select', { name: 'plan', 'data-testid': 'create-plan' },
    PLANS.map(p => $('option', { value: p, text: p })));
  const engine = $('select', { name: 'engine' }, $('option', { value: 'woocommerce', text: 'woocommerce' }));
  const nameErr = $('div', { class: 'field-error', 'data-testid': 'name-error' });
  const formErr = $('div', { class: 'error', role: 'alert', 'data-testid': 'create-error' });
  const submit = $('button', { type: 'submit', text: 'Create store', 'data-testid': 'create' });
  const form = $('form', { class: 'row', on: { submit: async e => {
    e.preventDefault();
    nameErr.textContent = ''; formErr.textContent = ''; name.removeAttribute('aria-invalid');
    submit.disabled = true;
    try {
      const s = await api('POST', '/api/v1/stores', { name: name.value.trim(), plan: plan.value, engine: engine.value },
        { 'Idempotency-Key': crypto.randomUUID ? crypto.randomUUID() : String(Math.random()) });
      stores.set(s.name, s);
      name.value = '';
      renderList();
    } catch (err) {
      const p = err.problem || {};
      const fields = p.errors || [];
      const onName = fields.find(f => f.field === 'name');
      if (onName || p.code === 'invalid_name' || p.code === 'store_exists') {
        name.setAttribute('aria-invalid', 'true');
        nameErr.textContent = p.detail || (onName && onName.message);
      } else {
        formErr.textContent = err.message;
      }
    } finally { submit.disabled = false; }
  } } },
  $('label', {}, 'Name', name, nameErr), $('label', {}, 'Plan', plan), $('label', {}, 'Engine', engine),
  $('label', {}, '\u00a0', submit));
  return $('div', { class: 'card' }, $('h2', { text: 'New store' }), form, formErr);
}

function renderList() {
  const list = [...stores.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const rows = list.map(s => $('tr', { 'data-store': s.name },
    $('td', {}, $('a', { href: '#/stores/' + s.name, text: s.name })),
    $('td', {}, badge(s.status), ' ', suspendedBadge(s)),
    $('td', { class: 'hide-sm', text: s.plan }),
    $('td', {}, $('div', { text: s.message }), $('div', { class: 'muted', 'data-since': s.name, text: elapsed(s) })),
    $('td', { class: 'hide-sm muted', text: s.tenant })));
  const table = $('div', { class: 'card' }, $('h2', { text: 'Stores (' + list.length + ')' }),
    list.length ? $('table', { 'data-testid': 'stores' },
      $('thead', {}, $('tr', {}, ['Name', 'Status', 'Plan', 'Progress', 'Tenant'].map((h, i) =>
        $('th', { class: i === 2 || i === 4 ? 'hide-sm' : null, text: h })))),
      $('tbody', {}, rows))
      : $('p', { class: 'muted', 'data-testid': 'stores', text: 'No stores yet.' }));
  const existing = app.querySelector('[data-view=list]');
  if (existing) { existing.lastChild.replaceWith(table); return; }
  app.replaceChildren($('div', { 'data-view': 'list' }, $('h1', { text: 'Stores' }), createForm(), table));
}

function storeActions(s) {
  const out = $('div', { class: 'error', role: 'alert', 'data-testid': 'action-error' });
  const act = (label, cls, fn, testid) => $('button', { class: cls, 'data-testid': testid, text: label, on: { click: async e => {
    e.target.disabled = true; out.textContent = '';
    try { await fn(); } catch (err) { out.textContent = err.message; } finally { e.target.disabled = false; }
  } } });
  const buttons = [];
  if (s.status === 'Failed') buttons.push(act('Retry', '', async () => {
    const r = await api('POST', '/api/v1/stores/' + s.name + '/retry', undefined, { 'Idempotency-Key': 'retry-' + s.name + '-' + s.version });
    stores.set(r.name, r); renderStore(r.name);
  }, 'retry'));
  if (s.status === 'Ready' && !s.suspended) buttons.push(act('Verify checkout', 'secondary', async () => {
    const box = document.getElementById('verify');
    box.textContent = 'Verifying…';
    const r = await api('POST', '/api/v1/stores/' + s.name + '/verify');
    box.replaceChildren($('div', { text: r.ok ? 'Verified: the store takes orders' + (r.orderId ? ' (order ' + r.orderId + ')' : '') : 'Verification failed' }),
      $('ul', {}, r.steps.map(st => $('li', { text: (st.ok ? '✓ ' : '✗ ') + st.name + ' ' + st.ms + ' ms' + (st.detail ? ' — ' + st.detail : '') }))));
  }, 'verify'));
  if (s.status === 'Ready' && !s.managedBy) {
    const choice = $('select', { 'data-testid': 'plan-choice', 'aria-label': 'New plan' },
      PLANS.map(p => $('option', { value: p, text: p, selected: p === s.plan })));
    buttons.push(choice, act('Change plan', 'secondary', async () => {
      if (choice.value === s.plan) return;
      const r = await api('PATCH', '/api/v1/stores/' + s.name, { plan: choice.value }, { 'Idempotency-Key': 'plan-' + s.name + '-' + s.version + '-' + choice.value });
      stores.set(r.name, r); renderStore(r.name);
    }, 'change-plan'));
    if (s.suspended) buttons.push(act('Resume', 'secondary', async () => {
      const r = await api('POST', '/api/v1/stores/' + s.name + '/resume', undefined, { 'Idempotency-Key': 'resume-' + s.name + '-' + s.version });
      stores.set(r.name, r); renderStore(r.name);
    }, 'resume'));
    else buttons.push(act('Suspend', 'secondary', async () => {
      if (!confirm('Suspend store ' + s.name + '? It stops serving until resumed; its data and login are kept.')) return;
      const r = await api('POST', '/api/v1/stores/' + s.name + '/suspend', undefined, { 'Idempotency-Key': 'suspend-' + s.name + '-' + s.version });
      stores.set(r.name, r); renderStore(r.name);
    }, 'suspend'));
  }
  if (s.managedBy) buttons.push($('span', { class: 'muted', 'data-testid': 'managed-note', text: 'Managed by ' + s.managedBy + ': delete that object (kubectl delete) to delete the store.' }));
  else if (s.status !== 'Deleting') buttons.push(act('Delete', 'danger', async () => {
    if (!confirm('Delete store ' + s.name + '? Its data and volumes are removed.')) return;
    const r = await api('DELETE', '/api/v1/stores/' + s.name, undefined, { 'Idempotency-Key': 'delete-' + s.name + '-' + s.createdAt });
    stores.set(r.name, r); renderStore(r.name);
  }, 'delete'));
  return [$('div', { class: 'actions' }, buttons), out, $('div', { id: 'verify', class: 'muted' })];
}

function renderStore(name, gone) {
  const s = stores.get(name);
  const view = app.querySelector('[data-view=store]');
  const events = view && view.dataset.name === name ? view.querySelector('#events') : null;
  const usage = view && view.dataset.name === name ? view.querySelector('#usage') : null;
  if (!s) {
    app.replaceChildren($('div', { 'data-view': 'store', 'data-name': name }, $('p', {}, $('a', { href: '#/', text: '← all stores' })),
      $('div', { class: 'card', 'data-testid': 'gone', text: gone ? 'Store ' + name + ' has been deleted.' : 'No store named ' + name + ' is visible to this key.' })));
    return;
  }
  const url = u => u ? $('a', { href: u, target: '_blank', rel: 'noopener', text: u }) : '—';
  const login = $('div', { 'data-testid': 'login' }, $('button', { class: 'secondary', 'data-testid': 'reveal', text: 'Reveal admin login', on: { click: async () => {
    try {
      const c = await api('GET', '/api/v1/stores/' + name + '/credentials');
      login.replaceChildren($('div', {}, 'User ', $('code', { class: 'secret', text: c.username }), ' password ',
        $('code', { class: 'secret', 'data-testid': 'password', text: c.password })),
        $('div', { class: 'muted', text: 'This read is recorded in the audit trail.' }));
      setTimeout(() => loadEvents(name), 200);
    } catch (err) { login.append($('div', { class: 'error', text: err.message })); }
  } } }));
  app.replaceChildren($('div', { 'data-view': 'store', 'data-name': name },
    $('p', {}, $('a', { href: '#/', text: '← all stores' })),
    $('div', { class: 'card' },
      $('h1', {}, name + ' ', badge(s.status), ' ', suspendedBadge(s)),
      $('dl', { class: 'grid' },
        $('dt', { text: 'Step' }), $('dd', { 'data-testid': 'step', text: s.step }),
        $('dt', { text: 'Message' }), $('dd', { 'data-testid': 'message', text: s.message }),
        $('dt', { text: 'Timer' }), $('dd', { 'data-since': name, text: elapsed(s) }),
        $('dt', { text: 'Storefront' }), $('dd', {}, url(s.urls.storefront)),
        $('dt', { text: 'Admin' }), $('dd', {}, url(s.urls.admin)),
        $('dt', { text: 'Plan' }), $('dd', { text: s.plan + ' · ' + s.engine + ' · tenant ' + s.tenant }),
        $('dt', { text: 'Chart' }), $('dd', { 'data-testid': 'chart', text: s.chart
          ? s.chart.version + ' (WordPress ' + s.chart.appVersion + ')' + (s.chart.outdated ? ' — outdated: a newer chart is available' : '')
          : '—' }),
        $('dt', { text: 'Namespace' }), $('dd', { text: s.namespace }),
        $('dt', { text: 'Created' }), $('dd', { text: new Date(s.createdAt).toLocaleString() + ' (' + since(s.createdAt) + ' ago)' }),
        $('dt', { text: 'Attempts' }), $('dd', { text: String(s.attempts) }),
        s.managedBy ? $('dt', { text: 'Managed by' }) : null, s.managedBy ? $('dd', { 'data-testid': 'managed-by', text: s.managedBy }) : null),
      s.status === 'Failed' ? $('div', { class: 'reason', 'data-testid': 'reason' }, $('strong', { text: 'Failed at ' + s.step + ': ' }), s.message) : null,
      s.status === 'Ready' ? $('h2', { text: 'Admin login' }) : null, s.status === 'Ready' ? login : null,
      storeActions(s)),
    usage || $('div', { class: 'card', id: 'usage', 'data-testid': 'usage' }, $('h2', { text: 'Usage' }), $('p', { class: 'muted', text: 'Reading the quota…' })),
    events || $('div', { class: 'card', id: 'events' }, $('p', { class: 'muted', text: 'Loading the audit trail…' }))));
}

const RESOURCE_LABELS = {
  'requests.cpu': 'CPU requested', 'limits.cpu': 'CPU limit', 'requests.memory': 'Memory requested',
  'limits.memory': 'Memory limit', pods: 'Pods', persistentvolumeclaims: 'Volumes',
  'requests.storage': 'Storage', 'limits.ephemeral-storage': 'Scratch disk',
};
function amount(unit, n) {
  if (unit === 'millicores') return (n / 1000).toFixed(n % 1000 ? 2 : 0).replace(/\.?0+$/, '') + ' CPU';
  if (unit === 'bytes') {
    const units = [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]];
    for (const [u, size] of units) if (n >= size) return (n / size).toFixed(1).replace(/\.0$/, '') + ' ' + u;
    return n + ' B';
  }
  return String(n);
}

// The quota's used/hard as bars, read from the cluster each time the store changes.
async function loadUsage(name) {
  const box = document.getElementById('usage');
  if (!box) return;
  const s = stores.get(name);
  if (s && (s.status === 'Pending' || s.status === 'Deleting')) {
    box.replaceChildren($('h2', { text: 'Usage' }), $('p', { class: 'muted', text: s.status === 'Pending' ? 'Usage appears once the store\'s quota is in place.' : 'The store is being deleted.' }));
    return;
  }
  let u;
  try { u = await api('GET', '/api/v1/stores/' + name + '/usage'); } catch (err) {
    box.replaceChildren($('h2', { text: 'Usage' }), $('p', { class: 'muted', 'data-testid': 'usage-note', text: err.message }));
    return;
  }
  const fresh = document.getElementById('usage');
  if (!fresh) return;
  fresh.replaceChildren($('h2', { text: 'Usage of the ' + u.plan + ' plan' }),
    $('table', { class: 'usage' }, $('tbody', {}, u.resources.map(r => {
      const pct = r.hard ? Math.min(100, Math.round(100 * r.used / r.hard)) : 0;
      return $('tr', { 'data-resource': r.resource },
        $('td', { text: RESOURCE_LABELS[r.resource] || r.resource }),
        $('td', { class: 'bar-cell' }, $('div', { class: 'bar' + (pct >= 90 ? ' full' : ''), role: 'meter', 'aria-valuemin': '0', 'aria-valuemax': String(r.hard), 'aria-valuenow': String(r.used), 'aria-label': RESOURCE_LABELS[r.resource] || r.resource },
          $('span', { style: 'width:' + pct + '%' }))),
        $('td', { class: 'muted', 'data-testid': 'usage-amount', text: amount(r.unit, r.used) + ' of ' + amount(r.unit, r.hard) }));
    }))),
    u.volumes.length ? $('ul', { class: 'muted', 'data-testid': 'volumes' }, u.volumes.map(v => $('li', { text: v.claim + ': ' + amount('bytes', v.capacity || v.requested) + ' · ' + v.phase }))) : null,
    $('div', { class: 'muted', text: 'Read at ' + new Date(u.observedAt).toLocaleTimeString() }));
}

async function loadEvents(name) {
  let page;
  try { page = await api('GET', '/api/v1/stores/' + name + '/events?limit=200'); } catch (_) { return; }
  const box = document.getElementById('events');
  if (!box) return;
  const items = page.items.slice().reverse();
  const steps = items.filter(e => e.action.startsWith('provision.') || ['store.ready', 'store.failed', 'store.create', 'store.retry'].includes(e.action));
  box.replaceChildren(
    $('h2', { text: 'Steps' }),
    $('ul', { class: 'timeline', 'data-testid': 'timeline' }, steps.map(e => $('li', { class: e.outcome },
      $('strong', { text: e.action.replace('provision.', '') }), ' ', $('span', { class: 'muted', text: new Date(e.at).toLocaleTimeString() }),
      e.detail ? $('div', { class: 'muted', text: e.detail }) : null))),
    $('h2', { text: 'Audit trail' }),
    $('table', { 'data-testid': 'audit' }, $('thead', {}, $('tr', {}, ['When', 'Action', 'Actor', 'Outcome'].map(h => $('th', { text: h })))),
      $('tbody', {}, page.items.map(e => $('tr', {},
        $('td', { class: 'muted', text: new Date(e.at).toLocaleString() }), $('td', { text: e.action }),
        $('td', { text: e.actor }), $('td', { text: e.outcome + (e.detail ? ' — ' + e.detail : '') }))))));
}

document.getElementById('forget').addEventListener('click', () => {
  sessionStorage.removeItem(KEY);
  if (followAbort) followAbort.abort();
  stores.clear(); lastEventId = null; setLive(false); route();
});
window.addEventListener('hashchange', route);
route();
if (key()) follow();
