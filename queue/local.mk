# queue/: the shared library of every fcgiq program (config, log, wake).
libfcgiq_a_SOURCES += queue/clock.h queue/config.c queue/config.h queue/log.c queue/log.h \
	queue/wake.c queue/wake.h

# fcgiqctl: the operators' command-line tool.
sbin_PROGRAMS += fcgiqctl
fcgiqctl_SOURCES = queue/fcgiqctl.c
fcgiqctl_LDADD = libhelper.a $(FCGIQ_LIBS)

dist_man_MANS = man/fcgiq.8 man/fcgiqctl.8 man/fcgiq.conf.5
