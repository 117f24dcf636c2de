# tests/fuzz/: libFuzzer targets for every parser of what a client or the
# web server sends (FastCGI records, params and headers, CONTENT_LENGTH, the status path,
# the idempotency key, the configuration file).
#
# run.sh builds them itself with clang (-fsanitize=fuzzer,address,undefined;
# the project's CFLAGS are gcc's) and runs each FUZZ_SECONDS (10) over a
# copy of its corpus; see its header for the long run and corpus merges.
TESTS += tests/fuzz/run.sh
dist_noinst_SCRIPTS += tests/fuzz/run.sh
EXTRA_DIST += tests/fuzz/fuzz.h tests/fuzz/fuzz_request.c tests/fuzz/fuzz_wire.c \
	tests/fuzz/fuzz_content_length.c tests/fuzz/fuzz_status_path.c \
	tests/fuzz/fuzz_idempotency.c tests/fuzz/fuzz_config.c \
	tests/fuzz/fuzz_request.dict tests/fuzz/fuzz_config.dict \
	tests/fuzz/corpus
