# Throwaway PostgreSQL for the demo, the tests and the benchmark. Source this file, then:
#   pg_start      initdb into a temp dir, start on a free loopback port, export PG* for clients
#   pg_stop       stop the server and remove its files (also run on EXIT by pg_start)
# The superuser's password is random, reaches clients only through PGPASSWORD (never argv),
# and the server accepts TCP logins only with it (scram-sha-256).

pg_bin_dir() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir
    return
  fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  echo "PostgreSQL server binaries (initdb) not found; install the 'postgresql' package" >&2
  return 1
}

pg_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Waits up to ten seconds for something to listen on 127.0.0.1:PORT.
wait_for_port() {
  local i
  for i in $(seq 1 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# Runs a command as the server's owner (an unprivileged user when we are root).
pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$PG_OWNER" -- "$@"
  else
    "$@"
  fi
}

pg_start() {
  local bindir
  bindir=$(pg_bin_dir) || return 1
  PG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/supabackup-pg.XXXXXX")
  if [ "$(id -u)" = 0 ]; then
    PG_OWNER=${PG_OWNER:-postgres}
    id "$PG_OWNER" >/dev/null 2>&1 || useradd --system --no-create-home "$PG_OWNER"
    chown "$PG_OWNER" "$PG_TMP"
    chmod 700 "$PG_TMP"
  fi
  local pwfile="$PG_TMP/pw"
  PGPASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
  (umask 077; printf '%s\n' "$PGPASSWORD" > "$pwfile")
  [ "$(id -u)" = 0 ] && chown "$PG_OWNER" "$pwfile"
  pg_as_owner "$bindir/initdb" -D "$PG_TMP/data" -U postgres --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$PG_TMP/initdb.log" 2>&1 \
    || pg_as_owner "$bindir/initdb" -D "$PG_TMP/data" -U postgres --pwfile="$pwfile" \
       --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C >"$PG_TMP/initdb.log" 2>&1 \
    || { cat "$PG_TMP/initdb.log" >&2; return 1; }
  rm -f "$pwfile"
  PGPORT=$(pg_free_port)
  pg_as_owner "$bindir/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 start \
    -o "-p $PGPORT -k $PG_TMP -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 -c shared_buffers=256MB" \
    >/dev/null || { cat "$PG_TMP/server.log" >&2; return 1; }
  PG_BINDIR=$bindir
  export PGHOST=127.0.0.1 PGPORT PGUSER=postgres PGPASSWORD PGDATABASE=postgres PG_BINDIR PG_TMP
  trap pg_stop EXIT
}

pg_stop() {
  [ -n "${PG_TMP:-}" ] && [ -d "$PG_TMP/data" ] || return 0
  pg_as_owner "$PG_BINDIR/pg_ctl" -D "$PG_TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_TMP"
  PG_TMP=
}
