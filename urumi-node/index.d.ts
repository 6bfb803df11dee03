// Types of @urumi/node's JavaScript layer (index.js / index.mjs). The option types come
// from the generated native.d.ts (TSDoc from the Rust docs); the result types are the
// HTTP API's JSON, which every method returns as a plain object.
import type {
  CreateRequest,
  ListOptions,
  OpenOptions,
  PageOptions,
  RequestOpts,
  WaitDeletedOptions,
  WaitOptions,
} from './native'

export type {
  CreateRequest,
  ListOptions,
  OpenOptions,
  PageOptions,
  RequestOpts,
  WaitDeletedOptions,
  WaitOptions,
}

/** Where a store stands. */
export type Status = 'Pending' | 'Provisioning' | 'Ready' | 'Updating' | 'Degraded' | 'Failed' | 'Deleting'

/** The provisioning step in progress, or the one that failed. */
export type Step = 'namespace' | 'guardrails' | 'credentials' | 'release' | 'readiness' | 'done'

/** A store record: the HTTP API's `Store` JSON. */
export interface Store {
  /** The store's unique name (a DNS label). */
  name: string
  /** The owning tenant. */
  tenant: string
  /** What it runs (`woocommerce`). */
  engine: string
  /** Its plan (`small`, `medium`, `large`). */
  plan: string
  /** Where it stands. */
  status: Status
  /** The step in progress, or the one that failed. */
  step: Step
  /** The last progress note or failure reason, for the store's owner. */
  message: string
  /** Its Kubernetes namespace. */
  namespace: string
  /** Where it answers, once known. */
  urls: { storefront: string | null; admin: string | null }
  /** When it was accepted (RFC 3339, UTC). */
  createdAt: string
  /** When the record last changed. */
  updatedAt: string
  /** When it first became Ready. */
  readyAt: string | null
  /** Seconds from acceptance to Ready. */
  provisioningSeconds: number | null
  /** Provisioning attempts made (1 on the first run). */
  attempts: number
  /** Bumped by every change of the record. */
  version: number
  /** The Kubernetes object managing the store (`Store <namespace>/<name>`, operator mode); absent otherwise. */
  managedBy?: string
  /** Suspended: no pod runs and no Ingress exists; volumes and credentials are kept. */
  suspended: boolean
  /** The chart it runs; `null` before its release step. */
  chart: StoreChart | null
}

/** The chart a store runs. */
export interface StoreChart {
  /** The chart's version. */
  version: string
  /** The WordPress version it installs. */
  appVersion: string
  /** This provisioner bundles another chart version: an upgrade would move the store. */
  outdated: boolean
}

/** One revision of a store's release, as helm recorded it. */
export interface StoreRevision {
  /** Helm's revision number, from 1. */
  revision: number
  /** The chart's version. */
  chartVersion: string
  /** The application version it installed. */
  appVersion: string
  /** `deployed`, `superseded`, `failed`, `pending-upgrade`, … */
  status: string
  /** RFC 3339, when helm says. */
  updatedAt: string | null
  /** What made it (`Install complete`, `Upgrade complete`, …). */
  description: string
}

/** One page of a list, newest first. */
export interface Page<T> {
  /** The items of this page. */
  items: T[]
  /** Pass as `cursor` for the next page; `null` on the last page. */
  nextCursor: string | null
}

/** What happened to a store. */
export type ChangeKind = 'created' | 'updated' | 'deleted'

/** One entry of the durable change feed. */
export interface Change {
  /** The cursor: pass it as `after` to resume right after this change. */
  seq: number
  /** When the change was written. */
  at: string
  /** What happened. */
  kind: ChangeKind
  /** The record after the change (for `deleted`, its last record). */
  store: Store
}

/** A store's admin login. Handle the password as a secret. */
export interface StoreCredentials {
  /** The WordPress admin URL. */
  adminUrl: string | null
  /** The admin user name. */
  username: string
  /** The admin password. */
  password: string
}

