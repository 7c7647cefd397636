#!/usr/bin/env bash
# Delivery in the shape users deploy, on one machine: wrk (2 threads, C connections) posts
# POST /v1/messages/batch (BATCH messages each, one target) to `signet serve` (rate limits off), which
# delivers them to a Node receiver verifying every request with the `standardwebhooks` npm package
# (crates/signet/tests/receivers). Figures: publish rate over HTTP, and deliveries per second from the
# first message created to the last one delivered (the backlog drained after wrk stops included).
#
#   cargo build --release -p signet
#   docs/bench/deliver-xproc.sh                                   # SQLite file (synchronous=FULL)
#   PG=postgres://postgres@127.0.0.1:5432/test docs/bench/deliver-xproc.sh   # a fresh schema, dropped after
#
# Settings: SIGNET (binary, default target/release/signet), DUR (10s), BATCH (100), C (8).
# Needs wrk, sqlite3 (Debian packages; installed when missing), psql for PG, node and
# `npm ci` in crates/signet/tests/receivers (done here when missing).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
S="${SIGNET:-$root/target/release/signet}"
[ -x "$S" ] || { echo "no signet binary at $S; run cargo build --release -p signet or set SIGNET" >&2; exit 1; }
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
command -v sqlite3 >/dev/null || apt-get install -y -qq sqlite3 >/dev/null
receivers="$root/crates/signet/tests/receivers"
[ -d "$receivers/node_modules/standardwebhooks" ] || (cd "$receivers" && npm ci --no-audit --no-fund --loglevel=error)
d=$(mktemp -d); port="${PORT:-18860}"; rport="${RECEIVER_PORT:-18861}"
export SIGNET_SIGNING_KEYS="k1:$(head -c 32 /dev/urandom | base64)" SIGNET_SIGNING_ACTIVE_KEY=k1
export SIGNET_MASTER_KEY="$(head -c 32 /dev/urandom | base64)" SIGNET_ALLOWED_TARGET_CIDRS=127.0.0.0/8
secret="whsec_$(head -c 32 /dev/urandom | base64)"
if [ -n "${PG:-}" ]; then
  schema="xproc_$$"
  export SIGNET_DATABASE_URL="$PG" SIGNET_DATABASE_SCHEMA="$schema"
  q() { PGOPTIONS="-c search_path=$schema" psql "$PG" -Atc "$1"; }
else
  export SIGNET_DATABASE_URL="sqlite://$d/s.db"
  q() { sqlite3 "$d/s.db" "$1"; }
fi
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  if [ -n "${PG:-}" ]; then psql "$PG" -qc "drop schema if exists $schema cascade" >/dev/null 2>&1 || true; fi
  rm -rf "$d"
}
trap cleanup EXIT
"$S" migrate >/dev/null
KEY=$("$S" api-keys create --name bench --scope admin 2>/dev/null | tail -n 1); export KEY
SIGNET_RECEIVER_SECRET="$secret" node "$receivers/node_receiver.js" "$rport" > "$d/received.jsonl" & pids+=($!)
"$S" serve --listen "127.0.0.1:$port" --rate-limit-per-key 0 --rate-limit-per-ip 0 > "$d/serve.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
curl -sf -o /dev/null -X POST "http://127.0.0.1:$port/v1/targets" -H "Authorization: Bearer $KEY" \
  -H 'content-type: application/json' \
  -d "{\"name\":\"bench\",\"url_prefix\":\"http://127.0.0.1:$rport/\",\"secret\":\"$secret\"}"
BATCH="${BATCH:-100}" RPORT="$rport" python3 -c '
import json, os
url = "http://127.0.0.1:%s/webhook" % os.environ["RPORT"]
print(json.dumps({"messages": [{"url": url, "target": "bench", "body": {"n": i, "pad": "x" * 230}}
                               for i in range(int(os.environ["BATCH"]))]}))' > "$d/body.json"
cat > "$d/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
local f = io.open("$d/body.json"); wrk.body = f:read("*a"); f:close()
LUA
echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); store $([ -n "${PG:-}" ] && echo PostgreSQL || echo SQLite); batch ${BATCH:-100}, $((${C:-8})) connections, ${DUR:-10s}"
wrk -t2 -c"${C:-8}" -d"${DUR:-10s}" -s "$d/post.lua" "http://127.0.0.1:$port/v1/messages/batch" | grep -E "Requests/sec|Non-2xx|Latency"
for _ in $(seq 300); do
  left=$(q "select count(*) from tasks where state not in ('succeeded','dead')")
  [ "$left" = 0 ] && break; sleep 1
done
q "select 'published=' || count(*) || ' succeeded=' || sum(case when state='succeeded' then 1 else 0 end)
   || ' publish_per_s=' || round(count(*)*1000.0/(max(created_at_ms)-min(created_at_ms)),1)
   || ' deliveries_per_s=' || round(sum(case when state='succeeded' then 1 else 0 end)*1000.0/(max(finished_at_ms)-min(created_at_ms)),1)
   from tasks"
echo "receiver: verified $(grep -c '"verified":true' "$d/received.jsonl" || true), refused $(grep -c '"verified":false' "$d/received.jsonl" || true)"
