# Installs what a fresh Debian machine lacks for building and testing supabackup.
# Packages: PostgreSQL server and client, libpq and libzstd headers, the zstd CLI, pkg-config,
# age (for the encryption tests), curl (bench.sh), pgbouncer (the transaction-mode pooler tests),
# pgTAP (an app's own database tests).

deps_missing() {
  local missing=()
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  pkg-config --exists libpq 2>/dev/null || missing+=(libpq-dev)
  pkg-config --exists libzstd 2>/dev/null || missing+=(libzstd-dev)
  command -v zstd >/dev/null 2>&1 || missing+=(zstd)
  command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  # curl: bench.sh fills a Storage bucket through the test server's API.
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  # age and age-keygen: the reference implementation the encryption tests interoperate with.
  command -v age >/dev/null 2>&1 || missing+=(age)
  # pgbouncer: the stand-in for Supabase's transaction-mode pooler in the tests.
  command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
  # strip and dpkg-deb: scripts/package.sh builds the .deb the install check uses.
  command -v strip >/dev/null 2>&1 || missing+=(binutils)
  command -v dpkg-deb >/dev/null 2>&1 || missing+=(dpkg)
  # pgTAP: a Supabase app's own test suite runs on the source and on the restored project.
  ls /usr/share/postgresql/*/extension/pgtap.control >/dev/null 2>&1 || missing+=(postgresql-15-pgtap)
  echo "${missing[@]}"
}

deps_install() {
  local missing
  missing=$(deps_missing)
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing: $missing" >&2
    apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "missing packages: $missing (install them with: sudo apt-get install $missing)" >&2
    return 1
  fi
}
