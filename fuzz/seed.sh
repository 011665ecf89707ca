#!/usr/bin/env bash
# Writes the seed corpora for cargo fuzz (fuzz/corpus/<target>/, where `cargo fuzz run` looks)
# from the recorded traffic in fixtures/. The corpora are generated, not committed.
set -euo pipefail
cd "$(dirname "$0")"
cargo run --release --quiet -p tokenrouter-fuzz-stable -- seed --out corpus "$@"
