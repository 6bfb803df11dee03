// Types of the ESM entry (index.mjs): the same as the CommonJS entry's.
import * as urumi from './index.js'

export * from './index.js'
export default urumi
