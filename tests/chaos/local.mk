# tests/chaos/: power-loss simulation and storage faults.
#
# powerloss-vfs.c is a test-only SQLite VFS that keeps what was not synced
# apart and can cut the power; it is linked into the C harness and built as
# a shared object to LD_PRELOAD into the real fcgiq (no libtool: a check
# program linked with -shared).
check_PROGRAMS += tests/chaos/powerloss tests/chaos/powerloss.so
TESTS += tests/chaos/powerloss
tests_chaos_powerloss_SOURCES = tests/chaos/powerloss.c \
	tests/chaos/powerloss-vfs.c tests/chaos/powerloss-vfs.h
tests_chaos_powerloss_LDADD = $(FCGIQ_LIBS)

tests_chaos_powerloss_so_SOURCES = tests/chaos/powerloss-vfs.c \
	tests/chaos/powerloss-vfs.h
tests_chaos_powerloss_so_CPPFLAGS = $(AM_CPPFLAGS) -DPLVFS_PRELOAD
tests_chaos_powerloss_so_CFLAGS = $(AM_CFLAGS) -fPIC
tests_chaos_powerloss_so_LDFLAGS = $(AM_LDFLAGS) -shared -fPIC
tests_chaos_powerloss_so_LDADD = $(SQLITE_LIBS)

# End to end through the real fcgiq (needs the programs above, nginx,
# spawn-fcgi, curl, sqlite3).
TESTS += tests/e2e/storage-faults.sh tests/e2e/powerloss.sh
dist_noinst_SCRIPTS += tests/e2e/storage-faults.sh tests/e2e/powerloss.sh
EXTRA_DIST += tests/chaos/e2e-lib.sh
