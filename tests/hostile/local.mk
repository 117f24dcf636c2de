# tests/hostile/: a raw FastCGI adversary against the live socket.
#
# adversary.c sends what no web server would (overflowing name/value
# lengths, truncated records, wrong versions and ids, ABORT in mid-stdin,
# NUL bytes in params, floods, other roles, slow senders); adversary.sh
# runs fcgiq (or $FCGIQ_BIN, e.g. an --enable-debug build) on a unix socket
# and checks after each attack that it lives, serves, and stored nothing.
check_PROGRAMS += tests/hostile/adversary
tests_hostile_adversary_SOURCES = tests/hostile/adversary.c \
	tests/tools/fcgibuf.c tests/tools/fcgibuf.h
tests_hostile_adversary_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/tests/tools
TESTS += tests/hostile/adversary.sh
dist_noinst_SCRIPTS += tests/hostile/adversary.sh
