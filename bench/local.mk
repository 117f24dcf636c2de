# bench/: load generators and side-by-side comparisons (not tests; see
# bench/run).
# pg.sh: intake on PostgreSQL against SQLite and the null responder.
EXTRA_DIST += bench/pg.sh
# lib.sh: the plumbing the bench scripts source (scratch dir, servers, median).
EXTRA_DIST += bench/lib.sh
EXTRA_DIST += bench/run bench/intake.sh bench/intake.php bench/post.lua \
	bench/exec.sh bench/wait.sh bench/verify.sh bench/verify.lua \
	bench/upstream.sh bench/upstream.php bench/dashboard.sh
# schedules.sh: the helper with 20 [schedule NAME]s against none.
EXTRA_DIST += bench/schedules.sh
# http.sh: the http: handler kind against nginx -> PHP-FPM directly.
EXTRA_DIST += bench/http.sh bench/flow.sh

# intake.sh's reference: a libfcgi responder that stores nothing.
noinst_PROGRAMS += bench/null-responder
bench_null_responder_SOURCES = bench/null-responder.c
bench_null_responder_LDADD = $(FCGI_LIBS)

# Its ceiling: a null responder of our own on epoll, one send() per
# answer, kept connections served in place (issue 14).  Links nothing.
noinst_PROGRAMS += bench/epoll-null
bench_epoll_null_SOURCES = bench/epoll-null.c

# The store alone: group-commit intake and claim rates, with millions of
# jobs waiting (bench/run's growth rows).
noinst_PROGRAMS += bench/storebench
bench_storebench_SOURCES = bench/storebench.c
bench_storebench_LDADD = $(FCGIQ_LIBS)

# exec.sh: the helper's throughput against a raw spawn loop; the handler
# that stamps each run; the gap between an enqueue and its start.
noinst_PROGRAMS += bench/spawn-loop bench/stamp bench/enqueue-gap
bench_spawn_loop_SOURCES = bench/spawn-loop.c
bench_stamp_SOURCES = bench/stamp.c
bench_enqueue_gap_SOURCES = bench/enqueue-gap.c
bench_enqueue_gap_LDADD = $(FCGIQ_LIBS)

# fill: N jobs queued in batches on either engine (pg-drain.sh, pg-bloat.sh);
# pg-drain.sh: helper drain with 1 and 4 helpers, PostgreSQL and SQLite;
# pg-bloat.sh: the jobs table's size under sustained churn, autovacuum
# as shipped against per-table settings.
noinst_PROGRAMS += bench/fill
bench_fill_SOURCES = bench/fill.c
bench_fill_LDADD = $(FCGIQ_LIBS)
EXTRA_DIST += bench/pg-drain.sh bench/pg-bloat.sh

# sched-hook: the helper's schedules hook on a turn with nothing due.
noinst_PROGRAMS += bench/sched-hook
bench_sched_hook_SOURCES = bench/sched-hook.c
bench_sched_hook_LDADD = libhelper.a $(FCGIQ_LIBS)
# serial.sh: what serialize_by costs the claim (distinct keys against
# none, alternating) and a claim behind 10 000 jobs of one key.
noinst_PROGRAMS += bench/serialbench
bench_serialbench_SOURCES = bench/serialbench.c
bench_serialbench_LDADD = $(FCGIQ_LIBS)
EXTRA_DIST += bench/serial.sh bench/bulk.sh
