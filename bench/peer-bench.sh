#!/usr/bin/env bash
# TokenRouter as the `custom` target of shared/peer-bench (run its setup.sh once first).
#   bench/peer-bench.sh [targets...]      default targets: direct miniproxy custom
# env: PEER_BENCH (the peer-bench directory, default ../shared/peer-bench beside the repo, else
#      /work/shared/peer-bench), OUT (results directory), and anything run.sh reads (DUR, CONCS...).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEER_BENCH="${PEER_BENCH:-$ROOT/../shared/peer-bench}"
[ -x "$PEER_BENCH/run.sh" ] || PEER_BENCH=/work/shared/peer-bench
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
(cd "$ROOT" && cargo build --release --locked -p tokenrouter)
DATA="$(mktemp -d /tmp/tokenrouter-peer-bench.XXXXXX)"
export GW_CMD="env OPENAI_API_KEY=sk-mock OPENAI_BASE_URL=http://127.0.0.1:18000/v1 TOKENROUTER_API_KEY=sk-peer-bench-key $TARGET_DIR/release/tokenrouter serve --data-dir $DATA --http-addr 127.0.0.1:18200 --grpc-addr 127.0.0.1:18201 --no-dashboard"
export GW_URL=http://127.0.0.1:18200/v1/chat/completions
export GW_HEADERS='Authorization: Bearer sk-peer-bench-key'
if [ "$#" -eq 0 ]; then set -- direct miniproxy custom; fi
"$PEER_BENCH/run.sh" "$@"
