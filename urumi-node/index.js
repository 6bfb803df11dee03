// @urumi/node: the thin JavaScript layer over the native addon (native.js).
//
//   Provisioner (this file) ──every call──▶ NativeProvisioner (Rust, urumi-core)
//        rejections "[code] message" ──toUrumiError──▶ UrumiError { code, message }
//        changes() ──▶ async generator over ChangeStream.next(); `break` closes it
//
// The only logic here is the error mapping (napi cannot set `.code` on a Promise
// rejection, so the Rust side puts the code in front of the message) and the async
// generator. Everything else is the core's.
'use strict'

const native = require('./native.js')

/** Every code an error may carry, in urumi-core's order (ErrorKind::ALL). */
const errorCodes = Object.freeze(native.errorCodes())
const known = new Set(errorCodes)
const coded = /^\[([a-z_]+)\] ([\s\S]*)$/

/** An error from Urumi: `code` is the HTTP API's problem code (`not_found`, …). */
class UrumiError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   */
  constructor(code, message) {
    super(message)
    this.name = 'UrumiError'
    this.code = code
  }
}

/** The one error mapping: a native "[code] message" error becomes a UrumiError. */
function toUrumiError(err) {
  if (err instanceof UrumiError || !(err instanceof Error)) return err
  const m = coded.exec(err.message)
  if (m === null || !known.has(m[1])) return err
  return new UrumiError(m[1], m[2])
}

async function call(fn) {
  try {
    return await fn()
  } catch (err) {
    throw toUrumiError(err)
  }
}

async function* follow(stream) {
  try {
    for (;;) {
      let change
      try {
        change = await stream.next()
      } catch (err) {
        throw toUrumiError(err)
      }
      if (change === null) return
      yield change
    }
  } finally {
    stream.close()
  }
}

/** Provisions isolated WooCommerce stores on Kubernetes. See index.d.ts. */
class Provisioner {
  #native

  /** Use `Provisioner.open()`. */
  constructor(handle) {
    if (!(handle instanceof native.NativeProvisioner)) {
      throw new TypeError('use `await Provisioner.open({ state })` to open a Provisioner')
    }
    this.#native = handle
  }

  static open(options) {
    return call(async () => new Provisioner(await native.NativeProvisioner.open(options)))
  }

  create(request, options) {
    return call(() => this.#native.create(request, options))
  }

  get(name) {
    return call(() => this.#native.get(name))
  }

  list(query) {
    return call(() => this.#native.list(query))
  }

  delete(name, options) {
    return call(() => this.#native.delete(name, options))
  }

  update(name, change, options) {
    return call(() => this.#native.update(name, change, options))
  }

  retry(name, options) {
    return call(() => this.#native.retry(name, options))
  }

  upgrade(name, options) {
    return call(() => this.#native.upgrade(name, options))
  }

  suspend(name, options) {
    return call(() => this.#native.suspend(name, options))
  }

  resume(name, options) {
    return call(() => this.#native.resume(name, options))
  }

  credentials(name) {
    return call(() => this.#native.credentials(name))
  }

  usage(name) {
    return call(() => this.#native.usage(name))
  }

  revisions(name) {
    return call(() => this.#native.revisions(name))
  }

  plans() {
    try {
      return this.#native.plans()
    } catch (err) {
      throw toUrumiError(err)
    }
  }

  verify(name) {
    return call(() => this.#native.verify(name))
  }

  events(name, page) {
    return call(() => this.#native.events(name, page))
  }

  wait(name, options) {
    return call(() => this.#native.wait(name, options))
  }

  waitDeleted(name, options) {
    return call(() => this.#native.waitDeleted(name, options))
  }

  changes(options) {
    let stream
    try {
      stream = this.#native.changes(options?.after ?? undefined)
    } catch (err) {
      throw toUrumiError(err)
    }
    return follow(stream)
  }

  close() {
    return call(() => this.#native.close())
  }

  get [Symbol.toStringTag]() {
    return 'Provisioner'
  }
}

if (typeof Symbol.asyncDispose === 'symbol') {
  Object.defineProperty(Provisioner.prototype, Symbol.asyncDispose, {
    value: function () {
      return this.close()
    },
  })
}

module.exports = {
  Provisioner,
  UrumiError,
  errorCodes,
  toUrumiError,
  version: native.version(),
}
