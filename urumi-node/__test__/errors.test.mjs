// Every error kind a caller can reach arrives as a UrumiError with its `.code`, through
// the one mapping; the exported code list is urumi-core's ErrorKind::ALL.
// Offline: memory state and a cluster that does not answer (helm must be on PATH).
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

import { Provisioner, UrumiError, errorCodes } from '../index.mjs'
import { offline, unique } from './support.mjs'

/** @type {Provisioner[]} */
const open = []
after(async () => {
  await Promise.all(open.map((p) => p.close()))
})

/** @param {Partial<import('@urumi/node').OpenOptions>} [extra] */
async function opened(extra) {
  const p = await Provisioner.open(offline(extra))
  open.push(p)
  return p
}

/**
 * Asserts `promise` rejects with a UrumiError carrying `code`.
 * @param {Promise<unknown>} promise @param {import('@urumi/node').ErrorCode} code
 */
async function rejectsWith(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof UrumiError, `not a UrumiError: ${err}`)
    assert.ok(err instanceof Error)
    assert.equal(err.code, code, `code of: ${err.message}`)
    assert.doesNotMatch(err.message, /^\[/, 'the code is moved out of the message')
    return true
  })
}

test('errorCodes is urumi-core ErrorKind::ALL, and the d.ts ErrorCode union agrees', () => {
  assert.deepEqual(errorCodes, [
    'invalid_name', 'invalid_spec', 'store_exists', 'not_found', 'quota_exceeded',
    'rate_limited', 'conflict', 'idempotency_mismatch', 'idempotency_in_progress',
    'unauthorized', 'forbidden', 'timeout', 'invalid_config', 'unavailable', 'unsupported',
    'internal', 'store_failed', 'cursor_expired', 'managed_externally',
    'plan_too_small', 'precondition_failed',
  ])
  const dts = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8')
  const union = /export type ErrorCode =([^]*?)\n\n/.exec(dts)
  assert.ok(union, 'index.d.ts declares ErrorCode')
  const declared = [...union[1].matchAll(/'([a-z_]+)'/g)].map((m) => m[1])
  assert.deepEqual(declared, [...errorCodes])
})

test('CommonJS and ESM entries export the same objects', () => {
  const require = createRequire(import.meta.url)
  const cjs = require('../index.js')
  assert.equal(cjs.Provisioner, Provisioner)
  assert.equal(cjs.UrumiError, UrumiError)
})

test('the constructor is not the way in', () => {
  assert.throws(() => new (/** @type {any} */ (Provisioner))({}), TypeError)
})

test('invalid_name, invalid_spec, store_exists, not_found', async () => {
  const p = await opened()
  await rejectsWith(p.create({ name: 'Bad_Name!' }), 'invalid_name')
  await rejectsWith(p.create({ name: 'admin' }), 'invalid_name')
  await rejectsWith(p.create({ name: unique('nspec'), plan: 'enormous' }), 'invalid_spec')
  await rejectsWith(p.create({ name: unique('nspec'), engine: 'magento' }), 'invalid_spec')
  await rejectsWith(p.list({ status: 'Sleeping' }), 'invalid_spec')
  await rejectsWith(p.list({ limit: 0 }), 'invalid_spec')
  await rejectsWith(p.events('nope-missing', { limit: 5000 }), 'invalid_spec')
  const name = unique('nexists')
  const store = await p.create({ name })
  assert.equal(store.status, 'Pending')
  await rejectsWith(p.create({ name }), 'store_exists')
  await rejectsWith(p.get(unique('nmissing')), 'not_found')
  await rejectsWith(p.delete(unique('nmissing')), 'not_found')
  await rejectsWith(p.credentials(unique('nmissing')), 'not_found')
})

