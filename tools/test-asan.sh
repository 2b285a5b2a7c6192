#!/usr/bin/env bash
# The addon's tests under AddressSanitizer (`npm run test:asan`).
#
# Builds binding.gyp's Debug configuration (gcc's -fsanitize=address) into build/Debug,
# leaving build/Release alone, then runs the tests that drive the addon hardest with
# REGIONS_NATIVE_BUILD=asan (src/arch/addon.ts loads build/Debug) and libasan preloaded:
# node itself is not instrumented, and libasan must be the process's first library. Child
# processes, regiond included (spawned with process.execPath), inherit both variables.
#
# ASan stops a process at its first error. Every report goes to a file under a temporary
# directory (regiond's stderr goes nowhere), and any file there fails the run, printed, even
# if the tests passed: a regiond that died while no request was outstanding fails no test.
#
# Usage: tools/test-asan.sh [test files under dist/test ...]   (default: the list below)
# Environment: REGIONS_STRESS_ITERATIONS (default 2000 here) for test/35-lifetime-stress.

set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "test-asan: $*" >&2
  exit 1
}

# npm's own node-gyp (the one `npm install` uses): npm names it in npm_config_node_gyp
# for scripts; run directly, find npm's bundled copy; npx only as the last resort.
node_gyp() {
  local bundled
  bundled="$(npm root -g 2>/dev/null)/npm/node_modules/node-gyp/bin/node-gyp.js"
  if [[ -n "${npm_config_node_gyp:-}" && -f "${npm_config_node_gyp}" ]]; then
    node "$npm_config_node_gyp" "$@"
  elif [[ -f "$bundled" ]]; then
    node "$bundled" "$@"
  else
    npx --yes node-gyp "$@"
  fi
}

libasan="$(gcc -print-file-name=libasan.so)"
# gcc prints the bare name back when it has no such file.
[[ "$libasan" == /* && -e "$libasan" ]] || fail "gcc has no libasan.so: install gcc's AddressSanitizer runtime (Debian: libasan8)"

# node-gyp reads the Node headers' location from npm's configuration, which only npm exports.
if [[ -z "${npm_config_nodedir:-}" ]]; then
  nodedir="$(npm config get nodedir 2>/dev/null || true)"
  if [[ -n "$nodedir" && "$nodedir" != undefined && "$nodedir" != null ]]; then export npm_config_nodedir="$nodedir"; fi
fi

echo "test-asan: building build/Debug (AddressSanitizer)"
# configure, not rebuild: rebuild would delete build/Release.
node_gyp configure --loglevel=warn >/dev/null
node_gyp build --debug --loglevel=warn >/dev/null
npx tsc -p tsconfig.json

logs="$(mktemp -d "${TMPDIR:-/tmp}/regions-asan.XXXXXX")"
trap 'rm -rf "$logs"' EXIT

export REGIONS_NATIVE_BUILD=asan
export LD_PRELOAD="$libasan${LD_PRELOAD:+:$LD_PRELOAD}"
# detect_leaks=0: node frees little at exit, by design. handle_segv=0 and
# allow_user_segv_handler=1: the addon's SIGSEGV handler (dirty tracking, chaining to V8's)
# must see faults first, and tests make children die by SIGSEGV on purpose; handle_sigbus=0
# likewise. abort_on_error=1: a process with an error dies by SIGABRT, unmistakably.
export ASAN_OPTIONS="detect_leaks=0:handle_segv=0:allow_user_segv_handler=1:handle_sigbus=0:abort_on_error=1:log_path=$logs/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export REGIONS_STRESS_ITERATIONS="${REGIONS_STRESS_ITERATIONS:-2000}"
export REGIONS_QUIET=1

# The proof that children run the ASan build: a regiond started here has libasan and
# build/Debug's addon mapped.
node --input-type=module - <<'EOF' || fail "regiond does not run the AddressSanitizer build"
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPool, openPool } from './dist/src/index.js';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-asan-check-'));
const file = path.join(dir, 'check.pool');
createPool(file, { size: '8MiB', mode: 'exclusive' }).close();
const pool = openPool(file, { mode: 'shared' });
const pid = pool.info().server?.pid;
const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
pool.close();
process.kill(pid, 'SIGTERM');
fs.rmSync(dir, { recursive: true, force: true });
const asan = maps.includes('libasan') && maps.includes(path.join('build', 'Debug', 'regions_native.node'));
console.log(`test-asan: regiond (pid ${pid}) runs ${asan ? 'libasan and build/Debug/regions_native.node' : 'WITHOUT the ASan build'}`);
process.exit(asan ? 0 : 1);
EOF

tests=("$@")
if [[ ${#tests[@]} -eq 0 ]]; then
  tests=(dist/test/02-native.test.js dist/test/04-native-tracking.test.js dist/test/06-native-shootdown.test.js dist/test/26-native-commit.test.js
    dist/test/30-map.test.js dist/test/49-quiet-mappers.test.js dist/test/35-lifetime-stress.test.js dist/test/40-regiond.test.js
    dist/test/43-shared-atomicity.test.js)
fi
echo "test-asan: REGIONS_STRESS_ITERATIONS=$REGIONS_STRESS_ITERATIONS; ${tests[*]}"
status=0
# One file at a time (about 4 minutes in all on 2 cores): two ASan processes at once slow
# each other enough to break tests that wait on timing, such as regiond's idle exit.
node --test --test-concurrency=1 --test-timeout=1800000 "${tests[@]}" || status=$?

reports=("$logs"/asan*)
if [[ -e "${reports[0]}" ]]; then
  for report in "${reports[@]}"; do
    echo "==== AddressSanitizer report ${report##*/} (the number is the pid) ====" >&2
    cat "$report" >&2
  done
  fail "${#reports[@]} process(es) stopped by AddressSanitizer (reports above)"
fi
[[ $status -eq 0 ]] || fail "tests failed (exit $status) without an AddressSanitizer report"
echo "test-asan: passed, no AddressSanitizer report"
