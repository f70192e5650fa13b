#!/usr/bin/env bash
# Runs Schemathesis (every check) against a demo server, once per hat, and prints the failures it finds.
# Not a CI step: it takes minutes and explores at random. Needs `pip install schemathesis`.
#
#   scripts/contract-check.sh                  # all hats, default budget
#   MAX_EXAMPLES=20 HATS="cimic finance" scripts/contract-check.sh
#   PHASES=examples,coverage,fuzzing,stateful SEED=1 scripts/contract-check.sh
#
# PHASES leaves out Schemathesis' `examples` phase by default: the document's examples come from the demo
# mission but carry placeholder ids (every seeded database has its own), so they meet 404/422 for a missing
# reference here; tests/api/contract_check.rs checks every example against its schema instead.
# Settings (which statuses count as a rejection, the opaque cursor, the operations whose business rules the
# schema cannot state and where a 422 is therefore accepted for schema-valid data) are in
# scripts/schemathesis.toml; docs/API.md ("Contract check") lists each exception and why.
#
# The demo mission is seeded into a throwaway SQLite database; the server listens on $PORT (default 18080).
# Reports (JUnit XML) land in $OUT (default target/contract-check/).
set -euo pipefail

cd "$(dirname "$0")/.."
PORT="${PORT:-18080}"
MAX_EXAMPLES="${MAX_EXAMPLES:-30}"
SEED="${SEED:-20261129}"
PHASES="${PHASES:-coverage,fuzzing,stateful}"
HATS="${HATS:-cimic qip.officer wash.unicef dsrsg finance auditor admin}"
OUT="${OUT:-target/contract-check}"
PASSWORD="xylonia-demo-2026"
BASE="http://127.0.0.1:${PORT}"

command -v st >/dev/null || { echo "schemathesis is not installed: pip install schemathesis" >&2; exit 1; }
cargo build --quiet
BIN=target/debug/qip-pool
WORK="$(mktemp -d)"
mkdir -p "$OUT"
export QIP__DATABASE__URL="sqlite://${WORK}/demo.sqlite3"
export QIP__SERVER__BIND="127.0.0.1:${PORT}"
export QIP__SERVER__PUBLIC_URL="${BASE}"
export QIP__AUTH__AUTH_RATE_LIMIT_PER_MINUTE=1000000
# One token per hat lasts the whole run (a slow run would otherwise go on with an expired one: all 401).
export QIP__AUTH__ACCESS_TOKEN_TTL_SECS=14400
export QIP__LOG__FILTER=warn

"$BIN" demo seed >/dev/null
"$BIN" serve >"${WORK}/serve.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do
  curl -fsS "${BASE}/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "${BASE}/readyz" >/dev/null

token() {
  curl -fsS -X POST "${BASE}/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"$1\",\"password\":\"${PASSWORD}\"}" | sed -E 's/.*"access_token":"([^"]+)".*/\1/'
}

# A user holding several hats names the one it acts in, as that user's own client must for a change more than
# one of its hats could make (otherwise a documented 400 listing `candidate_hats`): the demo's dsrsg holds hc,
# rc and dsrsg and acts as dsrsg (a step for the hc is then a 403).
acting_hat() {
  case "$1" in
    dsrsg) echo dsrsg ;;
  esac
}

total=0
for user in $HATS; do
  tok="$(token "$user")"
  hat="$(acting_hat "$user")"
  hat_header=()
  [ -n "$hat" ] && hat_header=(--header "Acting-Hat: ${hat}")
  echo "== schemathesis as ${user}${hat:+ (Acting-Hat: ${hat})}"
  set +e
  st --config-file scripts/schemathesis.toml run "${BASE}/api/v1/openapi.json" --checks all \
    --max-examples "$MAX_EXAMPLES" --seed "$SEED" --phases "$PHASES" \
    --header "Authorization: Bearer ${tok}" ${hat_header[@]+"${hat_header[@]}"} \
    --continue-on-failure --max-failures 1000 \
    --report junit --report-dir "${OUT}/${user}" --warnings off >"${OUT}/${user}.txt" 2>&1
  set -e
  failures="$(grep -oE '[0-9]+ (unique )?failures?' "${OUT}/${user}.txt" | tail -1 | grep -oE '^[0-9]+' || echo 0)"
  tail -5 "${OUT}/${user}.txt"
  total=$((total + failures))
done
echo "contract-check: ${total} failure(s) in all (details in ${OUT}/)"
[ "$total" -eq 0 ]