test('quota_exceeded and rate_limited', async () => {
  const quota = await opened({ limits: { storesPerTenant: 1, creationsPerHour: 100, storesTotal: 100 } })
  await quota.create({ name: unique('nquota') })
  await rejectsWith(quota.create({ name: unique('nquota') }), 'quota_exceeded')
  const rate = await opened({ limits: { storesPerTenant: 100, creationsPerHour: 1, storesTotal: 100 } })
  await rate.create({ name: unique('nrate') })
  await rejectsWith(rate.create({ name: unique('nrate') }), 'rate_limited')
})

test('conflict, idempotency_mismatch and an idempotent replay', async () => {
  const p = await opened()
  const name = unique('nidem')
  const first = await p.create({ name }, { idempotencyKey: `order-${name}` })
  const again = await p.create({ name }, { idempotencyKey: `order-${name}` })
  assert.deepEqual(again, first, 'the same key and body replay the first answer')
  await rejectsWith(p.create({ name: unique('nidem'), plan: 'large' }, { idempotencyKey: `order-${name}` }), 'idempotency_mismatch')
  // A worker that backs off for a minute after its first failure: the store stays
  // Provisioning, so it cannot be retried, nor be Ready within 300 ms.
  const slow = await opened({
    settings: { orchestrator: { retry: { maxAttempts: 5, base: 60_000, cap: 60_000 } } },
  })
  const busy = unique('nbusy')
  await slow.create({ name: busy })
  await rejectsWith(slow.retry(busy), 'conflict')
  await rejectsWith(slow.wait(busy, { status: 'Ready', timeoutMs: 300 }), 'timeout')
})

test('forbidden: a tenant handle naming another tenant', async () => {
  const p = await opened({ tenant: 'acme' })
  await rejectsWith(p.create({ name: unique('nforb'), tenant: 'globex' }), 'forbidden')
  const own = await p.create({ name: unique('nforb') })
  assert.equal(own.tenant, 'acme')
})

test('store_failed, and retry of a Failed store', async () => {
  const p = await opened()
  const name = unique('nfail')
  await p.create({ name })
  // The cluster does not answer and the worker gives up after one attempt.
  await rejectsWith(p.wait(name, { status: 'Ready', timeoutMs: 60_000 }), 'store_failed')
  const retried = await p.retry(name)
  assert.notEqual(retried.status, 'Failed')
})

test('cursor_expired', async () => {
  const p = await opened()
  const changes = p.changes({ after: 1_000_000_000 })
  await rejectsWith(changes.next(), 'cursor_expired')
})

test('invalid_config, unsupported, and unavailable once closed', async () => {
  await rejectsWith(Provisioner.open(offline({ settings: { noSuchSetting: true } })), 'invalid_config')
  await rejectsWith(Provisioner.open(offline({ baseDomain: '' })), 'invalid_config')
  await rejectsWith(Provisioner.open(offline({ kubeconfig: '/nonexistent/kubeconfig' })), 'invalid_config')
  await rejectsWith(Provisioner.open(offline({ state: 'redis://localhost' })), 'unsupported')
  const p = await Provisioner.open(offline())
  await p.close()
  await p.close()
  await rejectsWith(p.get('anything'), 'unavailable')
  assert.throws(() => p.changes(), (err) => err instanceof UrumiError && err.code === 'unavailable')
})

test('concurrent repeats of one key make one store; a refusal is idempotency_in_progress', async () => {
  const p = await opened()
  const name = unique('nrace')
  const results = await Promise.allSettled(
    Array.from({ length: 20 }, () => p.create({ name }, { idempotencyKey: `order-${name}` })),
  )
  const stores = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
  assert.ok(stores.length >= 1)
  assert.ok(stores.every((s) => s.name === name && s.version === stores[0].version), 'all replay the first answer')
  for (const r of results) {
    if (r.status === 'rejected') {
      assert.ok(r.reason instanceof UrumiError)
      assert.equal(r.reason.code, 'idempotency_in_progress')
    }
  }
  const page = await p.list({ limit: 1000 })
  assert.equal(page.items.filter((s) => s.name === name).length, 1)
})
