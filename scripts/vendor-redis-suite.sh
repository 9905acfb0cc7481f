#!/usr/bin/env bash
# Vendor the parts of Redis's own test suite that scripts/redis-suite.mjs runs, from a git
# clone of redis/redis (BSD-3-Clause; its COPYING comes along). Reproduces test/redis-suite/:
#   bash scripts/vendor-redis-suite.sh /path/to/redis.git [tag]
set -euo pipefail
repo=${1:?usage: vendor-redis-suite.sh <redis git dir> [tag]}
tag=${2:-7.0.15}
out="$(cd "$(dirname "$0")/.." && pwd)/test/redis-suite"
units=(type/string type/incr type/list type/list-2 type/list-3 type/list-common type/hash
  type/set type/zset type/stream type/stream-cgroups multi pubsub pubsubshard protocol
  expire keyspace scan introspection introspection-2 info-command scripting tracking)
paths=(COPYING runtest tests/README.md tests/test_helper.tcl tests/support tests/helpers
  tests/assets tests/tmp/.gitignore)
for u in "${units[@]}"; do paths+=("tests/unit/$u.tcl"); done
rm -rf "$out/tests" "$out/COPYING" "$out/runtest"
mkdir -p "$out"
git --git-dir="$repo" archive "$tag" "${paths[@]}" | tar -x -C "$out"
echo "$tag $(git --git-dir="$repo" rev-parse "$tag^{commit}")" >"$out/VERSION"
echo "vendored Redis $tag's tests into $out"
