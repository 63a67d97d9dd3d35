#!/usr/bin/env bash
# Set up ./.venv and run the demo: serve index/ on 127.0.0.1, load verified connectors, route a request.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python scripts/demo.py "$@"
