#!/usr/bin/env bash
# The main job on an embedded default: a throwaway PostgreSQL with the sample app's data is
# backed up, listed, verified and restored into a second database, and the two are compared.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
source scripts/lib/pg.sh
source scripts/lib/build.sh
deps_install

# The debug configuration, as the tests use: scripts/test.sh then reuses this build.
swift_build --product supabackup
BIN="$(swift build --show-bin-path)/supabackup"

echo "==> starting a throwaway PostgreSQL" >&2
pg_start
WORK=$(mktemp -d "${TMPDIR:-/tmp}/supabackup-demo.XXXXXX")
trap 'pg_stop; rm -rf "$WORK"' EXIT

createdb app
psql -q -v ON_ERROR_STOP=1 -d app -f sql/sample/schema.sql
psql -q -v ON_ERROR_STOP=1 -d app -f sql/sample/data.sql >/dev/null
echo "==> sample app loaded: $(psql -d app -Atc "SELECT sum(n_live_tup) FROM pg_stat_user_tables") rows" >&2

# The password reaches supabackup through PGPASSWORD, never through the command line.
SOURCE="postgresql://postgres@127.0.0.1:$PGPORT/app"
TARGET="postgresql://postgres@127.0.0.1:$PGPORT/restored"

echo "==> supabackup backup" >&2
NAME=$("$BIN" backup --db-url "$SOURCE" --out "$WORK/backups" | tail -n 1)

echo "==> supabackup list" >&2
"$BIN" list --dir "$WORK/backups"

echo "==> supabackup verify $NAME" >&2
"$BIN" verify "$NAME" --dir "$WORK/backups"

echo "==> restoring into an empty database: tables, types, indexes and rows from the backup" >&2
createdb restored
"$BIN" restore "$NAME" --dir "$WORK/backups" --db-url "$TARGET" --create-schema

echo "==> comparing every table" >&2
status=0
for table in $(psql -d app -Atc "SELECT quote_ident(relname) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r','p') AND NOT relispartition ORDER BY 1"); do
  q="SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, E'\n' ORDER BY t::text)), '-') FROM public.$table t"
  a=$(psql -d app -Atc "$q")
  b=$(psql -d restored -Atc "$q")
  if [ "$a" = "$b" ]; then
    printf 'same      %-24s %s rows\n' "$table" "${a%% *}"
  else
    printf 'DIFFERENT %-24s %s vs %s\n' "$table" "$a" "$b"
    status=1
  fi
done
[ $status = 0 ] && echo "==> demo passed: the restored database equals the original" >&2
exit $status
