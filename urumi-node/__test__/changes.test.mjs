// The change feed through `for await`: resumed from a cursor with nothing lost or seen
// twice, and `break` ends the subscription. Offline (memory state, no cluster).
import { test, after } from 'node:test'
import assert from 'node:assert/strict'

import { Provisioner } from '../index.mjs'
import { offline, unique } from './support.mjs'

const p = await Provisioner.open(offline())
after(() => p.close())

/**
 * The `created` changes of `names`, read from the feed after `cursor`, up to `count`.
 * @param {string[]} names @param {number} cursor @param {number} count
 */
async function created(names, cursor, count) {
  const seen = []
  for await (const change of p.changes({ after: cursor })) {
    if (change.kind === 'created' && names.includes(change.store.name)) {
      seen.push(change)
      if (seen.length === count) break
    }
  }
  return seen
}

test('the feed resumes after a cursor, nothing lost, nothing twice', async () => {
  const names = [unique('nfeed'), unique('nfeed'), unique('nfeed')]
  for (const name of names) await p.create({ name })

  const all = await created(names, 0, 3)
  assert.deepEqual(all.map((c) => c.store.name), names)
  for (const c of all) {
    assert.equal(typeof c.seq, 'number')
    assert.match(c.at, /^\d{4}-\d\d-\d\dT/)
    assert.equal(c.store.status, 'Pending')
  }

  // Resume after the first: the other two, in order.
  const rest = await created(names, all[0].seq, 2)
  assert.deepEqual(rest.map((c) => c.seq), all.slice(1).map((c) => c.seq))
  assert.ok(rest.every((c) => c.seq > all[0].seq))
})

test('following from now sees a change made after the call', async () => {
  const name = unique('nlive')
  const changes = p.changes()
  const first = changes.next()
  await p.create({ name })
  let result = await first
  while (!result.done && result.value.store.name !== name) result = await changes.next()
  assert.equal(result.done, false)
  assert.equal(result.value?.kind, 'created')
  await changes.return(undefined)
  assert.deepEqual(await changes.next(), { done: true, value: undefined })
})

test('break ends the subscription; many subscriptions come and go', async () => {
  const name = unique('nbreak')
  await p.create({ name })
  for (let i = 0; i < 200; i++) {
    for await (const change of p.changes({ after: 0 })) {
      assert.ok(change.seq >= 1)
      break
    }
  }
})
