#!/usr/bin/env bash
# The TypeScript client's CI entry: clean install from the lockfile, strict build, lint, tests.
set -euo pipefail
cd "$(dirname "$0")"
node --version
npm ci --ignore-scripts --no-audit --no-fund
npm test
