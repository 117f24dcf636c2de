#!/bin/bash
# Install what is missing, build fcgiq in ./build with warnings as errors,
# and run every test (unit, end-to-end, chaos, fuzz), then the suites again
# on an ASan/UBSan build in ./build-sanitized.  The last line of output is
# "N passed, N failed", counted from the TAP results of every suite.
set -u
cd "$(dirname "$0")/.."
src=$(pwd)

summary() {
	echo "$1 passed, $2 failed"
}

bash tests/install-deps.sh || { echo "run-all: install-deps failed"; summary 0 1; exit 1; }
./autogen.sh >/dev/null 2>&1 || { ./autogen.sh; summary 0 1; exit 1; }
mkdir -p build && cd build || exit 1
if ! "$src/configure" --enable-werror ${CONFIGURE_FLAGS:-} >configure.out 2>&1; then
	tail -30 configure.out
	summary 0 1
	exit 1
fi
if ! make -j2 >make.out 2>&1; then
	tail -50 make.out
	summary 0 1
	exit 1
fi
make -j1 check ${TESTS:+TESTS="$TESTS"}
rc=$?
log=test-suite.log
if [ ! -f "$log" ]; then
	echo "run-all: no test-suite.log: the test run did not start"
	summary 0 1
	exit 1
fi
# Suites that failed: show their logs so CI output explains itself.
for f in $(find . -name '*.log' ! -name test-suite.log ! -name config.log); do
	if grep -q '^not ok\|^Bail out' "$f" 2>/dev/null; then
		echo "==== $f"
		grep -v '^ok ' "$f" | tail -60
	fi
done
num() { sed -n "s/^# $1: *\([0-9]*\).*/\1/p" "$log" | head -1; }
pass=$(num PASS); fail=$(num FAIL); err=$(num ERROR); xpass=$(num XPASS)
skip=$(num SKIP)
total=$(num TOTAL)
echo "run-all: $total checks: $pass passed, $fail failed, $err errors, $skip skipped"
bad=$(( ${fail:-0} + ${err:-0} + ${xpass:-0} ))
[ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
if [ "${pass:-0}" -eq 0 ]; then
	echo "run-all: no test passed: counting the run as failed"
	[ "$bad" -eq 0 ] && bad=1
fi
pass=${pass:-0}

# The suites once more on an ASan/UBSan build (SKIP_SANITIZED=1 skips it).
if [ -z "${SKIP_SANITIZED:-}" ] && [ -z "${TESTS:-}" ]; then
	echo "run-all: the suites again under AddressSanitizer and UBSan"
	bash "$src/tests/e2e/run-sanitized.sh" "$src/build-sanitized" >"$src/build-sanitized.out" 2>&1
	tail -40 "$src/build-sanitized.out" | grep -v '^PASS:'
	last=$(tail -1 "$src/build-sanitized.out")
	spass=$(echo "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
	sbad=$(echo "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
	if [ -z "$spass" ]; then
		echo "run-all: the sanitized run did not finish: $last"
		spass=0 sbad=1
	fi
	pass=$((pass + spass))
	bad=$((bad + sbad))
fi
summary "$pass" "$bad"
[ "$bad" -eq 0 ]
