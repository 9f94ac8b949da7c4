#!/usr/bin/env bash
# Benchmark (not a test): supabackup against pg_dump/pg_restore, side by side in one run, on a
# generated table (uuid, jsonb, numeric, text[], timestamptz) and on the sample app schema.
# Prints medians, ratios and supabackup's peak resident memory for each data set (and the cost of
# encrypting the backup with age, against the same backup unencrypted), then seconds
# per million rows (linearity), then REST-mode throughput against the PostgREST-compatible test
# server. Backups run with --jobs $JOBS (and once more with --jobs 1); pg_dump with its defaults.
#   SIZES="500000 1000000 2000000 4000000" RUNS=3 SAMPLE_SCALE=100 REST_ROWS="100000 1000000" scripts/bench.sh
#   ROWS=2000000 RUNS=3 SAMPLE_SCALE=0 SHAPES= scripts/bench.sh  (one size, no sample schema or shapes)
#   PIN=1 ...  pins the server to core 0 and every client to core 1 (taskset).
#   SIZES= SAMPLE_SCALE=0 REST_ROWS= S3_ROWS=0 STORAGE_OBJECTS=0 scripts/bench.sh  (table shapes only)
# Then table shapes (SHAPES, scripts/bench-shapes/*.sql: narrow, wide text, jsonb, bytea blobs,
# temporal/numeric/array/inet, events, and the Chinook schema). For each data set: backup time and
# the server's CPU per backup against pg_dump --data-only, fresh-instance restore (--create-schema
# into an empty database) against pg_restore of a full dump and pg_restore -j 2, and restores into
# empty tables and with every row conflicting against pg_restore --data-only.
# Last, backup and restore through moto's S3 server beside the local folder (S3_ROWS, 0 skips it):
# moto is a Python server, so that section reports the ratio and peak memory, not a speed claim.
# Then Supabase Storage files (STORAGE_OBJECTS, 0 skips it): objects/s and MB/s of backup and
# restore of a generated bucket, and what an incremental backup downloads after a 2% change.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
source scripts/lib/pg.sh
source scripts/lib/s3.sh
deps_install
if [ ! -x /usr/bin/time ]; then
  [ "$(id -u)" = 0 ] && { apt-get update -qq >/dev/null; apt-get install -y -qq time >/dev/null; }
fi
SIZES=${ROWS:-${SIZES-"500000 1000000 2000000 4000000"}}
RUNS=${RUNS:-3}
JOBS=${JOBS:-4}
# Fresh restores run with --jobs FRESH_JOBS, against pg_restore and pg_restore -j 2.
FRESH_JOBS=${FRESH_JOBS:-2}
SAMPLE_SCALE=${SAMPLE_SCALE:-100}
# Table shapes from scripts/bench-shapes (name:rows; chinook's number is a scale of the original).
SHAPES=${SHAPES-"narrow:300000 wide:300000 jsonb:300000 blobs:6000 temporal:300000 events:1000000 chinook:50"}

swift build -c release --product supabackup 2>&1 | tail -n 1 >&2
swift build -c release --product postgrest-test-server 2>&1 | tail -n 1 >&2
BIN="$(swift build -c release --show-bin-path)/supabackup"
SERVER_BIN="$(swift build -c release --show-bin-path)/postgrest-test-server"
REST_ROWS=${REST_ROWS-"100000 1000000"}
S3_ROWS=${S3_ROWS:-1000000}

pg_start
# PIN=1: the server on core 0, every client on core 1, the closest this machine gets to a bastion
# host talking to a database server (the backends inherit the postmaster's affinity).
CLIENT=()
if [ "${PIN:-0}" = 1 ] && command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
  taskset -a -p -c 0 "$(head -n 1 "$PG_TMP/data/postmaster.pid")" >/dev/null
  CLIENT=(taskset -c 1)
  echo "pinned: server on core 0, clients on core 1" >&2
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/supabackup-bench.XXXXXX")
"$BIN" keygen -o "$WORK/bench.key" 2>/dev/null
RECIPIENT=$("$BIN" keygen -y "$WORK/bench.key")
SERVER_PID=
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; s3_stop; pg_stop; rm -rf "$WORK"' EXIT

