// The dashboard as a user sees it, in Chromium, against the real server and cluster.
//   startServer() ─ urumi-server with a temp SQLite + generated keys (127.0.0.1:0)
//   each test: a fresh tab (sessionStorage is per tab), key typed once, then clicks
//   screenshots: target/dashboard/*.png   last line: `N passed, N failed`
'use strict';
const { chromium } = require('playwright-core');
const { spawn, execFileSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

const SERVER = process.env.URUMI_SERVER;
const SHOTS = process.env.URUMI_SHOTS;
const servers = [];
const namespaces = [];

function unique(prefix) { return prefix + '-' + crypto.randomBytes(3).toString('hex'); }

async function startServer(extra = '') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'urumi-dash-'));
  const key = 'dash-' + crypto.randomBytes(12).toString('hex');
  fs.writeFileSync(path.join(dir, 'urumi.toml'), `listen = "127.0.0.1:0"
state = "sqlite://${dir}/urumi.db"
[[api_keys]]
name = "dashboard-test"
key = "${key}"
tenant = "acme"
role = "admin"
[provisioner.limits]
storesPerTenant = 100000
creationsPerHour = 100000
storesTotal = 100000
[provisioner.orchestrator]
leaseTtl = 3
pollInterval = 0.2
resyncInterval = 0
${extra}
`);
  const log = fs.openSync(path.join(dir, 'server.log'), 'a');
  const proc = spawn(SERVER, ['--config', path.join(dir, 'urumi.toml')], { stdio: ['ignore', 'pipe', log] });
  const url = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('server did not start: ' + fs.readFileSync(path.join(dir, 'server.log'), 'utf8'))), 60000);
    proc.stdout.on('data', d => {
      const m = String(d).match(/listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(t); resolve(m[1]); }
    });
  });
  const s = { url, key, proc, dir };
  servers.push(s);
  return s;
}

