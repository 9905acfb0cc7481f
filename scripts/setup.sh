#!/usr/bin/env bash
# npm run setup: make this checkout ready to run and test. Idempotent: every
# step checks first and does nothing when its work is already done.
#  1. system packages (redis-server, redis-tools, nutcracker, libfaiss-dev,
#     libopenblas-dev; for the tests python3-redis (redis-py), iproute2
#     (network namespaces), openssl (certificates) and tcl (Redis's own test
#     suite, npm run redis-suite)): installed with apt-get
#     when we are root on Debian or Ubuntu, otherwise listed with the command
#     to install them;
#  2. npm dependencies from package-lock.json (skipped when it is unchanged);
#  3. the TypeScript build.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }

packages=(redis-server redis-tools nutcracker libfaiss-dev libopenblas-dev python3-redis iproute2 openssl tcl)
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
else
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v redis-cli >/dev/null || missing+=(redis-tools)
  command -v nutcracker >/dev/null || missing+=(nutcracker)
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "missing system packages: ${missing[*]}"
    say "on Debian/Ubuntu: sudo apt-get install -y ${missing[*]}"
    say "on macOS: brew install redis twemproxy faiss openblas"
    say "(redis-server is needed for 'npm start' without --upstream and for the tests;"
    say " nutcracker only for 'npm run bench')"
    if ! command -v redis-server >/dev/null 2>&1; then
      exit 1
    fi
  fi
else
  say "system packages present"
fi

stamp=node_modules/.semcache-lock.sha256
want=$(sha256sum package-lock.json package.json | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  say "node_modules up to date"
else
  say "installing npm dependencies"
  # Dependency install scripts are not run (npm 11 blocks them; on npm 10 they
  # would try to download prebuilt binaries): the steps below do what they must.
  # 'npm install' rather than 'npm ci': npm 11 writes lock files without the
  # other platforms' optional packages (biome, rollup, esbuild) and then its
  # own 'npm ci' refuses them as out of sync; 'npm install' follows the lock.
  npm install --no-audit --no-fund --ignore-scripts
  echo "$want" >"$stamp"
fi
bash scripts/build-faiss.sh

say "building"
npm run --silent build
say "done. Try: npm start   (or: npm test)"
