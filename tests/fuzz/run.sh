#!/bin/bash
# tests/fuzz/run.sh: build the libFuzzer targets of tests/fuzz/ with clang
# (AddressSanitizer + UBSan, any UB fatal) and run each for a while over a
# copy of its committed corpus (tests/fuzz/corpus/TARGET/).  One TAP line
# per target: "ok N - fuzz_request: 123456 execs in 10 s, 0 crashes".
#
#   bash tests/fuzz/run.sh                    # CI: FUZZ_SECONDS=10 per target
#   FUZZ_SECONDS=3600 bash tests/fuzz/run.sh  # the long run: an hour each
#   FUZZ_SECONDS=300 FUZZ_MERGE=1 bash tests/fuzz/run.sh
#       # ... and merge what the run found into the committed corpus
#       # (libFuzzer -merge=1: only inputs that add coverage)
#   FUZZ_TARGETS="fuzz_config" FUZZ_JOBS=2 bash tests/fuzz/run.sh
#       # some targets only; N fuzzer processes each (-fork=N)
#
# The targets link the libraries fcgiq links (libresponder.a, libfcgiq.a),
# from a second build of the tree configured here with clang and
# -fsanitize=fuzzer-no-link,address,undefined in $T/build (FUZZ_BUILDDIR:
# elsewhere, reused when already configured).  A crash, leak, sanitizer
# report or broken
# invariant fails the target; the input is kept as
# $T/artifacts/TARGET/crash-* (the test directory is kept on failure):
# reproduce with "$T/bin/TARGET FILE", then add FILE to the corpus with the
# fix.  No clang or no libFuzzer runtime: the suite is skipped, saying why
# (tests/install-deps.sh installs clang and libclang-rt-14-dev).
. "$(dirname "$0")/../lib.sh"

FUZZ_SECONDS=${FUZZ_SECONDS:-10}
FUZZ_JOBS=${FUZZ_JOBS:-1}
FUZZ_TARGETS=${FUZZ_TARGETS:-"fuzz_wire fuzz_request fuzz_content_length fuzz_status_path fuzz_idempotency fuzz_config fuzz_verify"}
FUZZ_DIR="$top_srcdir/tests/fuzz"
CC_FUZZ=${CC_FUZZ:-}

if [ -z "$CC_FUZZ" ]; then
	for c in clang clang-14 clang-15 clang-16; do
		command -v "$c" >/dev/null 2>&1 && { CC_FUZZ=$c; break; }
	done
fi
[ -n "$CC_FUZZ" ] || skip_all "no clang (tests/install-deps.sh installs it)"
command -v pkg-config >/dev/null 2>&1 || skip_all "no pkg-config"
pkg-config --exists jansson inih sqlite3 libcrypto libpq ||
    skip_all "jansson, inih, sqlite3, libcrypto or libpq development files missing"

SAN="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
CFLAGS_FUZZ="-g -O1 $SAN -fno-omit-frame-pointer \
	-I$top_srcdir/queue -I$top_srcdir/fcgi-app -I$FUZZ_DIR \
	$(pkg-config --cflags jansson inih sqlite3 libpq)"

# The runtime: a trivial target must link and run.
mkdir -p "$T/bin" "$T/artifacts" "$T/corpus"
printf '%s\n' '#include <stdint.h>' '#include <stddef.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
    '{ (void)d; (void)n; return 0; }' >"$T/probe.c"
"$CC_FUZZ" $SAN -o "$T/bin/probe" "$T/probe.c" >"$T/probe.log" 2>&1 &&
    "$T/bin/probe" -runs=1 >>"$T/probe.log" 2>&1 ||
    skip_all "$CC_FUZZ cannot build a libFuzzer target with ASan/UBSan \
(libclang-rt-14-dev missing?): $(grep -m1 -i error "$T/probe.log")"

# The libraries, instrumented for coverage (fuzzer-no-link: libFuzzer's
# main comes with each target).
b=${FUZZ_BUILDDIR:-$T/build}
mkdir -p "$b"
if [ ! -f "$b/Makefile" ] && ! (cd "$b" && CC=$CC_FUZZ \
    CFLAGS="-g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
    "$top_srcdir/configure") >"$T/configure.log" 2>&1; then
	bail "configure with $CC_FUZZ failed: $(tail -5 "$T/configure.log")"
