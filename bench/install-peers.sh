#!/usr/bin/env bash
# Installs the benchmark's peers when they are missing, by package name only:
#   PMDK libpmemobj (Debian package libpmemobj-dev; needs root and apt-get),
#   lmdb-js and better-sqlite3 12 (npm; normally already there as devDependencies),
#   classic-level (npm; only for bench/level.ts, never a dependency).
# Prints one "bench: ..." line per peer it could not install; the suite then skips that peer.
# better-sqlite3 13 needs a newer Node than 20, hence the major version 12.
set -u
cd "$(dirname "$0")/.."

if [ ! -e /usr/include/libpmemobj.h ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpmemobj-dev; } >/dev/null; then
      echo "bench: apt-get could not install libpmemobj-dev; PMDK will be skipped"
    fi
  else
    echo "bench: libpmemobj-dev is missing and installing it needs root and apt-get; PMDK will be skipped"
  fi
fi

if ! node -e "require.resolve('lmdb')" 2>/dev/null; then
  npm install --no-save --no-audit --no-fund lmdb >/dev/null 2>&1 || echo "bench: npm could not install lmdb; lmdb-js will be skipped"
fi

if ! node -e "new (require('better-sqlite3'))(':memory:').close()" 2>/dev/null; then
  npm install --no-save --no-audit --no-fund 'better-sqlite3@^12' >/dev/null 2>&1 || echo "bench: npm could not install better-sqlite3@12; SQLite will be skipped"
fi
if ! node -e "require.resolve('classic-level')" 2>/dev/null; then
  npm install --no-save --no-audit --no-fund classic-level >/dev/null 2>&1 || echo "bench: npm could not install classic-level; bench/level.ts cannot run"
fi
exit 0
