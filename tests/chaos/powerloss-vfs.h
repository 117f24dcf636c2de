/*
 * powerloss-vfs: a test-only SQLite VFS over "unix" that models the page
 * cache between a process and the disk, so a test can cut the power.
 * See powerloss-vfs.c for what it simulates and what it does not.
 */
#ifndef FCGIQ_POWERLOSS_VFS_H
#define FCGIQ_POWERLOSS_VFS_H

#include <stdint.h>

enum plvfs_mode {
	PLVFS_DROP = 0,		/* every write since the last sync is lost */
	PLVFS_TEAR		/* a random subset of its sectors reached the disk */
};

/*
 * Register the VFS "powerloss" as the default.  0, or -1 when SQLite
 * refused (no "unix" VFS, out of memory).  Idempotent.
 */
int	plvfs_register(void);

/*
 * Arm the power cut: it happens when the after-th write, truncate or sync
 * of a tracked file (main database, rollback journal, WAL) is about to
 * start, counted from this call.  after 0 disarms.  seed drives which
 * sectors survive in PLVFS_TEAR mode.
 */
void	plvfs_arm(uint64_t after, uint64_t seed, enum plvfs_mode mode);

/* Tracked writes, truncates and syncs since plvfs_arm() (or start-up). */
uint64_t plvfs_ops(void);

/* Cut the power now: apply the mode to every unsynced write, then die by
 * SIGKILL.  Does not return. */
void	plvfs_powerloss(void) __attribute__((noreturn));

#endif /* FCGIQ_POWERLOSS_VFS_H */
