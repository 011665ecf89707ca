#!/usr/bin/env bash
# The one command: builds the release binaries and runs every benchmark scenario against the
# direct simulators and a bare pass-through in the same run; prints one table, writes raw JSON.
# Arguments go to `tokenrouter-bench all` (e.g. --soak-secs 60, --only openai,streaming, --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release --locked -p tokenrouter-bench -- all "$@"
