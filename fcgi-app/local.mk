# fcgi-app/: the responder, fcgiq.
#
# libresponder.a: every responder object but main.c, linked by fcgiq and by
# the unit tests alike, so the tests exercise the objects the program runs.
noinst_LIBRARIES += libresponder.a
libresponder_a_SOURCES = \
	fcgi-app/server.c fcgi-app/server.h \
	fcgi-app/wire.c fcgi-app/wire.h \
	fcgi-app/router.c fcgi-app/router.h \
	fcgi-app/request.c fcgi-app/request.h \
	fcgi-app/response.c fcgi-app/response.h \
	fcgi-app/commit.c fcgi-app/commit.h \
	fcgi-app/dbpool.c fcgi-app/dbpool.h \
	fcgi-app/scrape.c fcgi-app/scrape.h \
	fcgi-app/park.c fcgi-app/park.h \
	fcgi-app/eta.c fcgi-app/eta.h

sbin_PROGRAMS += fcgiq
fcgiq_SOURCES = fcgi-app/main.c
fcgiq_LDADD = libresponder.a libhelper.a $(FCGIQ_LIBS) $(FCGI_LIBS)

# The dashboard (FCGIQ_ROLE dashboard): its page's files are embedded into
# the binary as C arrays by embed.sh (od and awk: no xxd needed).
libresponder_a_SOURCES += fcgi-app/dashboard.c fcgi-app/dashboard.h \
	fcgi-app/dashboard-assets.h
nodist_libresponder_a_SOURCES = fcgi-app/dashboard-assets.c
DASH_ASSETS = fcgi-app/dashboard/index.html \
	fcgi-app/dashboard/dashboard.css fcgi-app/dashboard/dashboard.js
EXTRA_DIST += $(DASH_ASSETS) fcgi-app/dashboard/embed.sh \
	fcgi-app/dashboard/screenshot.png
CLEANFILES += fcgi-app/dashboard-assets.c
fcgi-app/dashboard-assets.c: $(DASH_ASSETS) fcgi-app/dashboard/embed.sh
	$(AM_V_GEN)$(MKDIR_P) fcgi-app && \
	$(SHELL) $(srcdir)/fcgi-app/dashboard/embed.sh \
	    $(DASH_ASSETS:%=$(srcdir)/%) > $@.tmp && mv $@.tmp $@
