#!/usr/bin/env bash
# Runs `qip-pool ledger check` and `qip-pool audit verify` RUNS times each (default 200) against a seeded
# database and counts exit codes; fails unless every run exits 0. For PostgreSQL run it under the throwaway
# cluster:
#   scripts/with-postgres.sh scripts/cli-exit-soak.sh 200
# Without QIP_TEST_DATABASE_URL it uses a temporary SQLite file.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-200}

cargo build --quiet --bin qip-pool
BIN=target/debug/qip-pool
WORK=$(mktemp -d /tmp/qip-soak.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

if [ -n "${QIP_TEST_DATABASE_URL:-}" ]; then
  name="qip_soak_$$"
  psql_bin=$(ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | head -1)
  "${psql_bin:-psql}" "$QIP_TEST_DATABASE_URL" -qc "CREATE DATABASE $name" >/dev/null
  export QIP__DATABASE__URL="${QIP_TEST_DATABASE_URL%/*}/$name"
else
  export QIP__DATABASE__URL="sqlite://$WORK/soak.sqlite3"
fi


"$BIN" demo seed >/dev/null
for cmd in "ledger check" "audit verify"; do
  declare -A codes=()
  started=$(date +%s.%N)
  for _ in $(seq "$RUNS"); do
    set +e
    # shellcheck disable=SC2086
    "$BIN" $cmd >/dev/null 2>>"$WORK/stderr"
    code=$?
    set -e
    codes[$code]=$(( ${codes[$code]:-0} + 1 ))
  done
  elapsed=$(echo "$(date +%s.%N) - $started" | bc)
  summary=""
  for code in "${!codes[@]}"; do summary+=" exit $code: ${codes[$code]}"; done
  echo "qip-pool $cmd × $RUNS in ${elapsed}s:$summary"
  if [ "${codes[0]:-0}" -ne "$RUNS" ]; then
    echo "FAILED: not every run exited 0; stderr:" >&2
    tail -20 "$WORK/stderr" >&2
    exit 1
  fi
  unset codes
done
echo "all runs exited 0"
