// ESM entry of @urumi/node: the same objects as the CommonJS entry (index.js).
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const urumi = require('./index.js')

export const { Provisioner, UrumiError, errorCodes, toUrumiError, version } = urumi
export default urumi
