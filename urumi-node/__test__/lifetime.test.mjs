// Lifetimes: a Promise nobody awaits still completes its write (with its audit event), a
// garbage-collected Provisioner shuts its worker down, and an abandoned wait stops
// nothing but the wait. Offline (memory state, no cluster).
import { test } from 'node:test'
import assert from 'node:assert/strict'

import { Provisioner } from '../index.mjs'
import { offline, sleep, unique } from './support.mjs'

test('an abandoned create still records the store and its audit event', async () => {
  const p = await Provisioner.open(offline())
  const name = unique('nabandon')
  void p.create({ name }).catch(() => {}) // nobody awaits it
  globalThis.gc?.()
  let store
  for (let i = 0; i < 100 && store === undefined; i++) {
    store = await p.get(name).catch(() => undefined)
    if (store === undefined) await sleep(20)
  }
  assert.ok(store, 'the store was recorded')
  const trail = await p.events(name)
  assert.ok(
    trail.items.some((e) => e.action === 'store.create' && e.outcome === 'success'),
    'its store.create audit event was written',
  )
  await p.close()
})

test('an abandoned wait does not keep the provisioner from closing', async () => {
  const p = await Provisioner.open(offline())
  const name = unique('nwait')
  await p.create({ name })
  const waiting = p.wait(name, { status: 'Deleting', timeoutMs: 120_000 })
  waiting.catch(() => {})
  const started = Date.now()
  await p.close()
  // The wait ends (the feed ends with the provisioner), well before its timeout.
  await assert.rejects(waiting, (err) => /** @type {any} */ (err).code !== 'timeout')
  assert.ok(Date.now() - started < 60_000)
})

test('a garbage-collected Provisioner shuts down: its change feed ends', async () => {
  assert.ok(globalThis.gc, 'run with --expose-gc')
  /** @type {Provisioner | null} */
  let p = await Provisioner.open(offline())
  const changes = p.changes()
  await p.create({ name: unique('ngc') })
  const first = await changes.next()
  assert.equal(first.done, false)
  p = null
  // Nothing references the Provisioner now; its finalizer drops the core handle, which
  // shuts the worker down and ends every feed it serves.
  // Read what is left (the worker's last changes) until the feed ends.
  let done = false
  const drained = (async () => {
    for (;;) {
      const next = await changes.next()
      if (next.done) return (done = true)
    }
  })()
  for (let i = 0; i < 100 && !done; i++) {
    globalThis.gc()
    await sleep(50)
  }
  assert.ok(done, 'the feed did not end: the collected Provisioner still runs')
  await drained
})
