#!/usr/bin/env bash
# PostgreSQL restore drill (docs/OPERATIONS.md "Backups"), on a throwaway cluster:
#   scripts/with-postgres.sh scripts/restore-drill.sh
# Seeds the demo mission, records the audit checkpoint, pg_dumps, restores into a new database, then runs
# `audit verify --checkpoint` and `ledger check` on the restore; exits non-zero if either fails.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --bin qip-pool
BIN=target/release/qip-pool
WORK=$(mktemp -d /tmp/qip-drill.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | head -1)
base="${QIP_TEST_DATABASE_URL%/*}"
"$PGBIN/psql" "$QIP_TEST_DATABASE_URL" -qc "CREATE DATABASE qip_live"
export QIP__DATABASE__URL="$base/qip_live"
$BIN demo seed > /dev/null
cp=$($BIN audit verify | python3 -c 'import json,sys; r=json.load(sys.stdin); print(str(r["head_seq"])+":"+r["head_hash"])')
echo "checkpoint $cp"
"$PGBIN/pg_dump" --format=custom --file="$WORK/qip.dump" "$base/qip_live"
ls -la "$WORK/qip.dump"
"$PGBIN/psql" "$QIP_TEST_DATABASE_URL" -qc "CREATE DATABASE qip_restore"
"$PGBIN/pg_restore" --no-owner -d "$base/qip_restore" "$WORK/qip.dump"
export QIP__DATABASE__URL="$base/qip_restore"
echo "audit verify --checkpoint on the restore:"
$BIN audit verify --checkpoint "$cp"
echo "ledger check on the restore:"
$BIN ledger check
echo "restore drill passed"
