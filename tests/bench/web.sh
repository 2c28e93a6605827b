#!/usr/bin/env bash
# tests/bench/web.sh: runs tests/bench/web.mjs (the web app's first load,
# time to interactive and typing latency in headless Chromium) from the
# repository root, installing web/node_modules with `npm ci` first if it is
# missing. Flags go to web.mjs; `tests/bench/web.sh --help` lists them.
#
#   tests/bench/web.sh --write      # measure and rewrite the `## web app` section of BENCHMARKS.md
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
if [ ! -d web/node_modules/playwright-core ]; then
  (cd web && npm ci --no-audit --no-fund)
fi
exec node tests/bench/web.mjs "$@"
