// Shared by the test files: unique names, settings that keep tests fast, a real or an
// offline cluster, and fresh SQLite / PostgreSQL state.
//
//   clusterKubeconfig() ── $KUBECONFIG from `eval "$(tests/cluster/up)"`, or the test fails
//   offline()           ── a kubeconfig of nothing (127.0.0.1:9): only the request path runs
//   postgresUrl()       ── a fresh schema on $URUMI_TEST_POSTGRES_URL (tests/postgres/up)
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync, existsSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * `<prefix>-<6 hex>`: unique per run, so tests share the cluster with anything else.
 * @param {string} prefix
 */
export function unique(prefix) {
  return `${prefix}-${randomBytes(3).toString('hex')}`
}

/** @type {string[]} */
const tempDirs = []
process.on('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
})

/** A new temporary directory, removed when the process exits. */
export function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), 'urumi-node-'))
  tempDirs.push(dir)
  return dir
}

/** A SQLite state URL in a new temporary directory. */
export function sqliteUrl() {
  return `sqlite://${join(tempDir(), 'urumi.db')}`
}

/** Settings that keep tests fast: no limits, short leases and polls, quick retries. */
export function fastSettings() {
  return {
    namespaceDeletionTimeoutSecs: 150,
    orchestrator: {
      concurrency: 4,
      leaseTtl: 3,
      pollInterval: 0.2,
      readinessTimeout: 90,
      resyncInterval: 0,
      retry: { maxAttempts: 8, base: 300, cap: 5000 },
    },
  }
}

/** Creation limits that never stop a test. */
export const unlimited = { storesPerTenant: 1_000_000, creationsPerHour: 1_000_000, storesTotal: 1_000_000 }

/** The local cluster's kubeconfig; throws, naming the script, without one. */
export function clusterKubeconfig() {
  const kc = process.env.KUBECONFIG
  if (!kc) {
    throw new Error(
      'KUBECONFIG is not set: run `eval "$(tests/cluster/up)"` from the repository root ' +
        '(it starts the local Kubernetes and puts kubectl and helm on PATH), then run the tests again',
    )
  }
  return kc
}

/**
 * A kubeconfig of a cluster that does not answer: the provisioner opens (helm must be
 * on PATH), requests are recorded, and the worker's steps fail and back off.
 */
export function offlineKubeconfig() {
  const path = join(tempDir(), 'kubeconfig')
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: nowhere, cluster: {server: "http://127.0.0.1:9"}}]',
      'users: [{name: nobody, user: {token: "none"}}]',
      'contexts: [{name: nowhere, context: {cluster: nowhere, user: nobody}}]',
      'current-context: nowhere',
      '',
    ].join('\n'),
  )
  return path
}

/**
 * Offline options: memory state, a cluster of nothing, a worker that gives up at once.
 * @param {Partial<import('@urumi/node').OpenOptions>} [extra]
 * @returns {import('@urumi/node').OpenOptions}
 */
export function offline(extra = {}) {
  return {
    state: 'memory:',
    kubeconfig: offlineKubeconfig(),
    limits: unlimited,
    settings: {
      // No cluster answers here: one attempt, and no waiting out the unreachable cluster
      // (unavailableBudget 0), so a store fails at once.
      orchestrator: { pollInterval: 60, resyncInterval: 0, retry: { maxAttempts: 1, base: 10, cap: 10, unavailableBudget: 0 } },
    },
    ...extra,
  }
}

function psql() {
  for (const dir of ['/usr/bin', ...pgBins()]) {
    if (existsSync(join(dir, 'psql'))) return join(dir, 'psql')
  }
  throw new Error('psql not found: install Debian\'s postgresql (tests/postgres/up does)')
}

function pgBins() {
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return []
  return readdirSync(root).map((v) => join(root, v, 'bin'))
}

/** A URL for a fresh, empty schema of its own on the test PostgreSQL server. */
export function postgresUrl() {
  const url = process.env.URUMI_TEST_POSTGRES_URL
  if (!url) {
    throw new Error(
      'URUMI_TEST_POSTGRES_URL is not set: start PostgreSQL with `eval "$(tests/postgres/up)"` ' +
        '(from the repository root) and run the tests again',
    )
  }
  const schema = `n_${randomBytes(8).toString('hex')}`
  execFileSync(psql(), [url, '-q', '-c', `CREATE SCHEMA ${schema}`], { stdio: ['ignore', 'ignore', 'inherit'] })
  const sep = url.includes('?') ? '&' : '?'
  return `${url}${sep}options[search_path]=${schema}`
}

/** Resolves after `ms`. @param {number} ms @returns {Promise<void>} */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** RSS after a full garbage collection (run node with --expose-gc). */
export async function settledRss() {
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.()
    await sleep(20)
  }
  return process.memoryUsage().rss
}
