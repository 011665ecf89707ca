#!/usr/bin/env bash
# The one command: builds the release binaries and runs every benchmark scenario against the
# direct simulators and a bare pass-through in the same run; prints one table, writes raw JSON.
# Arguments go to `tokenrouter-bench all` (e.g. --soak-secs 60, --only openai,streaming, --out DIR).
# (Equivalent: cargo run --release -p tokenrouter-bench -- all; building the three packages in one
# cargo invocation here keeps cargo from rebuilding shared dependencies with other feature sets.)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p tokenrouter -p tokenrouter-simulators -p tokenrouter-bench
exec "${CARGO_TARGET_DIR:-target}/release/tokenrouter-bench" all --no-build "$@"
