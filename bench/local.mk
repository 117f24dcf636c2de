# bench/: load generators and side-by-side comparisons (not tests).
noinst_PROGRAMS += bench/null-responder
bench_null_responder_SOURCES = bench/null-responder.c
bench_null_responder_LDADD = $(FCGI_LIBS)
EXTRA_DIST += bench/run bench/intake.sh bench/intake.php bench/post.lua

# The store alone: group-commit intake and claim rates, with millions of
# jobs waiting (bench/run's growth rows).
noinst_PROGRAMS += bench/storebench
bench_storebench_SOURCES = bench/storebench.c
bench_storebench_LDADD = $(FCGIQ_LIBS)