async function api(s, method, p, body) {
  const res = await fetch(s.url + p, {
    method, headers: { Authorization: 'Bearer ' + s.key, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

async function signIn(page, s) {
  await page.goto(s.url + '/');
  await page.fill('[data-testid=key]', s.key);
  await page.press('[data-testid=key]', 'Enter');
  await page.waitForSelector('[data-testid=create-name]');
  await page.waitForSelector('#live:text("live")', { timeout: 15000 });
}

async function createInUi(page, name, plan) {
  await page.fill('[data-testid=create-name]', name);
  if (plan) await page.selectOption('[data-testid=create-plan]', plan);
  await page.click('[data-testid=create]');
}

const statusOf = name => `tr[data-store="${name}"] [data-testid=status]`;

async function shot(page, file) { await page.screenshot({ path: path.join(SHOTS, file), fullPage: true }); }

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

let main;
let ctx;

test('create → Ready → admin login → delete', async () => {
  const page = await ctx.newPage();
  await page.setViewportSize({ width: 1100, height: 800 });
  await signIn(page, main);
  const name = unique('dash');
  namespaces.push(name);
  await createInUi(page, name);
  await page.waitForSelector(statusOf(name), { timeout: 10000 });
  await page.waitForSelector(`${statusOf(name)}:text("Ready")`, { timeout: 150000 });
  await shot(page, 'list.png');
  await page.click(`tr[data-store="${name}"] a`);
  await page.waitForSelector('[data-view=store] h1 [data-testid=status]:text("Ready")');
  await page.waitForSelector('[data-testid=timeline] li', { timeout: 10000 });
  // The chart the release was installed with (its version, the WordPress it carries).
  await page.waitForSelector('[data-testid=chart]:has-text("(WordPress ")', { timeout: 10000 });
  const chartText = await page.textContent('[data-testid=chart]');
  if (!/^\d+\.\d+\.\d+ \(WordPress [^)]+\)$/.test(chartText || '')) throw new Error('chart shown as ' + chartText);
  // Usage: a bar per quota resource, read from the cluster (the small plan allows 10 pods).
  await page.waitForSelector('[data-testid=usage] tr[data-resource=pods] [role=meter]', { timeout: 10000 });
  const pods = await page.$eval('[data-testid=usage] tr[data-resource=pods] [role=meter]',
    el => [Number(el.getAttribute('aria-valuenow')), Number(el.getAttribute('aria-valuemax'))]);
  if (pods[1] !== 10 || pods[0] < 2) throw new Error('usage bar for pods shows ' + pods.join(' of '));
  const podsText = await page.textContent('[data-testid=usage] tr[data-resource=pods] [data-testid=usage-amount]');
  if (podsText !== pods[0] + ' of 10') throw new Error('usage text for pods: ' + podsText);
  if (!(await page.$('[data-testid=volumes] li'))) throw new Error('no volume listed under usage');
  await page.click('[data-testid=reveal]');
  const password = await page.textContent('[data-testid=password]', { timeout: 10000 });
  if (!password || password.length < 12) throw new Error('no password shown');
  await page.waitForSelector('[data-testid=audit] td:text("store.credentials.read")', { timeout: 10000 });
  // The screenshot is a test artifact: the revealed password is masked in it.
  await page.evaluate(() => { document.querySelector('[data-testid=password]').textContent = '••••••••'; });
  await shot(page, 'store.png');
  // A plan change from the page: Ready again on medium, and the usage bars follow (20 pods).
  await page.selectOption('[data-testid=plan-choice]', 'medium');
  await page.click('[data-testid=change-plan]');
  await page.waitForSelector('[data-view=store] dd:text("medium · woocommerce")', { timeout: 10000 });
  await page.waitForSelector('[data-view=store] h1 [data-testid=status]:text("Ready")', { timeout: 60000 });
  await page.waitForSelector('[data-testid=usage] tr[data-resource=pods] [role=meter][aria-valuemax="20"]', { timeout: 15000 });
  // Suspend (confirmed) → Ready and marked suspended, no Verify button; Resume → serving again.
  page.once('dialog', d => d.accept());
  await page.click('[data-testid=suspend]');
  await page.waitForSelector('[data-view=store] h1 [data-testid=suspended]', { timeout: 10000 });
  await page.waitForSelector('[data-view=store] h1 [data-testid=status]:text("Ready")', { timeout: 60000 });
  await page.waitForSelector('[data-testid=message]:text-matches("^suspended")', { timeout: 10000 });
  if (await page.$('[data-testid=verify]')) throw new Error('a suspended store offers Verify checkout');
  await page.click('[data-testid=resume]');
  await page.waitForSelector('[data-view=store] h1 [data-testid=status]:text("Updating")', { timeout: 10000 });
  await page.waitForSelector('[data-view=store] h1 [data-testid=status]:text("Ready")', { timeout: 60000 });
  if (await page.$('[data-view=store] h1 [data-testid=suspended]')) throw new Error('still marked suspended after Resume');
  page.once('dialog', d => d.accept());
  await page.click('[data-testid=delete]');
  await page.waitForSelector('[data-view=store] h1 [data-testid=status]:text("Deleting")', { timeout: 10000 });
  await page.waitForSelector('[data-testid=gone]', { timeout: 200000 });
  await page.goto(main.url + '/#/');
  await page.waitForSelector('#live:text("live")', { timeout: 15000 });
  if (await page.$(`tr[data-store="${name}"]`)) throw new Error('deleted store still listed');
  await page.close();
});

test('an invalid name shows the server\'s message', async () => {
  const page = await ctx.newPage();
  await page.setViewportSize({ width: 390, height: 844 }); // a phone
  await signIn(page, main);
  const expected = (await api(main, 'POST', '/api/v1/stores', { name: 'Bad_Name' })).json.detail;
  await createInUi(page, 'Bad_Name');
  await page.waitForSelector('[data-testid=name-error]:not(:empty)', { timeout: 10000 });
  const shown = await page.textContent('[data-testid=name-error]');
  if (shown !== expected) throw new Error(`shown ${JSON.stringify(shown)}, server said ${JSON.stringify(expected)}`);
  await shot(page, 'invalid-name-phone.png');
  await page.close();
});

test('a second tab sees the first tab\'s store appear live', async () => {
  const one = await ctx.newPage();
  const two = await ctx.newPage();
  await signIn(one, main);
  await signIn(two, main);
  const name = unique('dtab');
  namespaces.push(name);
  await createInUi(one, name);
  await two.waitForSelector(statusOf(name), { timeout: 10000 });
  await two.waitForSelector(`${statusOf(name)}:text("Ready")`, { timeout: 150000 });
  await shot(two, 'second-tab.png');
  await api(main, 'DELETE', '/api/v1/stores/' + name);
  await two.waitForSelector(`tr[data-store="${name}"]`, { state: 'detached', timeout: 200000 });
  await one.close();
  await two.close();
});

test('a failed store shows its reason and retries to Ready', async () => {
  // Stores of this server ask for a storage class that does not exist yet: the volumes
  // never bind, readiness times out, the store fails. Creating the class fixes it.
  const sc = unique('urumi-dash-sc');
  const broken = await startServer(`readinessTimeout = 10
[provisioner.orchestrator.retry]
maxAttempts = 1
base = 200
cap = 1000
[provisioner]
storageClass = "${sc}"`);
  const page = await ctx.newPage();
  await signIn(page, broken);
  const name = unique('dfail');
  namespaces.push(name);
  try {
    await createInUi(page, name);
    await page.waitForSelector(statusOf(name), { timeout: 10000 });
    await page.click(`tr[data-store="${name}"] a`);
    await page.waitForSelector('[data-testid=reason]', { timeout: 150000 });
    const reason = await page.textContent('[data-testid=reason]');
    const server = (await api(broken, 'GET', '/api/v1/stores/' + name)).json;
    if (!reason.includes(server.message)) throw new Error(`reason ${reason} vs ${server.message}`);
    await shot(page, 'failed.png');
    execFileSync('kubectl', ['create', '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: sc },
        provisioner: 'kubernetes.io/host-path', reclaimPolicy: 'Delete', volumeBindingMode: 'Immediate' }),
    });
    // The fix takes effect once the store's volumes are bound; then retry.
    const deadline = Date.now() + 120000;
    for (;;) {
      const phases = execFileSync('kubectl', ['get', 'pvc', '-n', 'store-' + name, '-o', 'jsonpath={.items[*].status.phase}']).toString().trim().split(/\s+/);
      if (phases.length && phases.every(p => p === 'Bound')) break;
      if (Date.now() > deadline) throw new Error('volumes not bound after the fix: ' + phases.join(','));
      await new Promise(r => setTimeout(r, 1000));
    }
    await page.click('[data-testid=retry]');
    await page.waitForSelector('[data-view=store] h1 [data-testid=status]:text("Ready")', { timeout: 150000 });
    await shot(page, 'retried.png');
    await api(broken, 'DELETE', '/api/v1/stores/' + name);
  } finally {
    await page.close();
    try { execFileSync('kubectl', ['delete', 'storageclass', sc, '--ignore-not-found', '--wait=false'], { stdio: 'ignore' }); } catch (_) {}
  }
});

(async () => {
  let passed = 0, failed = 0;
  let browser, profile;
  try {
    main = await startServer();
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'urumi-chromium-'));
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run'],
    });
    browser = ctx;
    for (const t of tests) {
      const started = Date.now();
      try {
        await t.fn();
        passed++;
        console.log(`ok   ${t.name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${t.name}: ${e && e.message}`);
      }
    }
  } catch (e) {
    failed++;
    console.log('FAIL setup: ' + (e && e.message));
  } finally {
    if (browser) await browser.close().catch(() => {});
    for (const s of servers) s.proc.kill('SIGTERM');
    // The directories hold API keys and the servers' logs: kept (and named) only when a
    // test failed, for the reader.
    const dirs = servers.map((s) => s.dir).concat(profile ? [profile] : []);
    if (failed) console.log('kept for inspection: ' + dirs.join(' '));
    else for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    for (const n of namespaces) {
      try { execFileSync('kubectl', ['delete', 'namespace', 'store-' + n, '--ignore-not-found', '--wait=false'], { stdio: 'ignore' }); } catch (_) {}
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})();
