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
	queue/store-dead.c queue/store-rejected.c queue/store-dash.c \
	queue/metrics.c queue/metrics.h queue/expo.c queue/expo.h \
	queue/gauges.c queue/gauges.h \
	queue/verify.c queue/verify.h

noinst_LIBRARIES += libhelper.a
libhelper_a_SOURCES = queue/helper.c queue/helper.h queue/helper-jobs.c \
	queue/helper-internal.h queue/exec.c queue/exec.h \
	queue/slot.c queue/slot.h queue/supervisor.c queue/supervisor.h \
	queue/upstream.c queue/upstream.h queue/fcgi.c queue/fcgi.h
# The http: handler kind.
libhelper_a_SOURCES += queue/http.c queue/http.h

sbin_PROGRAMS += fcgiqctl
fcgiqctl_SOURCES = queue/fcgiqctl.c queue/top.c queue/top.h
fcgiqctl_LDADD = libhelper.a $(FCGIQ_LIBS)
