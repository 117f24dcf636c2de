# queue/: everything but the responder.
#
# libfcgiq.a: what every fcgiq program links (configuration, logging,
# wake-up, small utilities, the store).  libhelper.a: the helper, its slots,
# the exec and http handlers and the supervisor of the helper processes (linked by
# fcgiq and fcgiqctl).  fcgiqctl: the operators' command-line tool.
libfcgiq_a_SOURCES += queue/clock.h queue/config.c queue/config.h \
	queue/log.c queue/log.h queue/wake.c queue/wake.h \
	queue/buf.c queue/buf.h queue/fd.h queue/text.c queue/text.h \
	queue/fcgirec.c queue/fcgirec.h \
	queue/store.c queue/store.h queue/store-sqlite.h \
	queue/store-schema.c queue/store-sql.c queue/store-enqueue.c \
	queue/store-jobs.c queue/store-admin.c queue/store-gauges.c \
	queue/store-dead.c queue/store-rejected.c queue/store-flow.c \
	queue/store-bulk.c queue/store-dash.c \
	queue/store-pg.c queue/store-pg.h queue/store-pg-jobs.c \
	queue/store-pg-sched.c \
	queue/store-pg-bulk.c \
	queue/store-pg-flow.c \
	queue/store-pg-dash.c \
	queue/metrics.c queue/metrics.h queue/expo.c queue/expo.h \
	queue/gauges.c queue/gauges.h \
	queue/verify.c queue/verify.h \
	queue/flow.c queue/flow.h
# Recurring jobs: [schedule NAME], cron expressions, their slots' store.
libfcgiq_a_SOURCES += queue/cron.c queue/cron.h queue/schedule.c \
	queue/schedule.h queue/store-schedule.c

noinst_LIBRARIES += libhelper.a
libhelper_a_SOURCES = queue/helper.c queue/helper.h queue/helper-jobs.c \
	queue/helper-internal.h queue/helper-flow.c queue/exec.c queue/exec.h \
	queue/slot.c queue/slot.h queue/supervisor.c queue/supervisor.h \
	queue/upstream.c queue/upstream.h queue/fcgi.c queue/fcgi.h
# The http: handler kind.
libhelper_a_SOURCES += queue/http.c queue/http.h
# The helper's hook for [schedule NAME].
libhelper_a_SOURCES += queue/helper-schedules.c

sbin_PROGRAMS += fcgiqctl
fcgiqctl_SOURCES = queue/fcgiqctl.c queue/top.c queue/top.h \
	queue/ctl-schedules.c queue/ctl-schedules.h \
	queue/ctl-bulk.c queue/ctl-bulk.h
fcgiqctl_LDADD = libhelper.a $(FCGIQ_LIBS)
