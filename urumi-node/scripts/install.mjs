// npm's install hook. In a source checkout (Cargo.toml next to package.json, as with
// `npm install ./urumi-node`) it builds the native addon with `npm run build`; a package
// installed from a registry tarball ships the addon prebuilt and has nothing to build.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
if (!existsSync(`${root}/Cargo.toml`)) process.exit(0)
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
// `npm install ./urumi-node` from another project links this folder without installing
// its own dependencies here: fetch the build tool (@napi-rs/cli, pinned by the lock file)
// first when it is missing.
if (!existsSync(`${root}/node_modules/.bin/napi`)) {
  const deps = spawnSync(
    npm,
    ['ci', '--ignore-scripts', '--omit=dev', '--no-audit', '--no-fund'],
    { cwd: root, stdio: 'inherit' },
  )
  if (deps.status !== 0) process.exit(deps.status ?? 1)
}
const run = spawnSync(npm, ['run', 'build'], { cwd: root, stdio: 'inherit' })
process.exit(run.status ?? 1)
