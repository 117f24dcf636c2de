# bench/exec.sh: the helper's throughput against a raw spawn loop.
noinst_PROGRAMS += bench/spawn-loop bench/stamp
bench_spawn_loop_SOURCES = bench/spawn-loop.c
bench_stamp_SOURCES = bench/stamp.c
EXTRA_DIST += bench/exec.sh
noinst_PROGRAMS += bench/enqueue-gap
bench_enqueue_gap_SOURCES = bench/enqueue-gap.c
bench_enqueue_gap_LDADD = $(FCGIQ_LIBS)
