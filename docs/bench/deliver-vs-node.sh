#!/usr/bin/env bash
# `signet bench deliver` beside the hand-written Node sender (standardwebhooks + undici -> node:http
# verifying receiver, ../shared/peers/run_webhooks.sh), alternated round by round so every figure
# stands beside its baseline in the same minutes (a machine's speed drifts by ±10 % within an hour).
# Prints one line per run and a table at the end.
#
#   cargo build --release -p signet
#   docs/bench/deliver-vs-node.sh                                  # 3 rounds of 50 000 messages
#   ROUNDS=5 MSGS=20000 docs/bench/deliver-vs-node.sh
#   BINS="/tmp/signet-before target/release/signet" docs/bench/deliver-vs-node.sh   # two builds, alternated
#
# Both sides warm up first and leave it out of their figures: `bench deliver` with its --warmup
# (1 000 messages by default), the Node sender with its WARMUP (1 000).
# Settings: BINS (signet binaries, default target/release/signet), ROUNDS (3), MSGS (50000),
# ARGS (more `bench deliver` flags, e.g. "--batch 1" or a --database-url), CONC (the Node sender's
# requests in flight, 64), PEERS (the peers directory, default ../shared/peers beside the repository).
# Run it on a quiet machine: anything else running halves both figures, not evenly.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
read -r -a bins <<<"${BINS:-$root/target/release/signet}"
rounds="${ROUNDS:-3}" msgs="${MSGS:-50000}" conc="${CONC:-64}"
peers="${PEERS:-$root/../shared/peers}"
for b in "${bins[@]}"; do
  [ -x "$b" ] || { echo "no signet binary at $b; run cargo build --release -p signet or set BINS" >&2; exit 1; }
done
[ -x "$peers/run_webhooks.sh" ] || { echo "no Node sender at $peers/run_webhooks.sh; set PEERS to the peers directory" >&2; exit 1; }
results=()
for r in $(seq 1 "$rounds"); do
  for b in "${bins[@]}"; do
    # shellcheck disable=SC2086 # ARGS is a list of flags
    v=$("$b" bench deliver --messages "$msgs" ${ARGS:-} | sed -n 's/^deliveries\/s: \([0-9]*\).*/\1/p')
    [ -n "$v" ] || { echo "round $r: $b printed no deliveries/s" >&2; exit 1; }
    echo "round $r  $b  $v deliveries/s"
    results+=("$r|$b|$v")
  done
  v=$(cd "$peers" && N="$msgs" RUNS=1 CONC="$conc" ./run_webhooks.sh 2>&1 |
    sed -n 's/.*deliveries_per_s=\([0-9]*\).*/\1/p')
  [ -n "$v" ] || { echo "round $r: the Node sender printed no deliveries_per_s" >&2; exit 1; }
  echo "round $r  node sender  $v deliveries/s"
  results+=("$r|node sender|$v")
done
echo
echo "| round | $(printf '%s | ' "${bins[@]}")node sender |"
echo "|---|$(printf -- '---|%.0s' "${bins[@]}")---|"
for r in $(seq 1 "$rounds"); do
  row="| $r |"
  for x in "${results[@]}"; do
    [ "${x%%|*}" = "$r" ] && row="$row ${x##*|}/s |"
  done
  echo "$row"
done
