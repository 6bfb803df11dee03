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

// A program that used the provisioner, closed or not, exits by itself: no native work
// keeps Node's event loop alive after the program's last line. (A `next()` still waiting
// on the feed does, like a socket still read from; close() ends it.)
const PROGRAM = `
import { Provisioner } from './index.mjs'
const p = await Provisioner.open(JSON.parse(process.argv[1]))
const name = 'nexit-' + process.pid
await p.create({ name })
for (let i = 0; i < 20; i++) {
  await p.get(name)
  await p.list()
}
for await (const change of p.changes({ after: 0 })) break
if (process.argv[2] === 'close') {
  const pending = p.changes().next() // waiting on the feed: close must end it
  await p.close()
  await pending
}
console.log('done')
`

for (const ending of ['close', 'no close']) {
  test(`a program that used the provisioner exits by itself (${ending})`, async () => {
    const { spawnSync } = await import('node:child_process')
    const runs = 10
    const failures = []
    for (let run = 0; run < runs; run++) {
      const started = Date.now()
      const done = spawnSync(
        process.execPath,
        ['--input-type=module', '-e', PROGRAM, JSON.stringify(offline()), ending],
        { cwd: new URL('..', import.meta.url), encoding: 'utf8', timeout: 60_000 },
      )
      if (done.status !== 0 || done.stdout.trim() !== 'done') {
        const why = done.error ? `no exit within 60 s (${done.error.message})` : `exit ${done.status} ${done.signal ?? ''}`
        failures.push(`run ${run}: ${why} after ${Date.now() - started} ms: ${done.stderr.slice(-300)}`)
      }
    }
    assert.deepEqual(failures, [], `${failures.length} of ${runs} runs did not exit by themselves`)
  })
}
