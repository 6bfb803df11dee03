// Create → Ready → delete on the local cluster, on SQLite and on PostgreSQL state, and
// the store's whole history read back from the change feed, then resumed from a cursor.
// Needs `eval "$(tests/cluster/up)"` and `eval "$(tests/postgres/up)"`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { inspect } from 'node:util'

import { Provisioner, UrumiError } from '../index.mjs'
import { clusterKubeconfig, fastSettings, postgresUrl, sqliteUrl, unique, unlimited } from './support.mjs'

/**
 * Every change of `name` after `cursor`, up to and including its `deleted`.
 * @param {Provisioner} p @param {string} name @param {number} cursor
 */
async function history(p, name, cursor) {
  const seen = []
  for await (const change of p.changes({ after: cursor })) {
    if (change.store.name !== name) continue
    seen.push(change)
    if (change.kind === 'deleted') break
  }
  return seen
}

for (const [backend, stateUrl] of /** @type {const} */ ([
  ['SQLite', sqliteUrl],
  ['PostgreSQL', postgresUrl],
])) {
  test(`create → Ready → delete on the cluster, ${backend} state`, async () => {
    const p = await Provisioner.open({
      state: stateUrl(),
      kubeconfig: clusterKubeconfig(),
      limits: unlimited,
      settings: fastSettings(),
      actor: 'node-lifecycle-test',
    })
    const name = unique('nlife')
    try {
      const order = `order-${name}`
      const accepted = await p.create({ name, plan: 'small' }, { idempotencyKey: order })
      assert.equal(accepted.name, name)
      assert.equal(accepted.status, 'Pending')
      assert.equal(accepted.tenant, 'default')
      const replay = await p.create({ name, plan: 'small' }, { idempotencyKey: order })
      assert.deepEqual(replay, accepted, 'a repeated key replays, never a second store')

      const ready = await p.wait(name, { status: 'Ready', timeoutMs: 120_000 })
      assert.equal(ready.status, 'Ready')
      assert.equal(ready.step, 'done')
      assert.match(ready.urls.storefront ?? '', new RegExp(`^https?://${name}\\.`))
      assert.ok(ready.readyAt)

      assert.equal(ready.chart?.outdated, false)
      const same = await p.upgrade(name)
      assert.deepEqual([same.version, same.status], [ready.version, 'Ready'], 'not outdated: unchanged')
      const revisions = await p.revisions(name)
      assert.deepEqual(revisions.slice(-1).map((r) => [r.status, r.chartVersion]), [['deployed', ready.chart?.version]])

      const login = await p.credentials(name)
      assert.ok(login.username.length > 0)
      for (const shown of [inspect(p, { showHidden: true }), inspect(ready, { depth: 9 })]) {
        assert.doesNotMatch(shown, /postgres:|sqlite:|password/i, 'no state URL or secret in inspect output')
      }
      assert.ok(login.password.length >= 12, 'a generated password')
      const trail = await p.events(name, { limit: 100 })
      const actions = trail.items.map((e) => e.action)
      assert.ok(actions.includes('store.create'))
      assert.ok(actions.includes('store.credentials.read'))
      assert.ok(!JSON.stringify(trail).includes(login.password), 'the audit trail never has the password')

      const usage = await p.usage(name)
      assert.equal(usage.plan, 'small')
      const pods = usage.resources.find((r) => r.resource === 'pods')
      assert.deepEqual(pods && { unit: pods.unit, hard: pods.hard }, { unit: 'count', hard: 10 })
      assert.ok((pods?.used ?? 0) >= 2, JSON.stringify(usage))
      assert.ok(usage.volumes.length > 0 && usage.volumes.every((v) => v.phase.length > 0))
      assert.deepEqual(p.plans().map((plan) => plan.name), ['small', 'medium', 'large'])
      const updating = await p.update(name, { plan: 'medium' }, { idempotencyKey: `plan-${name}` })
      assert.equal(updating.status, 'Updating')
      const medium = await p.wait(name, { status: 'Ready', timeoutMs: 120_000 })
      assert.equal(medium.plan, 'medium')
      assert.equal(medium.readyAt, ready.readyAt)
      const grown = await p.usage(name)
      assert.equal(grown.resources.find((r) => r.resource === 'pods')?.hard, 20)
      await assert.rejects(p.update(name, { plan: 'huge' }), (e) => e instanceof UrumiError && e.code === 'invalid_spec')

      const suspending = await p.suspend(name, { idempotencyKey: `suspend-${name}` })
      assert.deepEqual([suspending.status, suspending.suspended], ['Updating', true])
      const suspended = await p.wait(name, { status: 'Ready', timeoutMs: 120_000 })
      assert.equal(suspended.suspended, true)
      assert.equal((await p.suspend(name)).version, suspended.version, 'suspending a suspended store changes nothing')
      await assert.rejects(p.verify(name), (e) => e instanceof UrumiError && e.code === 'conflict')
      const resuming = await p.resume(name)
      assert.deepEqual([resuming.status, resuming.suspended], ['Updating', false])
      const resumed = await p.wait(name, { status: 'Ready', timeoutMs: 120_000 })
      assert.equal(resumed.suspended, false)
      await assert.rejects(p.suspend(name, { ifVersion: resumed.version - 1 }), (e) => e instanceof UrumiError && e.code === 'precondition_failed')
      await assert.rejects(p.suspend(name, { ifVersion: -1 }), (e) => e instanceof UrumiError && e.code === 'invalid_spec')
      assert.equal((await p.get(name)).version, resumed.version, 'a failed precondition changes nothing')
      assert.equal((await p.credentials(name)).password, login.password, 'the same credentials')
      await assert.rejects(p.usage('no-such-store'), (e) => e instanceof UrumiError && e.code === 'not_found')

      const page = await p.list({ status: 'Ready', limit: 1000 })
      assert.ok(page.items.some((s) => s.name === name))

      const deleting = await p.delete(name)
      assert.equal(deleting.status, 'Deleting')
      await p.waitDeleted(name, { timeoutMs: 180_000 })
      await assert.rejects(p.get(name), (e) => e instanceof UrumiError && e.code === 'not_found')

      // The feed from the start: created → … → Ready → Deleting → deleted, in order.
      const all = await history(p, name, 0)
      const seqs = all.map((c) => c.seq)
      assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b))
      assert.equal(all[0].kind, 'created')
      assert.equal(all.at(-1)?.kind, 'deleted')
      assert.ok(all.some((c) => c.store.status === 'Ready'))
      // Resumed after a change in the middle: exactly the rest, none twice.
      const mid = all[Math.floor(all.length / 2)]
      const rest = await history(p, name, mid.seq)
      assert.deepEqual(rest.map((c) => c.seq), seqs.filter((s) => s > mid.seq))
    } finally {
      await p.delete(name).catch(() => {})
      await p.close()
    }
  })
}
