// npm's install hook. In a source checkout (Cargo.toml next to package.json, as with
// `npm install ./urumi-node`) it builds the native addon with `npm run build`; a package
// installed from a registry tarball ships the addon prebuilt and has nothing to build.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
if (!existsSync(`${root}/Cargo.toml`)) process.exit(0)
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const run = spawnSync(npm, ['run', 'build'], { cwd: root, stdio: 'inherit' })
process.exit(run.status ?? 1)
