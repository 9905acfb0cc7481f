#!/usr/bin/env bash
# scripts/build-faiss.sh: make require('faiss-node') work. Called by
# scripts/setup.sh after npm install (which runs no install scripts). Idempotent.
#
#  1. If the addon loads, carries semcache's patch and passes
#     scripts/faiss/smoke.cjs, do nothing.
#  2. Where a compiler and a system FAISS are present (Debian: libfaiss-dev,
#     FAISS 1.7.3), compile faiss-node's src/faiss.cc with node-gyp, with
#     scripts/faiss/faiss-node.patch applied, in a scratch directory, and copy
#     the result to node_modules/faiss-node/build/Release/faiss-node.node, the
#     first place its loader (the `bindings` package) looks. Nothing tracked in
#     git and nothing else in node_modules is touched.
#  3. Else faiss-node's own prebuilt binary (prebuild-install, as its install
#     script does; it needs github.com). semcache runs on it, with the slower
#     paths that docs/index.md describes (no Float32Array input, index builds
#     on the event loop, no IVF).
#
# The patch (docs/index.md, "The faiss-node patch") adds Float32Array fast
# paths, turns FAISS exceptions into JS errors, makes the addon safe to load in
# worker threads, stops two buffer leaks and adds setParam (efSearch, nprobe).
#
# Overrides: FAISS_INCLUDE (dir holding faiss/IndexFlat.h), FAISS_LIB (path of
# libfaiss.a or libfaiss.so), BLAS_LIBS (linker flags), NODE_GYP (node-gyp.js),
# NODEDIR (Node headers prefix), FAISS_SKIP_PREBUILT=1, FAISS_PREFER_PREBUILT=1
# (try step 3 before step 2).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
pkg=node_modules/faiss-node

say() { printf 'build-faiss: %s\n' "$*"; }
die() {
  say "$1"
  shift
  for line in "$@"; do say "  $line"; done
  exit 1
}

# LD_BIND_NOW makes the loader resolve every symbol at dlopen time, so a BLAS
# or LAPACK symbol the link missed fails here, not on first use in production.
smoke() { LD_BIND_NOW=1 node scripts/faiss/smoke.cjs; }

[ -f "$pkg/package.json" ] || die "node_modules/faiss-node is missing: run 'npm ci' first"

# PATCHED=1 makes the smoke test also require the patch, at its current version.
if PATCHED=1 smoke >/dev/null 2>&1; then
  say "faiss-node loads, with semcache's patch; nothing to do"
  exit 0
fi

try_prebuilt() {
  [ "${FAISS_SKIP_PREBUILT:-}" != 1 ] && [ -f node_modules/prebuild-install/bin.js ] || return 1
  say "trying faiss-node's prebuilt binary (needs github.com)"
  local to=()
  command -v timeout >/dev/null 2>&1 && to=(timeout 60)
  if (cd "$pkg" && "${to[@]}" node ../prebuild-install/bin.js --runtime napi) >/dev/null 2>&1 &&
    smoke >/dev/null 2>&1; then
    say "installed faiss-node's prebuilt binary (without semcache's patch: see docs/index.md)"
    exit 0
  fi
  say "no usable prebuilt binary"
  return 1
}

if [ "${FAISS_PREFER_PREBUILT:-}" = 1 ]; then
  try_prebuilt || true
fi

# --- 3. compile against the system FAISS --------------------------------------
apt_hint="on Debian/Ubuntu: sudo apt-get install -y g++ make python3 libfaiss-dev libopenblas-dev"

missing=()
command -v c++ >/dev/null 2>&1 || missing+=("a C++ compiler (g++)")
command -v make >/dev/null 2>&1 || missing+=(make)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -ne 0 ]; then
  try_prebuilt || die "cannot compile faiss-node: missing ${missing[*]}" "$apt_hint"
fi

multiarch=$(c++ -print-multiarch 2>/dev/null || true)
faiss_include=${FAISS_INCLUDE:-}
if [ -z "$faiss_include" ]; then
  for d in /usr/include /usr/local/include; do
    [ -f "$d/faiss/IndexFlat.h" ] && faiss_include=$d && break
  done
