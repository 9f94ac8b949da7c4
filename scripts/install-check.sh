#!/usr/bin/env bash
# The first hour on a bastion, checked: the .deb from scripts/package.sh unpacked, and the
# tarball's install.sh run into a temporary prefix, then both binaries used for a backup and a
# restore of the sample app with the Swift toolchain out of reach (/opt/swift hidden in a private
# mount namespace; where that is not allowed, the binary's libraries are checked with ldd).
# Needs a running PostgreSQL (PG* variables, as scripts/lib/pg.sh exports them).
#   scripts/install-check.sh dist/supabackup_VERSION_ARCH.deb
set -euo pipefail
cd "$(dirname "$0")/.."
export PGOPTIONS="--client-min-messages=warning"
deb=$1
work=$(mktemp -d)
trap 'rm -rf "$work"; psql -q -d postgres -c "DROP DATABASE IF EXISTS install_src" -c "DROP DATABASE IF EXISTS install_dst" >/dev/null 2>&1 || true' EXIT
dpkg-deb -x "$deb" "$work/root"
tarball=$(ls dist/supabackup-*-linux-*.tar.gz | head -n 1)
tar -C "$work" -xzf "$tarball"
PREFIX="$work/prefix" "$work"/supabackup-*/install.sh >/dev/null

toolchain=$(dirname "$(dirname "$(dirname "$(command -v swift || echo /opt/swift/usr/bin/swift)")")")
for binary in "$work/root/usr/bin/supabackup" "$work/prefix/bin/supabackup"; do
  if ldd "$binary" | grep -E "not found|libswift|$toolchain"; then
    echo "install-check: $binary needs the Swift toolchain's libraries" >&2
    exit 1
  fi
done

psql -q -d postgres -c "DROP DATABASE IF EXISTS install_src" -c "DROP DATABASE IF EXISTS install_dst" \
  -c "CREATE DATABASE install_src" -c "CREATE DATABASE install_dst" >/dev/null
psql -q -v ON_ERROR_STOP=1 -d install_src -f sql/sample/schema.sql >/dev/null
psql -q -v ON_ERROR_STOP=1 -d install_src -f sql/sample/data.sql >/dev/null

# What a user types after installing, from the README's Install section.
cat > "$work/first-hour.sh" <<SCRIPT
set -euo pipefail
export PATH=/usr/bin:/bin
unset LD_LIBRARY_PATH
for supabackup in "$work/root/usr/bin/supabackup" "$work/prefix/bin/supabackup"; do
  "\$supabackup" --version
  name=\$("\$supabackup" backup --db-url "postgresql://$PGUSER@$PGHOST:$PGPORT/install_src" --dir "$work/backups" --quiet)
  "\$supabackup" verify latest --dir "$work/backups" >/dev/null
  "\$supabackup" restore "\$name" --dir "$work/backups" --db-url "postgresql://$PGUSER@$PGHOST:$PGPORT/install_dst" \
    --create-schema --quiet
  for table in users projects slides analytics_events; do
    [ "\$(psql -Atq -d install_src -c "SELECT count(*) FROM public.\$table")" = \\
      "\$(psql -Atq -d install_dst -c "SELECT count(*) FROM public.\$table")" ] || { echo "\$table differs" >&2; exit 1; }
  done
  psql -q -d install_dst -c "DROP SCHEMA public CASCADE" -c "CREATE SCHEMA public" >/dev/null
done
SCRIPT
if [ -d "$toolchain" ] && unshare --mount true 2>/dev/null; then
  unshare --mount bash -c "mount -t tmpfs none '$toolchain' && bash '$work/first-hour.sh'"
  echo "install-check: the .deb and install.sh work with $toolchain out of reach" >&2
else
  bash "$work/first-hour.sh"
  echo "install-check: the .deb and install.sh work (toolchain not hidden: no mount namespace here)" >&2
fi
