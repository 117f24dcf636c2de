#!/bin/bash
# tests/e2e/run-sanitized.sh BUILDDIR: the unit and end-to-end suites once
# more, against a second build configured with --enable-debug (ASan and
# UBSan), made in BUILDDIR (created; reused when it is already configured
# for it).  Not a TESTS entry: tests/run-all.sh calls it after the main run.
#
#   bash tests/e2e/run-sanitized.sh "$src/build-sanitized"
#
# Every sanitized process — fcgiq under spawn-fcgi, its supervisor and
# helper, fcgiqctl, the unit tests — writes any report to a file in
# BUILDDIR/sanitizer/ (a daemon's stderr goes nowhere), and stops at the
# first one (halt_on_error, abort_on_error).  LeakSanitizer runs at every
# normal exit (detect_leaks=1); the helper processes leave with _exit() on
# purpose and are not leak-checked.  Each report file counts as one failed
# check on top of automake's summary.
#
# Environment: SANITIZED_TESTS (default: every unit test and every
# tests/e2e/*.sh suite in TESTS but three: valgrind-responder.sh, as
# valgrind and ASan exclude each other, and storage-faults.sh and
# powerloss.sh, which LD_PRELOAD tests/chaos/powerloss.so into spawn-fcgi
# and fcgiq, where ASan refuses to start: "ASan runtime does not come
# first in initial library list"), CONFIGURE_FLAGS (more
# configure options), MAKE_JOBS (2).
#
# Output: automake's check output, then the reports, then as the last line
# "N passed, N failed" like tests/run-all.sh; exit status 0 only when
# nothing failed.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
b=${1:?usage: run-sanitized.sh BUILDDIR}
summary() { echo "$1 passed, $2 failed"; }

mkdir -p "$b" && b=$(cd "$b" && pwd) || { echo "run-sanitized: cannot make $b"; summary 0 1; exit 1; }
cd "$b" || exit 1
t0=$(date +%s)
if ! grep -q -- '--enable-debug' config.status 2>/dev/null; then
	# shellcheck disable=SC2086 # CONFIGURE_FLAGS is a list of options
	if ! "$src/configure" --enable-debug ${CONFIGURE_FLAGS:-} >configure.out 2>&1; then
		tail -30 configure.out
		summary 0 1
		exit 1
	fi
fi
if ! make -j"${MAKE_JOBS:-2}" >make.out 2>&1; then
	tail -50 make.out
	summary 0 1
	exit 1
fi
grep -q -- '-fsanitize=address' Makefile || { echo "run-sanitized: $b is not a --enable-debug build"; summary 0 1; exit 1; }
t1=$(date +%s)

if [ -z "${SANITIZED_TESTS:-}" ]; then
	# TESTS as this build's Makefile has it, filtered.
	SANITIZED_TESTS=$(make -s -f Makefile -f - print-sanitized-tests <<-'EOF' | tr ' ' '\n' |
	print-sanitized-tests: ; @echo $(TESTS)
	EOF
	    grep -E '^tests/(unit/[^/]*|e2e/[^/]*\.sh)$' |
	    grep -vE '^tests/e2e/(valgrind-responder|storage-faults|powerloss)\.sh$' | xargs)
fi

R=$b/sanitizer
rm -rf "$R"
mkdir -p "$R"
# abort_on_error: a dying process shows as a signal, never as a clean exit
# a test might take for a refusal; disable_coredump keeps aborts cheap.
# LeakSanitizer reports through ASAN_OPTIONS' log_path.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:disable_coredump=1:log_path=$R/asan:log_exe_name=1"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_path=$R/ubsan:log_exe_name=1"

# shellcheck disable=SC2086 # a list of tests
make -j1 check TESTS="$SANITIZED_TESTS"
rc=$?
t2=$(date +%s)

log=test-suite.log
num() { sed -n "s/^# $1: *\([0-9]*\).*/\1/p" "$log" 2>/dev/null | head -1; }
pass=$(num PASS); fail=$(num FAIL); err=$(num ERROR); xpass=$(num XPASS)
for f in $(find . -name '*.log' ! -name test-suite.log ! -name config.log ! -name '*.out'); do
	if grep -q '^not ok\|^Bail out' "$f" 2>/dev/null; then
		echo "==== $f"
		grep -v '^ok ' "$f" | tail -40
	fi
done
reports=$(find "$R" -type f | sort)
nrep=0
for f in $reports; do
	nrep=$((nrep + 1))
	echo "==== sanitizer report $nrep: $f"
	head -60 "$f"
done
echo "run-sanitized: build $((t1 - t0)) s, tests $((t2 - t1)) s; tests: $SANITIZED_TESTS"
echo "run-sanitized: ${pass:-0} checks passed, ${fail:-0} failed, ${err:-0} errors; $nrep sanitizer report(s)"
bad=$(( ${fail:-0} + ${err:-0} + ${xpass:-0} + nrep ))
[ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
[ "${pass:-0}" -eq 0 ] && [ "$bad" -eq 0 ] && bad=1
summary "${pass:-0}" "$bad"
[ "$bad" -eq 0 ]
