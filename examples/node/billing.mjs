// A billing platform's signup flow with @urumi/node:
//   a new customer signs up → a store is created, keyed by the order id (safe to retry)
//   → wait until it is Ready → print its URL and admin login → tear it down (demo only).
//
// Run it against the local cluster (from the repository root):
//   eval "$(tests/cluster/up)"
//   npm install ./urumi-node            # once; builds the native addon
//   node examples/node/billing.mjs [--state sqlite://billing.db]
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'

import { Provisioner, UrumiError } from '@urumi/node'

const { values } = parseArgs({
  options: { state: { type: 'string', default: 'memory:' }, keep: { type: 'boolean', default: false } },
})

/**
 * What the billing system hands us when a customer pays for a shop.
 * @typedef {{ orderId: string, customer: string, plan: 'small' | 'medium' | 'large' }} Signup
 */

/** @type {Signup} */
const signup = {
  orderId: `order-${randomBytes(4).toString('hex')}`,
  customer: `acme-${randomBytes(3).toString('hex')}`,
  plan: 'small',
}

const urumi = await Provisioner.open({ state: values.state ?? 'memory:', actor: 'billing' })
try {
  // The order id is the idempotency key: if this handler runs twice (a webhook
  // redelivered, a crash and a retry), the customer still gets exactly one store.
  const store = await urumi.create({ name: signup.customer, plan: signup.plan }, { idempotencyKey: signup.orderId })
  console.log(`order ${signup.orderId}: store ${store.name} accepted (${store.status})`)
  const again = await urumi.create({ name: signup.customer, plan: signup.plan }, { idempotencyKey: signup.orderId })
  console.log(`order ${signup.orderId} redelivered: same store, version ${again.version}`)

  const ready = await urumi.wait(store.name, { status: 'Ready', timeoutMs: 300_000 })
  console.log(`store ${ready.name} is Ready after ${ready.provisioningSeconds?.toFixed(1)} s`)
  console.log(`  storefront: ${ready.urls.storefront}`)
  console.log(`  admin:      ${ready.urls.admin}`)

  const login = await urumi.credentials(store.name)
  // A real platform emails this to the customer; a demo prints the user only.
  console.log(`  admin user: ${login.username} (password: ${login.password.length} characters, not shown)`)

  if (!values.keep) {
    await urumi.delete(store.name, { idempotencyKey: `${signup.orderId}-cancel` })
    await urumi.waitDeleted(store.name, { timeoutMs: 300_000 })
    console.log(`store ${store.name} torn down`)
  }
} catch (err) {
  if (err instanceof UrumiError) {
    console.error(`urumi refused (${err.code}): ${err.message}`)
    process.exitCode = 1
  } else {
    throw err
  }
} finally {
  await urumi.close()
}
