# PgBouncer in transaction mode in front of the throwaway PostgreSQL: the stand-in for Supabase's
# pooler (Supavisor on port 6543), where every transaction may run on another server backend.
# Source after pg.sh, then:
#   pgbouncer_start   start it on a free loopback port with a small pool; export
#                     SUPABACKUP_TEST_POOLER_URL (any database of the test server through it)
#   pgbouncer_stop    stop it (the caller puts it in its EXIT trap)
# Clients connect without a password (loopback only); PgBouncer logs in to the server with the
# superuser's password from a 0600 file, never from argv.

pgbouncer_start() {
  command -v pgbouncer >/dev/null 2>&1 || ls /usr/sbin/pgbouncer >/dev/null 2>&1 || {
    echo "pgbouncer not found; install the 'pgbouncer' package" >&2
    return 1
  }
  local bin
  bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
  PGB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/supabackup-pgbouncer.XXXXXX")
  local port
  port=$(pg_free_port)
  (umask 077; printf '"postgres" "%s"\n' "$PGPASSWORD" > "$PGB_TMP/users.txt")
  cat > "$PGB_TMP/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$PGPORT
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $PGB_TMP/users.txt
pool_mode = transaction
default_pool_size = 4
max_client_conn = 400
max_db_connections = 0
server_reset_query =
query_wait_timeout = 20
ignore_startup_parameters = extra_float_digits
logfile = $PGB_TMP/pgbouncer.log
pidfile = $PGB_TMP/pgbouncer.pid
INI
  # PgBouncer will not run as root: it runs as the server's owner, like PostgreSQL.
  if [ "$(id -u)" = 0 ]; then chown -R "$PG_OWNER" "$PGB_TMP"; fi
  pg_as_owner "$bin" -d "$PGB_TMP/pgbouncer.ini" >/dev/null 2>&1 || { cat "$PGB_TMP/pgbouncer.log" >&2; return 1; }
  wait_for_port "$port"
  SUPABACKUP_TEST_POOLER_URL="postgresql://postgres@127.0.0.1:$port/postgres"
  export SUPABACKUP_TEST_POOLER_URL PGB_TMP
}

pgbouncer_stop() {
  [ -n "${PGB_TMP:-}" ] || return 0
  [ -f "$PGB_TMP/pgbouncer.pid" ] && kill "$(cat "$PGB_TMP/pgbouncer.pid")" 2>/dev/null
  rm -rf "$PGB_TMP"
  PGB_TMP=
  return 0
}
