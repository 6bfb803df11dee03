// Memory and overhead: 1,000 `get` calls and 1,000 change events leave RSS flat (after a
// garbage collection; run with --expose-gc), and the per-call overhead of `get` is
// printed (not asserted). Offline: memory state, no cluster.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'

import { Provisioner } from '../index.mjs'
import { offline, settledRss, unique } from './support.mjs'

/** RSS may move by this much (allocator noise, JIT); a leak of 1,000 stores is more. */
const FLAT = 8 * 1024 * 1024
const mib = (/** @type {number} */ n) => `${(n / 1024 / 1024).toFixed(1)} MiB`

const p = await Provisioner.open(offline())
after(() => p.close())
const name = unique('nmem')
await p.create({ name })

test('1,000 get calls leave RSS flat', async () => {
  assert.ok(globalThis.gc, 'run with --expose-gc')
  for (let i = 0; i < 1000; i++) await p.get(name) // warm up: JIT, allocator pools
  const before = await settledRss()
  for (let i = 0; i < 1000; i++) await p.get(name)
  const grown = (await settledRss()) - before
  console.log(`rss after 1,000 get: ${grown >= 0 ? '+' : ''}${mib(grown)}`)
  assert.ok(grown < FLAT, `RSS grew by ${mib(grown)}`)
})

test('1,000 change events leave RSS flat', async () => {
  /** Creates `n` stores and reads `n` changes of them from the feed. @param {number} n */
  async function churn(n) {
    const prefix = unique('nchurn')
    const feed = p.changes()
    const reading = (async () => {
      let seen = 0
      for await (const change of feed) {
        if (change.store.name.startsWith(prefix)) seen++
        if (seen >= n) break
      }
      return seen
    })()
    for (let i = 0; i < n; i++) await p.create({ name: `${prefix}-${i}` })
    return reading
  }
  await churn(300) // warm up
  const before = await settledRss()
  const seen = await churn(1000)
  const grown = (await settledRss()) - before
  console.log(`rss after 1,000 change events: ${grown >= 0 ? '+' : ''}${mib(grown)}`)
  assert.ok(seen >= 1000)
  // The state keeps the 1,000 new records (memory: state), so allow for them too.
  assert.ok(grown < 2 * FLAT, `RSS grew by ${mib(grown)}`)
})

test('per-call overhead of get (printed, not asserted)', async () => {
  const n = 5000
  for (let i = 0; i < 500; i++) await p.get(name)
  const start = process.hrtime.bigint()
  for (let i = 0; i < n; i++) await p.get(name)
  const perCall = Number(process.hrtime.bigint() - start) / n / 1000
  console.log(`get: ${perCall.toFixed(1)} µs per call (sequential awaits, memory state, ${n} calls)`)
  assert.ok(perCall > 0)
})