/** One step of `verify`. */
export interface VerifyStep {
  name: string
  ok: boolean
  ms: number
  status?: number
  detail?: string
}

/** The outcome of `verify`. */
export interface VerifyReport {
  /** True when every step ran and passed. */
  ok: boolean
  /** The steps that ran, in order; when `ok` is false the last one failed. */
  steps: VerifyStep[]
  /** The test order the checkout created, once it created one. */
  orderId?: number
}

/** One quota resource of a store: what it holds against what its plan allows. */
export interface ResourceUsage {
  /** `requests.cpu`, `limits.cpu`, `requests.memory`, `limits.memory`, `pods`,
   * `persistentvolumeclaims`, `requests.storage` or `limits.ephemeral-storage`. */
  resource: string
  /** The unit of `used` and `hard`. */
  unit: 'millicores' | 'bytes' | 'count'
  used: number
  hard: number
}

/** One of a store's volumes. */
export interface VolumeUsage {
  claim: string
  /** Bytes asked for. */
  requested: number
  /** Bytes of the bound volume, once bound. */
  capacity: number | null
  phase: string
  volume: string | null
}

/** The outcome of `usage`: read from the cluster when asked. */
export interface StoreUsage {
  name: string
  plan: string
  resources: ResourceUsage[]
  volumes: VolumeUsage[]
  observedAt: string
}

/** A plan and what it grants (Kubernetes quantities). */
export interface PlanSize {
  name: string
  cpuRequest: string
  cpuLimit: string
  memoryRequest: string
  memoryLimit: string
  pods: number
  pvcs: number
  storage: string
  ephemeralStorage?: string
}

/** One audit event. Never contains a password or an API key. */
export interface AuditEvent {
  id: string
  at: string
  actor: string
  tenant: string | null
  action: string
  store: string | null
  outcome: 'success' | 'failure' | 'denied'
  detail: string
  sourceIp: string | null
}

/** The stable error codes, the HTTP API's problem `code`. */
export type ErrorCode =
  | 'invalid_name'
  | 'invalid_spec'
  | 'store_exists'
  | 'not_found'
  | 'quota_exceeded'
  | 'rate_limited'
  | 'conflict'
  | 'idempotency_mismatch'
  | 'idempotency_in_progress'
  | 'unauthorized'
  | 'forbidden'
  | 'timeout'
  | 'invalid_config'
  | 'unavailable'
  | 'unsupported'
  | 'internal'
  | 'store_failed'
  | 'cursor_expired'
  | 'managed_externally'
  | 'plan_too_small'
  | 'precondition_failed'

/** Every code an error may carry, in urumi-core's order. */
export declare const errorCodes: readonly ErrorCode[]

/** This package's version. */
export declare const version: string

/** Every rejection of a Urumi call: match on `code`, never on the message. */
export declare class UrumiError extends Error {
  constructor(code: ErrorCode, message: string)
  readonly name: 'UrumiError'
  /** The stable machine code (`not_found`, `store_exists`, …). */
  readonly code: ErrorCode
}

/** A native "[code] message" error as a `UrumiError`; anything else unchanged. */
export declare function toUrumiError(err: unknown): unknown

/** Where to resume the change feed. */
export interface ChangesOptions {
  /** Replay every change after this `seq`, then follow; absent: from now on. */
  after?: number | null
}

/**
 * Provisions isolated WooCommerce stores on Kubernetes.
 *
 * ```js
 * const p = await Provisioner.open({ state: 'sqlite://urumi.db' })
 * await p.create({ name: 'shop1' }, { idempotencyKey: 'order-1001' })
 * const store = await p.wait('shop1', { status: 'Ready', timeoutMs: 300_000 })
 * ```
 *
 * Its background worker provisions and tears down stores until `close()` (or until the
 * object is garbage-collected). A Promise nobody awaits never leaves a store half done.
 * Every method rejects with a {@link UrumiError}.
 */