fi
faiss_lib=${FAISS_LIB:-}
if [ -z "$faiss_lib" ]; then
  for f in /usr/lib/"$multiarch"/libfaiss.a /usr/lib/libfaiss.a /usr/local/lib/libfaiss.a \
    /usr/lib/"$multiarch"/libfaiss.so /usr/lib/libfaiss.so /usr/local/lib/libfaiss.so; do
    [ -f "$f" ] && faiss_lib=$f && break
  done
fi
[ -n "$faiss_include" ] && [ -n "$faiss_lib" ] || try_prebuilt ||
  die "cannot compile faiss-node: FAISS headers or library not found" "$apt_hint" \
    "(or set FAISS_INCLUDE and FAISS_LIB to a FAISS >= 1.7.3 install)"

has_lib() { c++ -shared -o /dev/null -x c /dev/null "$@" >/dev/null 2>&1; }
blas_libs=${BLAS_LIBS:-}
if [ -z "$blas_libs" ]; then
  if has_lib -lopenblas; then
    blas_libs="-lopenblas"
  elif has_lib -lblas -llapack; then
    blas_libs="-lblas -llapack"
  else
    die "cannot compile faiss-node: no BLAS/LAPACK to link FAISS with" "$apt_hint"
  fi
fi
has_lib -fopenmp || die "cannot compile faiss-node: the compiler has no OpenMP (libgomp)" "$apt_hint"

node_gyp=${NODE_GYP:-}
if [ -z "$node_gyp" ]; then
  for f in "$(npm root -g 2>/dev/null)/npm/node_modules/node-gyp/bin/node-gyp.js" \
    /usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js \
    node_modules/node-gyp/bin/node-gyp.js; do
    [ -f "$f" ] && node_gyp=$f && break
  done
fi
[ -n "$node_gyp" ] || die "cannot compile faiss-node: node-gyp not found (it ships with npm)" \
  "set NODE_GYP=/path/to/node-gyp/bin/node-gyp.js"

# Headers of the running Node, so node-gyp does not try to download them.
nodedir=${NODEDIR:-$(node -p 'require("node:path").resolve(process.execPath, "../..")')}
[ -f "$nodedir/include/node/node_api.h" ] || nodedir=/usr
[ -f "$nodedir/include/node/node_api.h" ] ||
  die "cannot compile faiss-node: Node.js headers (include/node/node_api.h) not found" \
    "install Node.js with its headers (nodejs from nodesource, or libnode-dev), or set NODEDIR"

addon_api=$(node -p 'require("node:path").dirname(require.resolve("node-addon-api/package.json"))' 2>/dev/null) ||
  die "node_modules/node-addon-api is missing: run 'npm ci' first"

work=$(mktemp -d "${TMPDIR:-/tmp}/semcache-faiss.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/node-addon-api"
cp "$pkg/src/faiss.cc" "$work/src/"
# git apply works outside a repository; `patch` is not on minimal images.
(cd "$work" && git apply -p1 "$repo/scripts/faiss/faiss-node.patch") ||
  die "scripts/faiss/faiss-node.patch does not apply to $pkg/src/faiss.cc (faiss-node $(node -p 'require("faiss-node/package.json").version'))"
cp "$addon_api"/*.h "$work/node-addon-api/"
cp scripts/faiss/binding.gyp scripts/faiss/faiss-compat.h "$work/"

say "compiling faiss-node against $faiss_lib ($blas_libs), Node headers from $nodedir"
log=$work/build.log
if ! (cd "$work" && node "$node_gyp" rebuild --nodedir="$nodedir" --release -- \
  -Dfaiss_include="$faiss_include" -Dfaiss_lib="$faiss_lib" -Dblas_libs="$blas_libs") >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  die "compiling faiss-node failed (log above)" "$apt_hint"
fi

rm -rf "$pkg/build"
mkdir -p "$pkg/build/Release"
cp "$work/build/Release/faiss-node.node" "$pkg/build/Release/faiss-node.node"

if ! out=$(PATCHED=1 smoke 2>&1); then
  printf '%s\n' "$out" >&2
  rm -rf "$pkg/build"
  die "the compiled faiss-node failed its smoke test (output above)" "$apt_hint"
fi
say "built $pkg/build/Release/faiss-node.node"
