#!/usr/bin/env bash
# Runs the whole test suite against a throwaway PostgreSQL (started here, stopped at exit).
# Extra arguments go to `swift test` (e.g. --filter RestoreTests).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
source scripts/lib/pg.sh
source scripts/lib/build.sh
source scripts/lib/s3.sh
source scripts/lib/pgbouncer.sh
deps_install
# DuckDB reads the archive in a test (the format is open); it comes from PyPI.
python3 -c "import duckdb" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check duckdb >&2
# pyrage writes passphrase-protected identity files (age -p needs a terminal).
python3 -c "import pyrage" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check pyrage >&2

# Style is kept by a tool: .swift-format (4 spaces, 120 columns), strict, before anything builds.
if swift format --version >/dev/null 2>&1; then
  swift format lint --strict --recursive Sources Tests Package.swift
fi
swift_build --build-tests

pg_start
# moto's S3 server with signatures checked (and the aws CLI, which reads what we write).
python3 -c "import awscli" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check awscli >&2
s3_start
# PgBouncer in transaction mode in front of it: the pooler suite's stand-in for Supavisor.
pgbouncer_start
trap 'pgbouncer_stop; pg_stop; s3_stop' EXIT
export SUPABACKUP_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/postgres"
export SUPABACKUP_BIN="$(swift build --show-bin-path)/supabackup"
export SUPABACKUP_SQL_DIR="$PWD/sql"
# Backups in the suites read with --jobs 4 (tables split into block ranges); the integration
# suites run again with --jobs 1 so both paths keep every correctness and reliability test.
swift test --skip-build "$@"
if [ $# -eq 0 ]; then
  echo "integration suites again with --jobs 1" >&2
  SUPABACKUP_TEST_JOBS=1 swift test --skip-build --filter IntegrationTests
  # What a host without the Swift toolchain installs (a binary with the Swift runtime linked in,
  # a .deb, install.sh), used for a backup and a restore with the toolchain out of reach.
  echo "release package and install check" >&2
  scripts/install-check.sh "$(scripts/package.sh | tail -n 1)"
fi
