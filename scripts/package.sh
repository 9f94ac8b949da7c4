#!/usr/bin/env bash
# Builds what a host without the Swift toolchain runs: supabackup with the Swift runtime linked
# in (--static-swift-stdlib; libpq, libzstd and the C libraries come from the system's packages),
# and packs it as dist/supabackup_VERSION_ARCH.deb (Debian's dpkg-deb) and
# dist/supabackup-VERSION-linux-ARCH.tar.gz (the binary and scripts/install.sh).
# Prints the .deb's path as its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --static-swift-stdlib --product supabackup --scratch-path .build-static >&2
binary=.build-static/release/supabackup
version=$("$binary" --version)
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p dist "$work/deb/usr/bin" "$work/deb/DEBIAN" "$work/deb/usr/share/doc/supabackup/schedule"
install -m 0755 "$binary" "$work/deb/usr/bin/supabackup"
strip "$work/deb/usr/bin/supabackup"
install -m 0644 scripts/schedule/* "$work/deb/usr/share/doc/supabackup/schedule/"
install -m 0644 README.md "$work/deb/usr/share/doc/supabackup/"
cat > "$work/deb/DEBIAN/control" <<CONTROL
Package: supabackup
Version: $version
Architecture: $arch
Maintainer: supabackup <supabackup@localhost>
Depends: libc6, libpq5, libzstd1, libxml2, libstdc++6, zlib1g
Section: database
Priority: optional
Description: table-by-table backups of Supabase and PostgreSQL databases
 Backs up a Supabase or PostgreSQL database into an open archive (zstd NDJSON and a manifest),
 directly or over the REST API, optionally encrypted with age and kept in S3-compatible storage,
 and restores it in foreign-key order with upserts. The systemd, cron and GitHub Actions assets
 are in /usr/share/doc/supabackup/schedule.
CONTROL
deb="dist/supabackup_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$work/deb" "$deb" >&2
mkdir -p "$work/tar/supabackup-$version"
install -m 0755 "$work/deb/usr/bin/supabackup" "$work/tar/supabackup-$version/supabackup"
install -m 0755 scripts/install.sh "$work/tar/supabackup-$version/install.sh"
tar -C "$work/tar" -czf "dist/supabackup-$version-linux-$(uname -m).tar.gz" "supabackup-$version"
echo "$deb"