SCHEMA="CREATE TABLE public.bench (id uuid PRIMARY KEY, doc jsonb, amount numeric, tags text[], created_at timestamptz);"
# generate DB N: fills public.bench in DB with N rows.
generate() {
  psql -q -d "$1" -c "
    INSERT INTO public.bench
    SELECT md5(i::text)::uuid,
           jsonb_build_object('i', i, 'name', 'item ' || i, 'flags', jsonb_build_array(i % 2 = 0, i % 3 = 0), 'score', i * 0.001),
           (i * 1.2345)::numeric(14, 4), ARRAY['tag' || (i % 10), 'group' || (i % 7)],
           timestamptz '2025-01-01' + i * interval '1 second'
    FROM generate_series(1, $2) AS i"
  psql -q -d "$1" -c "VACUUM ANALYZE public.bench"
}
for db in source target_sb target_pg; do createdb "$db"; done

# server_cpu: CPU seconds (user + system) of the server's exited backends so far: the postmaster's
# reaped children, from /proc. A backup's or restore's connections exit when it ends.
server_cpu() {
  local pid
  pid=$(head -n 1 "$PG_TMP/data/postmaster.pid")
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($16 + $17) / hz }' "/proc/$pid/stat"
}

# timed LABEL CMD...: appends "seconds kilobytes server-cpu-seconds client-cpu-seconds" to $WORK/LABEL
# (client: the command's own user + system time; server: the backends it used).
timed() {
  local label=$1 before after
  shift
  before=$(server_cpu)
  /usr/bin/time -f "%e %M %U %S" -o "$WORK/time.out" "${CLIENT[@]}" "$@" >/dev/null 2>"$WORK/cmd.err" || { cat "$WORK/cmd.err" >&2; return 1; }
  sleep 0.2  # the postmaster reaps the exited backends
  after=$(server_cpu)
  awk -v a="$after" -v b="$before" '{ printf "%s %s %.2f %.2f\n", $1, $2, a - b, $3 + $4 }' "$WORK/time.out" >> "$WORK/$label"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
peak() { awk '{ print $2 }' "$WORK/$1" | sort -n | tail -n 1; }
t() { awk '{ print $1 }' "$WORK/$1" | median; }
cpu() { awk '{ print $3 }' "$WORK/$1" | median; }
client() { awk '{ print $4 }' "$WORK/$1" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# truncate_public DB: empties every table of schema public (restore into empty tables).
truncate_public() {
  psql -q -d "$1" -c "DO \$\$ BEGIN EXECUTE (SELECT 'TRUNCATE ' || string_agg(format('%I.%I', schemaname, tablename), ', ') || ' CASCADE'
    FROM pg_tables WHERE schemaname = 'public'); END \$\$"
}

# fresh_db NAME: an empty database NAME (the disaster-recovery target), without the public
# schema: the source's was re-created by this script, so both dumps create it.
fresh_db() {
  dropdb --if-exists "$1" 2>/dev/null
  createdb "$1"
  psql -q -d "$1" -c "DROP SCHEMA public"
}

# measure LABEL ROWS: supabackup against pg_dump/pg_restore on schema public of DB source, with
# target_sb and target_pg holding the same empty tables. pg_restore --data-only gets
# --disable-triggers where the data has foreign-key cycles (it cannot order them otherwise);
# supabackup never does. Fresh-instance restores go into new empty databases: supabackup
# restore --create-schema against pg_restore of a full dump (pg_dump -Fd -n public), also -j 2.
measure() {
  local label=$1 rows=$2 url="postgresql://postgres@127.0.0.1:$PGPORT"
  for run in $(seq "$RUNS"); do
    echo "$label: run $run/$RUNS" >&2
    rm -rf "$WORK/backups" "$WORK/backups1" "$WORK/dump" "$WORK/full"
    timed "sb_backup_$label" "$BIN" backup --db-url "$url/source" --out "$WORK/backups" --jobs "$JOBS" --quiet
    timed "sb_backup1_$label" "$BIN" backup --db-url "$url/source" --out "$WORK/backups1" --jobs 1 --quiet
    rm -rf "$WORK/backups-enc"
    timed "sb_backup_enc_$label" "$BIN" backup --db-url "$url/source" --out "$WORK/backups-enc" --jobs "$JOBS" \
      --recipient "$RECIPIENT" --quiet
    timed "pg_dump_$label" "$PG_BINDIR/pg_dump" --data-only -Fd -f "$WORK/dump" -n public source
    timed "pg_dump_full_$label" "$PG_BINDIR/pg_dump" -Fd -f "$WORK/full" -n public source
    NAME=$(ls "$WORK/backups")
    truncate_public target_sb
    timed "sb_restore_empty_$label" "$BIN" restore "$NAME" --dir "$WORK/backups" --db-url "$url/target_sb" --quiet
    timed "sb_restore_conflict_$label" "$BIN" restore "$NAME" --dir "$WORK/backups" --db-url "$url/target_sb" --quiet
    truncate_public target_sb
    timed "sb_restore_enc_$label" "$BIN" restore "$(ls "$WORK/backups-enc")" --dir "$WORK/backups-enc" \
      --db-url "$url/target_sb" --identity "$WORK/bench.key" --quiet
    truncate_public target_pg
    timed "pg_restore_$label" "$PG_BINDIR/pg_restore" --data-only $PG_RESTORE_FLAGS -d target_pg "$WORK/dump"
    fresh_db fresh_sb
    timed "sb_fresh_$label" "$BIN" restore "$NAME" --dir "$WORK/backups" --db-url "$url/fresh_sb" --create-schema \
      --jobs "$FRESH_JOBS" --quiet
    fresh_db fresh_pg
    timed "pg_fresh_$label" "$PG_BINDIR/pg_restore" -d fresh_pg "$WORK/full"
    fresh_db fresh_pg
    timed "pg_fresh_j2_$label" "$PG_BINDIR/pg_restore" -j 2 -d fresh_pg "$WORK/full"
  done
  local sb_size pg_size
  sb_size=$(du -sk "$WORK/backups" | awk '{ print $1 }')
  pg_size=$(du -sk "$WORK/dump" | awk '{ print $1 }')
  row() { printf '%-40s %10s %10s %8s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
  {
    printf '\n%s (%s rows), median of %s runs (seconds)\n' "$label" "$rows" "$RUNS"
    printf '%-40s %10s %10s %8s\n' "" supabackup "pg_dump/restore" ratio
    row "backup (--jobs $JOBS) vs pg_dump --data-only" "$(t sb_backup_$label)" "$(t pg_dump_$label)"
    row "backup (--jobs 1)" "$(t sb_backup1_$label)" "$(t pg_dump_$label)"
    row "server CPU per backup (--jobs $JOBS)" "$(cpu sb_backup_$label)" "$(cpu pg_dump_$label)"
    row "server CPU per backup (--jobs 1)" "$(cpu sb_backup1_$label)" "$(cpu pg_dump_$label)"
    row "fresh restore vs pg_restore" "$(t sb_fresh_$label)" "$(t pg_fresh_$label)"
    row "fresh restore vs pg_restore -j 2" "$(t sb_fresh_$label)" "$(t pg_fresh_j2_$label)"
    row "restore into empty tables (--data-only)" "$(t sb_restore_empty_$label)" "$(t pg_restore_$label)"
    row "restore, every row conflicts" "$(t sb_restore_conflict_$label)" "$(t pg_restore_$label)"
    row "fresh restore: client CPU" "$(client sb_fresh_$label)" "$(client pg_fresh_$label)"
    row "fresh restore: server CPU" "$(cpu sb_fresh_$label)" "$(cpu pg_fresh_$label)"
    row "into empty tables: client CPU" "$(client sb_restore_empty_$label)" "$(client pg_restore_$label)"
    row "into empty tables: server CPU" "$(cpu sb_restore_empty_$label)" "$(cpu pg_restore_$label)"
    printf '%-40s %10s %10s\n' "archive size (KiB)" "$sb_size" "$pg_size"
    printf 'encryption (age): backup %s s (--jobs %s, %sx unencrypted), restore into empty tables %s s (%sx)\n' \
      "$(t sb_backup_enc_$label)" "$JOBS" "$(ratio "$(t sb_backup_enc_$label)" "$(t sb_backup_$label)")" \
      "$(t sb_restore_enc_$label)" "$(ratio "$(t sb_restore_enc_$label)" "$(t sb_restore_empty_$label)")"
    printf 'supabackup peak RSS: backup %s MB (--jobs 1: %s MB), restore %s MB, fresh restore %s MB (limit 100 MB)\n' \
      "$(( $(peak sb_backup_$label) / 1024 ))" "$(( $(peak sb_backup1_$label) / 1024 ))" \
      "$(( $(peak sb_restore_empty_$label) > $(peak sb_restore_conflict_$label) ? $(peak sb_restore_empty_$label) / 1024 : $(peak sb_restore_conflict_$label) / 1024 ))" \
      "$(( $(peak sb_fresh_$label) / 1024 ))"
  } | tee -a "$WORK/report"
  printf '%-18s %9s %8s %8s %8s %8s %8s %8s %6s\n' "$label" "$rows" \
    "$(ratio "$(t sb_backup_$label)" "$(t pg_dump_$label)")" "$(ratio "$(cpu sb_backup_$label)" "$(cpu pg_dump_$label)")" \
    "$(ratio "$(t sb_fresh_$label)" "$(t pg_fresh_$label)")" "$(ratio "$(t sb_fresh_$label)" "$(t pg_fresh_j2_$label)")" \
    "$(ratio "$(t sb_restore_empty_$label)" "$(t pg_restore_$label)")" \
    "$(ratio "$(t sb_restore_conflict_$label)" "$(t pg_restore_$label)")" \
    "$(( $(peak sb_backup_$label) > $(peak sb_fresh_$label) ? $(peak sb_backup_$label) / 1024 : $(peak sb_fresh_$label) / 1024 ))" \
    >> "$WORK/summary"
}

# compare_shape SHAPE ROWS: one of scripts/bench-shapes/*.sql, ROWS rows (chinook: a scale).
compare_shape() {
  local shape=$1 n=$2
  for db in source target_sb target_pg; do
    psql -q -d "$db" -c "SET client_min_messages = warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
  done
  echo "generating $shape ($n)..." >&2
  psql -q -v ON_ERROR_STOP=1 -v rows="$n" -v scale="$n" -d source -f "scripts/bench-shapes/$shape.sql"
  psql -q -d source -c "VACUUM ANALYZE"
  # The dump creates schema public itself (the script re-created the source's).
  for db in target_sb target_pg; do
    psql -q -d "$db" -c "DROP SCHEMA public CASCADE" 2>/dev/null
    "$PG_BINDIR/pg_dump" --schema-only -n public source | psql -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null
  done
  local rows
  rows=$(psql -d source -Atc "SELECT sum(n_live_tup) FROM pg_stat_user_tables WHERE schemaname = 'public'")
  PG_RESTORE_FLAGS= measure "$shape" "$rows"
}

# compare N: the generated table with N rows.
compare() {
  local n=$1
  for db in source target_sb target_pg; do
    psql -q -d "$db" -c "SET client_min_messages = warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public; $SCHEMA"
  done
  echo "generating $n rows..." >&2
  generate source "$n"
  echo "table size: $(psql -d source -Atc "SELECT pg_size_pretty(pg_total_relation_size('public.bench'))")" >&2
  PG_RESTORE_FLAGS= measure "$n" "$n"
}

# compare_sample: the sample app schema (12 tables, partitions, FK cycle) at SAMPLE_SCALE.
compare_sample() {
  for db in source target_sb target_pg; do
    psql -q -d "$db" -c "SET client_min_messages = warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
    psql -q -d "$db" -f sql/sample/schema.sql
  done
  echo "loading the sample schema at scale $SAMPLE_SCALE..." >&2
  PGOPTIONS="-c sample.scale=$SAMPLE_SCALE" psql -q -d source -f sql/sample/data.sql
  psql -q -d source -c "VACUUM ANALYZE"
  local rows
  rows=$(psql -d source -Atc "SELECT sum(n_live_tup) FROM pg_stat_user_tables WHERE schemaname = 'public'")
  PG_RESTORE_FLAGS=--disable-triggers measure "sample-x$SAMPLE_SCALE" "$rows"
}

for n in $SIZES; do compare "$n" >/dev/null; done
[ "$SAMPLE_SCALE" != 0 ] && compare_sample >/dev/null
for item in $SHAPES; do compare_shape "${item%%:*}" "${item##*:}" >/dev/null; done
[ -f "$WORK/report" ] && cat "$WORK/report"
if [ -f "$WORK/summary" ]; then
  printf '\nratios to pg_dump / pg_restore (medians of %s; targets: backup <= 0.6, server CPU <= 1, fresh <= 0.8 and <= 1 vs -j 2, empty <= 1, conflicts <= 1.2)\n' "$RUNS"
  printf '%-18s %9s %8s %8s %8s %8s %8s %8s %6s\n' "data set" rows backup "srv CPU" fresh "fresh-j2" empty conflict "MB"
  cat "$WORK/summary"
fi
printf '\nseconds per million rows (flat = linear)\n%-12s %10s %10s %10s\n' rows backup restore conflicts
for n in $SIZES; do
  printf '%-12s %10s %10s %10s\n' "$n" \
    "$(awk -v s="$(t sb_backup_$n)" -v n="$n" 'BEGIN { printf "%.2f", s * 1e6 / n }')" \
    "$(awk -v s="$(t sb_restore_empty_$n)" -v n="$n" 'BEGIN { printf "%.2f", s * 1e6 / n }')" \
    "$(awk -v s="$(t sb_restore_conflict_$n)" -v n="$n" 'BEGIN { printf "%.2f", s * 1e6 / n }')"
done

# REST mode against the PostgREST-compatible test server (1000-row pages, db-max-rows 1000).
createdb rest
DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/rest" SERVICE_KEY=bench-key MAX_ROWS=1000 \
  "$SERVER_BIN" > "$WORK/server.url" &
SERVER_PID=$!
for _ in $(seq 50); do [ -s "$WORK/server.url" ] && break; sleep 0.1; done
export SUPABASE_URL=$(head -n 1 "$WORK/server.url") SUPABASE_SERVICE_ROLE_KEY=bench-key
printf '\nREST mode (test server, 1000-row pages)\n'
printf '%-12s %10s %12s %10s\n' rows seconds rows/s "peak MB"
for n in $REST_ROWS; do
  psql -q -d rest -c "SET client_min_messages = warning; DROP TABLE IF EXISTS public.bench; $SCHEMA"
  generate rest "$n"
  rm -rf "$WORK/rest-backups" "$WORK/rest_backup"
  timed rest_backup "$BIN" backup --mode rest --out "$WORK/rest-backups" --quiet
  read -r seconds kb _ < <(tail -n 1 "$WORK/rest_backup")
  printf '%-12s %10s %12s %10s\n' "$n" "$seconds" "$(awk -v n="$n" -v s="$seconds" 'BEGIN { printf "%d", n / s }')" "$((kb / 1024))"
done

# Object storage: the same backup and restore into moto's S3 server and into the local folder.
if [ "$S3_ROWS" != 0 ]; then
  s3_start
  for db in s3src s3dst; do
    createdb "$db"
    psql -q -d "$db" -c "$SCHEMA"
  done
  generate s3src "$S3_ROWS"
  url="postgresql://postgres@127.0.0.1:$PGPORT"
  for run in $(seq "$RUNS"); do
    echo "object storage: run $run/$RUNS" >&2
    rm -rf "$WORK/s3local"
    timed s3_local_backup "$BIN" backup --db-url "$url/s3src" --out "$WORK/s3local" --jobs "$JOBS" --quiet
    location="s3://$SUPABACKUP_TEST_S3_BUCKET/bench-$run"
    AWS_ACCESS_KEY_ID=$SUPABACKUP_TEST_S3_KEY_ID AWS_SECRET_ACCESS_KEY=$SUPABACKUP_TEST_S3_SECRET AWS_REGION=us-east-1 \
      AWS_ENDPOINT_URL=$SUPABACKUP_TEST_S3_ENDPOINT timed s3_backup "$BIN" backup --db-url "$url/s3src" --out "$location" \
      --jobs "$JOBS" --quiet
    NAME=$(ls "$WORK/s3local")
    truncate_public s3dst
    timed s3_local_restore "$BIN" restore "$NAME" --dir "$WORK/s3local" --db-url "$url/s3dst" --quiet
    truncate_public s3dst
    S3NAME=$(AWS_ACCESS_KEY_ID=$SUPABACKUP_TEST_S3_KEY_ID AWS_SECRET_ACCESS_KEY=$SUPABACKUP_TEST_S3_SECRET \
      AWS_REGION=us-east-1 AWS_ENDPOINT_URL=$SUPABACKUP_TEST_S3_ENDPOINT "$BIN" list --dir "$location" --json \
      | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["name"])')
    AWS_ACCESS_KEY_ID=$SUPABACKUP_TEST_S3_KEY_ID AWS_SECRET_ACCESS_KEY=$SUPABACKUP_TEST_S3_SECRET AWS_REGION=us-east-1 \
      AWS_ENDPOINT_URL=$SUPABACKUP_TEST_S3_ENDPOINT timed s3_restore "$BIN" restore "$S3NAME" --dir "$location" \
      --db-url "$url/s3dst" --quiet
  done
  printf '\nobject storage: moto S3 server vs local folder, %s rows, median of %s runs (seconds)\n' "$S3_ROWS" "$RUNS"
  printf '%-34s %10s %10s %8s %12s\n' "" "s3://" local ratio "peak MB s3"
  printf '%-34s %10s %10s %8s %12s\n' "backup (--jobs $JOBS)" "$(t s3_backup)" "$(t s3_local_backup)" \
    "$(ratio "$(t s3_backup)" "$(t s3_local_backup)")" "$(( $(peak s3_backup) / 1024 ))"
  printf '%-34s %10s %10s %8s %12s\n' "restore into empty tables" "$(t s3_restore)" "$(t s3_local_restore)" \
    "$(ratio "$(t s3_restore)" "$(t s3_local_restore)")" "$(( $(peak s3_restore) / 1024 ))"
fi

# Supabase Storage files (--with-storage) against the Storage-API test server: a generated bucket
# of STORAGE_OBJECTS objects (4 KB to 2 MB, random bytes), full backups and restores into a new
# project (objects/s, MB/s), then an incremental backup after changing 2% of the objects, reporting
# what it downloaded. The test server reads and writes each object whole, on the same 2 cores.
STORAGE_OBJECTS=${STORAGE_OBJECTS:-300}
if [ "$STORAGE_OBJECTS" -gt 0 ]; then
  url="postgresql://postgres@127.0.0.1:$PGPORT"
  storage_project() {  # storage_project DB: a project database; starts its API, prints its URL
    createdb "$1"
    psql -q -d "$1" -f sql/fixtures/supabase/platform.sql >/dev/null
    psql -q -d "$1" -f sql/fixtures/supabase/storage.sql >/dev/null
    DATABASE_URL="$url/$1" "$SERVER_BIN" > "$WORK/$1.url" &
    STORAGE_PIDS="$STORAGE_PIDS $!"
    for _ in $(seq 50); do [ -s "$WORK/$1.url" ] && break; sleep 0.1; done
    cat "$WORK/$1.url"
  }
  STORAGE_PIDS=
  trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; [ -n "$STORAGE_PIDS" ] && kill $STORAGE_PIDS 2>/dev/null; s3_stop; pg_stop; rm -rf "$WORK"' EXIT
  SRC=$(storage_project stsrc)
  auth=(-H "apikey: test-service-key" -H "Authorization: Bearer test-service-key")
  curl -sf "${auth[@]}" -H 'Content-Type: application/json' -d '{"name":"media"}' "$SRC/storage/v1/bucket" >/dev/null
  sizes=(4096 65536 524288 2097152)
  total=0
  upload() {  # upload INDEX: a random object of the INDEX-th size
    local size=${sizes[$(( $1 % 4 ))]}
    head -c "$size" /dev/urandom > "$WORK/object.bin"
    curl -sf "${auth[@]}" -H 'Content-Type: application/octet-stream' -H 'x-upsert: true' \
      --data-binary @"$WORK/object.bin" "$SRC/storage/v1/object/media/dir$(( $1 % 10 ))/object-$1.bin" >/dev/null
    total=$(( total + size ))
  }
  for i in $(seq "$STORAGE_OBJECTS"); do upload "$i"; done
  MB=$(awk -v b="$total" 'BEGIN { printf "%.1f", b / 1e6 }')
  for run in $(seq "$RUNS"); do
    echo "storage: run $run/$RUNS" >&2
    rm -rf "$WORK/stbk"
    SUPABASE_URL=$SRC SUPABASE_SERVICE_ROLE_KEY=test-service-key timed storage_backup "$BIN" backup \
      --db-url "$url/stsrc" --with-storage --out "$WORK/stbk" --jobs "$JOBS" --quiet
    NAME=$(ls "$WORK/stbk")
    DST=$(storage_project "stdst$run")
    SUPABASE_URL=$DST SUPABASE_SERVICE_ROLE_KEY=test-service-key timed storage_restore "$BIN" restore "$NAME" \
      --dir "$WORK/stbk" --db-url "$url/stdst$run" --with-storage --jobs "$JOBS" --quiet
  done
  changed=$(( (STORAGE_OBJECTS + 49) / 50 ))
  total=0
  sleep 1.1  # last-modified has one-second precision
  for i in $(seq "$changed"); do upload $(( i * 7 )); done
  SUPABASE_URL=$SRC SUPABASE_SERVICE_ROLE_KEY=test-service-key "$BIN" backup --db-url "$url/stsrc" --with-storage \
    --out "$WORK/stbk" --jobs "$JOBS" --json > "$WORK/incremental.json" 2>/dev/null
  read -r downloaded downloaded_bytes reused < <(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["storage"]
print(s["downloaded"], s["downloaded_bytes"], s["reused"])' "$WORK/incremental.json")
  printf '\nstorage: %s objects, %s MB in one bucket, --jobs %s, median of %s runs (test server)\n' \
    "$STORAGE_OBJECTS" "$MB" "$JOBS" "$RUNS"
  printf '%-34s %10s %10s %10s %10s\n' "" seconds objects/s MB/s "peak MB"
  for label in storage_backup storage_restore; do
    printf '%-34s %10s %10s %10s %10s\n' "${label#storage_} (new project)" "$(t $label)" \
      "$(awk -v n="$STORAGE_OBJECTS" -v s="$(t $label)" 'BEGIN { printf "%.0f", n / s }')" \
      "$(awk -v m="$MB" -v s="$(t $label)" 'BEGIN { printf "%.1f", m / s }')" "$(( $(peak $label) / 1024 ))"
  done
  printf 'incremental backup after changing %s of %s objects: %s downloaded (%s bytes, the changed objects: %s bytes), %s reused\n' \
    "$changed" "$STORAGE_OBJECTS" "$downloaded" "$downloaded_bytes" "$total" "$reused"
fi
