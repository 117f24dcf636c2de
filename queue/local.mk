# queue/: the shared library of every fcgiq program (config, log, wake).
libfcgiq_a_SOURCES += queue/clock.h queue/config.c queue/config.h queue/log.c queue/log.h \
	queue/wake.c queue/wake.h
# Shared utilities: a growable buffer; fd_close; UTF-8, CGI names, ISO-8601.
libfcgiq_a_SOURCES += queue/buf.c queue/buf.h queue/fd.h queue/text.c queue/text.h
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_text
TESTS += tests/unit/test_text
tests_unit_test_text_SOURCES = tests/unit/test_text.c
tests_unit_test_text_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_text_LDADD = $(FCGIQ_LIBS) $(CMOCKA_LIBS)
endif

# fcgiqctl: the operators' command-line tool.
sbin_PROGRAMS += fcgiqctl
fcgiqctl_SOURCES = queue/fcgiqctl.c
fcgiqctl_LDADD = libhelper.a $(FCGIQ_LIBS)

dist_man_MANS = man/fcgiq.8 man/fcgiqctl.8 man/fcgiq.conf.5