export declare class Provisioner {
  private constructor()
  /**
   * Opens the state store, connects to the cluster (`kubeconfig`, else `$KUBECONFIG`)
   * and starts the worker. Rejects with `invalid_config` (bad settings, `helm` not on
   * PATH, unusable kubeconfig), `unsupported` or `unavailable`.
   */
  static open(options: OpenOptions): Promise<Provisioner>
  /**
   * Accepts a new store (`Pending`); provisioning runs in the background. Rejects with
   * `invalid_name`, `invalid_spec`, `forbidden`, `store_exists`, `quota_exceeded`,
   * `rate_limited`, `idempotency_mismatch`, `idempotency_in_progress`, `unavailable`.
   */
  create(request: CreateRequest, options?: RequestOpts): Promise<Store>
  /** One store. Rejects with `not_found`. */
  get(name: string): Promise<Store>
  /** One page of stores, newest first. Rejects with `invalid_spec`. */
  list(query?: ListOptions): Promise<Page<Store>>
  /** Starts deleting a store (`Deleting`). Rejects with `not_found` once it is gone. */
  delete(name: string, options?: RequestOpts): Promise<Store>
  /**
   * Changes a Ready store's plan: `Updating`, then `Ready`. Rejects with `invalid_spec`,
   * `not_found`, `conflict` (not Ready), `plan_too_small` (nothing changed).
   */
  update(name: string, change: { plan: string }, options?: RequestOpts): Promise<Store>
  /** Provisions a `Failed` store again. Rejects with `not_found`, `conflict`. */
  retry(name: string, options?: RequestOpts): Promise<Store>
  /**
   * Moves an outdated store (`chart.outdated`) to the bundled chart: `Updating`, then
   * `Ready` on it; a failed upgrade is rolled back (Ready on the previous chart). Not
   * outdated: unchanged. Rejects with `not_found`, `conflict`, `precondition_failed`.
   */
  upgrade(name: string, options?: RequestOpts): Promise<Store>
  /**
   * Stops a Ready store: `Updating`, then `Ready` with `suspended: true` (no pod, no
   * Ingress; volumes and credentials kept). Already suspended: unchanged. Rejects with
   * `not_found`, `conflict` (not Ready), `managed_externally`.
   */
  suspend(name: string, options?: RequestOpts): Promise<Store>
  /** Starts a suspended store again on the same volumes and credentials. Rejects as `suspend`. */
  resume(name: string, options?: RequestOpts): Promise<Store>
  /** The store's admin login (audited). Rejects with `not_found`. */
  credentials(name: string): Promise<StoreCredentials>
  /**
   * What the store uses of its plan (quota used/hard, volumes), read now. Rejects with
   * `not_found`, `conflict` (no quota yet or any more), `unavailable` (not counted yet).
   */
  usage(name: string): Promise<StoreUsage>
  /** The revisions of the store's release, oldest first (helm's history). Rejects with `not_found`. */
  revisions(name: string): Promise<StoreRevision[]>
  /** Every plan and what it grants, smallest first. */
  plans(): PlanSize[]
  /** Proves a Ready store takes an order. Rejects with `not_found`, `conflict`. */
  verify(name: string): Promise<VerifyReport>
  /** The store's audit trail, newest first. Rejects with `not_found`, `invalid_spec`. */
  events(name: string, page?: PageOptions): Promise<Page<AuditEvent>>
  /**
   * Waits until the store has `status` (default `Ready`, at most `timeoutMs`, default
   * 300000). Rejects with `timeout`, `not_found`, `store_failed`.
   */
  wait(name: string, options?: WaitOptions): Promise<Store>
  /** Waits until the store is gone. Rejects with `timeout`. */
  waitDeleted(name: string, options?: WaitDeletedOptions): Promise<void>
  /**
   * The durable change feed, for `for await`: every change after `after`, then each new
   * one. Leaving the loop (`break`, `return`, a throw) ends the subscription. Throws
   * `cursor_expired` when `after` is older than the retention (list, then follow).
   */
  changes(options?: ChangesOptions): AsyncGenerator<Change, void, undefined>
  /** Stops the worker at a safe point; later calls reject with `unavailable`. */
  close(): Promise<void>
}
