#!/usr/bin/env bash
# Installs supabackup on a Debian or Ubuntu host without the Swift toolchain:
#   sudo ./install.sh [BINARY]          (default BINARY: the supabackup next to this script)
# PREFIX (default /usr/local) chooses where: PREFIX/bin/supabackup. The runtime libraries it needs
# (libpq5, libzstd1, libxml2) come from the system's packages, installed with apt-get when
# missing and run as root. Ends by running `supabackup --version`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
binary=${1:-$here/supabackup}
prefix=${PREFIX:-/usr/local}
[ -x "$binary" ] || { echo "install.sh: no supabackup binary at $binary" >&2; exit 1; }
missing=()
for package in libpq5 libzstd1 libxml2; do
  dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "install.sh: missing packages: ${missing[*]} (install them with: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
install -d "$prefix/bin"
install -m 0755 "$binary" "$prefix/bin/supabackup"
"$prefix/bin/supabackup" --version >/dev/null
echo "installed $prefix/bin/supabackup $("$prefix/bin/supabackup" --version)"