fi
make -C "$b" -j"${MAKE_JOBS:-2}" libresponder.a libfcgiq.a >"$T/make.log" 2>&1 ||
	bail "building the libraries with $CC_FUZZ failed: $(grep -m5 error "$T/make.log")"
LIBS_FUZZ="$b/libresponder.a $b/libfcgiq.a \
	$(pkg-config --libs jansson inih sqlite3 libcrypto libpq) -lpthread"
# target_flags TARGET: libFuzzer options of a target.
target_flags() {
	case $1 in
	fuzz_request) echo "-max_len=20000" ;;
	fuzz_wire) echo "-max_len=66000" ;;
	fuzz_config|fuzz_verify) echo "-max_len=4096" ;;
	*) echo "-max_len=1024" ;;
	esac
}

# A small quarantine: fresh pages for every freed buffer cost 4x the speed.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:quarantine_size_mb=16:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

for t in $FUZZ_TARGETS; do
	# shellcheck disable=SC2046
	if ! "$CC_FUZZ" $CFLAGS_FUZZ -o "$T/bin/$t" "$FUZZ_DIR/$t.c" \
	    $LIBS_FUZZ >"$T/$t.build.log" 2>&1; then
		not_ok "$t: builds" "$(head -20 "$T/$t.build.log")"
		continue
	fi
	# A copy of the committed corpus: CI must not grow the repository.
	mkdir -p "$T/corpus/$t" "$T/artifacts/$t"
	[ -d "$FUZZ_DIR/corpus/$t" ] && cp "$FUZZ_DIR/corpus/$t"/* "$T/corpus/$t/" 2>/dev/null
	dict=""
	[ -f "$FUZZ_DIR/$t.dict" ] && dict="-dict=$FUZZ_DIR/$t.dict"
	fork=""
	[ "$FUZZ_JOBS" -gt 1 ] && fork="-fork=$FUZZ_JOBS -ignore_crashes=0"
	t0=$(date +%s)
	# shellcheck disable=SC2046,SC2086
	"$T/bin/$t" $(target_flags "$t") $dict $fork \
	    -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix="$T/artifacts/$t/" \
	    "$T/corpus/$t" >"$T/$t.log" 2>&1
	rc=$?
	secs=$(($(date +%s) - t0))
	execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$T/$t.log" | tail -1)
	[ -n "$execs" ] || execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' \
	    "$T/$t.log" | tail -1)
	crashes=$(find "$T/artifacts/$t" -type f | wc -l)
	cov=$(grep -o 'cov: [0-9]*' "$T/$t.log" | tail -1)
	if [ $rc -eq 0 ] && [ "$crashes" -eq 0 ] && [ -n "$execs" ]; then
		ok "$t: ${execs} execs in ${secs} s, 0 crashes"
		echo "# $t: ${cov:-cov: ?}, corpus $(find "$T/corpus/$t" -type f | wc -l) inputs"
	else
		not_ok "$t: ${execs:-?} execs in ${secs} s, ${crashes} crashes (exit $rc)" \
		    "$(grep -E -m 12 -A 12 'ERROR|runtime error|invariant broken|SUMMARY' "$T/$t.log")
artifacts: $(find "$T/artifacts/$t" -type f | tr '\n' ' ')
log: $T/$t.log"
	fi
	if [ -n "${FUZZ_MERGE:-}" ] && [ $rc -eq 0 ]; then
		mkdir -p "$FUZZ_DIR/corpus/$t"
		# shellcheck disable=SC2046
		"$T/bin/$t" $(target_flags "$t") -merge=1 "$FUZZ_DIR/corpus/$t" \
		    "$T/corpus/$t" >"$T/$t.merge.log" 2>&1 &&
		    echo "# $t: merged: $(grep -o 'MERGE-OUTER: [0-9]* new files' "$T/$t.merge.log")"
	fi
done

done_testing
