# Builds supabackup in the debug configuration, the one the tests use, so the demo's build and
# the test run's share every compiled dependency. Source this file, then: swift_build [args].
# A first build compiles about 1,300 files of dependencies (several minutes on two cores):
# progress is shown every 100 steps.
swift_build() {
  echo "==> swift build $* (first build: several minutes while dependencies compile)" >&2
  set +e
  swift build "$@" 2>&1 | awk '
    /error:/ { print; fflush(); next }
    /^\[[0-9]+\/[0-9]+\]/ {
      split($1, step, /[\[\/\]]/)
      if (step[2] - shown >= 100 || step[2] == step[3]) {
        printf "    step %s of %s: %s %s\n", step[2], step[3], $2, $3; shown = step[2]; fflush()
      }
    }
    /^Build complete|^Build of/ { print "    " $0; fflush() }' >&2
  local status=${PIPESTATUS[0]}
  set -e
  return "$status"
}
