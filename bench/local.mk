# bench/: load generators and side-by-side comparisons (not tests).
noinst_PROGRAMS += bench/null-responder
bench_null_responder_SOURCES = bench/null-responder.c
bench_null_responder_LDADD = $(FCGI_LIBS)
EXTRA_DIST += bench/intake.sh bench/intake.php bench/post.lua
