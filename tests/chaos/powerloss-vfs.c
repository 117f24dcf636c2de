/*
 * powerloss-vfs: a test-only SQLite VFS that wraps "unix" and models the
 * page cache between the process and the disk, so that a test can cut the
 * power at any write, truncate or sync and see what a reboot would find.
 *
 * Model.  Writes go through to the real file at once (every connection of
 * every thread reads them, as from the page cache), but for each file that
 * matters to durability -- the main database, a rollback journal, the WAL
 * -- the VFS keeps, per sector, the bytes the disk held at the last
 * successful xSync of that file (a pre-image, taken before the first
 * unsynced write or truncate touching the sector) and the size it had
 * then.  xSync syncs for real and forgets the pre-images: from then on the
 * data is on the disk.  The state is per file, not per handle (an fsync on
 * any descriptor flushes the file), and outlives xClose (closing does not
 * write the page cache back).
 *
 * A power cut (the after-th tracked operation, a flag file appearing, or
 * plvfs_powerloss()) puts back what the disk holds and kills the process
 * with SIGKILL at once, before the operation it interrupts:
 *   drop  every unsynced write and truncate is undone: the file gets its
 *         synced size back and every sector its pre-image;
 *   tear  each unsynced sector independently keeps its new bytes or gets
 *         its pre-image back, an unsynced extension is kept or cut, and
 *         sectors of a kept extension may read back as zeros (allocated,
 *         never written) -- the reordering a disk cache may do.
 * The -shm file is not tracked: it is memory a reboot wipes, so the test
 * deletes it before reopening (SQLite rebuilds it from the WAL).
 *
 * Not simulated: directory entries (a created or deleted file is durable at
 * once, no dirsync needed), torn writes inside a sector (sectors are
 * atomic, as SQLite's powersafe-overwrite default assumes), lying disks
 * that drop synced data, bit rot.  Several processes writing one database
 * each keep their own model; a cut is only exact when the dying process is
 * the only writer.
 *
 * Storage faults, checked at every tracked write or truncate while a flag
 * file named by the environment exists:
 *   FCGIQ_FAULT_FULL=path      writes fail with SQLITE_FULL (disk full)
 *   FCGIQ_FAULT_READONLY=path  writes and truncates fail with
 *                              SQLITE_IOERR_WRITE / _TRUNCATE, as on a
 *                              file system remounted read-only (EROFS)
 * Power cut, from the environment when the VFS is LD_PRELOADed:
 *   FCGIQ_POWERLOSS_AFTER=N    cut at the N-th tracked operation
 *   FCGIQ_POWERLOSS_FLAG=path  cut at the first tracked operation after
 *                              this file appears
 *   FCGIQ_POWERLOSS_MODE=drop|tear, FCGIQ_POWERLOSS_SEED=S,
 *   FCGIQ_POWERLOSS_SECTOR=512 (bytes)
 *
 * Built into a test program, it is registered by plvfs_register(); built
 * as a shared object (-DPLVFS_PRELOAD), a constructor registers it as the
 * default VFS of any program it is preloaded into.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "powerloss-vfs.h"

#define PL_MAX_SECTOR	65536

/* What the disk holds of one file, as far as it differs from the file. */
struct plnode {
	struct plnode	*next;
	char		*path;
	int		 fd;		/* ours: pre-images and the cut */
	dev_t		 dev;
	ino_t		 ino;
	int64_t		 synced_size;	/* size at the last sync */
	uint8_t		*map;		/* bit per sector: pre-image kept */
	size_t		 mapbytes;
	int64_t		*idx;		/* sectors with a pre-image */
	unsigned char	*pre;		/* nsects pre-images, sector bytes each */
	size_t		 nsects, capsects;
};

struct plfile {
	sqlite3_file	 base;
	struct plnode	*node;		/* NULL: not tracked */
	sqlite3_file	*real;		/* follows this struct */
};

static pthread_mutex_t	 pl_lock = PTHREAD_MUTEX_INITIALIZER;
static struct plnode	*pl_nodes;
static sqlite3_vfs	*pl_real;
static int		 pl_registered;
static uint64_t		 pl_ops, pl_after, pl_rng = 88172645463325252ULL;
static enum plvfs_mode	 pl_mode;
static int64_t		 pl_sector = 512;
static const char	*pl_flag_cut, *pl_flag_full, *pl_flag_ro;

/* xorshift64: the tear's coin, reproducible from the seed. */
static int
coin(void)
{
	pl_rng ^= pl_rng << 13;
	pl_rng ^= pl_rng >> 7;
	pl_rng ^= pl_rng << 17;
	return (int)(pl_rng >> 33) & 1;
}

static void
say(const char *msg)
{
	ssize_t	r;

	r = write(2, msg, strlen(msg));
	(void)r;
}

/* Forget every pre-image: the disk now holds the file as it is. */
static void
node_synced(struct plnode *n)
{
	struct stat	st;

	if (n->mapbytes != 0)
		memset(n->map, 0, n->mapbytes);
	n->nsects = 0;
	if (fstat(n->fd, &st) == 0)
		n->synced_size = st.st_size;
}

static struct plnode *
node_get(const char *path)
{
	struct plnode	*n, **pp;
	struct stat	 st;
	int		 fd;

	/*
	 * Open our descriptor only for a file we do not know yet, and never
	 * close one on a file in use: closing any descriptor of a file drops
	 * every POSIX lock the process holds on it, SQLite's included.
	 */
	if (stat(path, &st) == -1)
		return NULL;
	for (pp = &pl_nodes; (n = *pp) != NULL; pp = &n->next) {
		if (strcmp(n->path, path) != 0)
			continue;
		if (n->dev == st.st_dev && n->ino == st.st_ino)
			return n;
		/* The file was replaced behind our back: start afresh. */
		*pp = n->next;
		(void)close(n->fd);
		free(n->path);
		free(n->map);
		free(n->idx);
		free(n->pre);
		free(n);
		break;
	}
	if ((fd = open(path, O_RDWR | O_CLOEXEC)) == -1)
		return NULL;
	if (fstat(fd, &st) == -1) {
		(void)close(fd);
		return NULL;
	}
	if ((n = calloc(1, sizeof(*n))) == NULL ||
	    (n->path = strdup(path)) == NULL) {
		free(n);
		(void)close(fd);
		return NULL;
	}
	n->fd = fd;
	n->dev = st.st_dev;
	n->ino = st.st_ino;
	n->synced_size = st.st_size;	/* what was there before us is on disk */
	n->next = pl_nodes;
	pl_nodes = n;
	return n;
}

static void
node_forget(const char *path)
{
	struct plnode	*n, **pp;

	for (pp = &pl_nodes; (n = *pp) != NULL; pp = &n->next)
		if (strcmp(n->path, path) == 0) {
			*pp = n->next;
			(void)close(n->fd);
			free(n->path);
			free(n->map);
			free(n->idx);
			free(n->pre);
			free(n);
			return;
		}
}

/* Keep the disk's bytes of sector s, once per sync period.  0 or -1. */
static int
keep_sector(struct plnode *n, int64_t s)
{
	size_t		 byte = (size_t)(s / 8), need;
	int64_t		 off = s * pl_sector, len;
	unsigned char	*p;
	ssize_t		 r;
	void		*q;

	if (off >= n->synced_size)
		return 0;	/* beyond the synced size: the cut truncates it */
	if (byte >= n->mapbytes) {
		need = byte * 2 + 64;
		if ((q = realloc(n->map, need)) == NULL)
			return -1;
		n->map = q;
		memset(n->map + n->mapbytes, 0, need - n->mapbytes);
		n->mapbytes = need;
	}
	if (n->map[byte] & (1u << (s % 8)))
		return 0;
	if (n->nsects == n->capsects) {
		need = n->capsects * 2 + 16;
		if ((q = realloc(n->idx, need * sizeof(*n->idx))) == NULL)
			return -1;
		n->idx = q;
		if ((q = realloc(n->pre, need * (size_t)pl_sector)) == NULL)
			return -1;
		n->pre = q;
		n->capsects = need;
	}
	p = n->pre + n->nsects * (size_t)pl_sector;
	len = n->synced_size - off < pl_sector ? n->synced_size - off :
	    pl_sector;
	memset(p, 0, (size_t)pl_sector);
	r = pread(n->fd, p, (size_t)len, off);
	if (r < 0)
		return -1;
	n->idx[n->nsects++] = s;
	n->map[byte] |= (uint8_t)(1u << (s % 8));
	return 0;
}

static int
keep_range(struct plnode *n, int64_t off, int64_t len)
{
	int64_t	s, last;

	if (len <= 0)
		return 0;
	last = (off + len - 1) / pl_sector;
	for (s = off / pl_sector; s <= last; s++)
		if (keep_sector(n, s) == -1)
			return -1;
	return 0;
}

static void
cut_node(struct plnode *n)
{
	static const unsigned char	 zero[PL_MAX_SECTOR];
	struct stat			 st;
	int64_t				 cur, s, len, sz;
	size_t				 i;
	ssize_t				 r;
	int				 keep_size;

	if (fstat(n->fd, &st) == -1)
		return;
	cur = st.st_size;
	keep_size = pl_mode == PLVFS_TEAR && coin();
	if (keep_size && cur > n->synced_size) {
		/* The extension survives, some of it never written. */
		for (s = n->synced_size / pl_sector;
		    s * pl_sector < cur; s++) {
			if (s * pl_sector < n->synced_size || coin())
				continue;
			len = cur - s * pl_sector < pl_sector ?
			    cur - s * pl_sector : pl_sector;
			r = pwrite(n->fd, zero, (size_t)len, s * pl_sector);
			(void)r;
		}
	}
	sz = keep_size ? cur : n->synced_size;
	if (sz != cur && ftruncate(n->fd, sz) == -1)
		say("powerloss: ftruncate failed\n");
	for (i = 0; i < n->nsects; i++) {
		s = n->idx[i];
		if (s * pl_sector >= sz)
			continue;
		/* A tear keeps some new sectors; a reverted truncate has none. */
		if (pl_mode == PLVFS_TEAR && s * pl_sector < cur && coin())
			continue;
		len = sz - s * pl_sector < pl_sector ? sz - s * pl_sector :
		    pl_sector;
		r = pwrite(n->fd, n->pre + i * (size_t)pl_sector, (size_t)len,
		    s * pl_sector);
		(void)r;
	}
}

void
plvfs_powerloss(void)
{
	struct plnode	*n;
	struct stat	 st;
	char		 msg[200];
	size_t		 unsynced = 0;
	long long	 appended = 0;

	(void)pthread_mutex_trylock(&pl_lock);	/* held when called from a tick */
	for (n = pl_nodes; n != NULL; n = n->next) {
		unsynced += n->nsects;
		if (fstat(n->fd, &st) == 0 && st.st_size > n->synced_size)
			appended += (long long)(st.st_size - n->synced_size);
		cut_node(n);
	}
	(void)snprintf(msg, sizeof(msg), "powerloss: power cut at operation "
	    "%llu (%s), %zu unsynced sectors, %lld bytes appended\n",
	    (unsigned long long)pl_ops,
	    pl_mode == PLVFS_TEAR ? "tear" : "drop", unsynced, appended);
	say(msg);
	(void)raise(SIGKILL);
	_exit(137);
}

static int
flag(const char *path)
{
	return path != NULL && access(path, F_OK) == 0;
}

/* Count a tracked operation; cut the power when it is time.  Called with
 * pl_lock held. */
static void
tick(void)
{
	pl_ops++;
	if ((pl_after != 0 && pl_ops >= pl_after) || flag(pl_flag_cut))
		plvfs_powerloss();
}

static int
pl_close(sqlite3_file *f)
{
	struct plfile	*p = (struct plfile *)f;

	/* The node stays: closing does not write the page cache back. */
	return p->real->pMethods->xClose(p->real);
}

static int
pl_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
	struct plfile	*p = (struct plfile *)f;

	return p->real->pMethods->xRead(p->real, buf, amt, off);
}

static int
pl_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
	struct plfile	*p = (struct plfile *)f;
	int		 rc;

	if (p->node == NULL)
		return p->real->pMethods->xWrite(p->real, buf, amt, off);
	pthread_mutex_lock(&pl_lock);
	tick();
	if (flag(pl_flag_full))
		rc = SQLITE_FULL;
	else if (flag(pl_flag_ro))
		rc = SQLITE_IOERR_WRITE;
	else if (keep_range(p->node, off, amt) == -1)
		rc = SQLITE_IOERR_NOMEM;
	else
		rc = p->real->pMethods->xWrite(p->real, buf, amt, off);
	pthread_mutex_unlock(&pl_lock);
	return rc;
}

static int
pl_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct plfile	*p = (struct plfile *)f;
	sqlite3_int64	 cur;
	int		 rc;

	if (p->node == NULL)
		return p->real->pMethods->xTruncate(p->real, size);
	pthread_mutex_lock(&pl_lock);
	tick();
	if (flag(pl_flag_ro))
		rc = SQLITE_IOERR_TRUNCATE;
	else if ((rc = p->real->pMethods->xFileSize(p->real, &cur)) ==
	    SQLITE_OK) {
		if (size < cur && keep_range(p->node, size, cur - size) == -1)
			rc = SQLITE_IOERR_NOMEM;
		else if (size > cur && flag(pl_flag_full))
			rc = SQLITE_FULL;
		else
			rc = p->real->pMethods->xTruncate(p->real, size);
	}
	pthread_mutex_unlock(&pl_lock);
	return rc;
}

static int
pl_sync(sqlite3_file *f, int flags)
{
	struct plfile	*p = (struct plfile *)f;
	int		 rc;

	if (p->node == NULL)
		return p->real->pMethods->xSync(p->real, flags);
	pthread_mutex_lock(&pl_lock);
	tick();
	rc = p->real->pMethods->xSync(p->real, flags);
	if (rc == SQLITE_OK)
		node_synced(p->node);
	pthread_mutex_unlock(&pl_lock);
	return rc;
}

static int
pl_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	struct plfile	*p = (struct plfile *)f;

	return p->real->pMethods->xFileSize(p->real, size);
}

static int
pl_lock_file(sqlite3_file *f, int l)
{
	struct plfile	*p = (struct plfile *)f;

	return p->real->pMethods->xLock(p->real, l);
}

static int
pl_unlock_file(sqlite3_file *f, int l)
{
	struct plfile	*p = (struct plfile *)f;

	return p->real->pMethods->xUnlock(p->real, l);
}

static int
pl_check_lock(sqlite3_file *f, int *out)
{
	struct plfile	*p = (struct plfile *)f;

	return p->real->pMethods->xCheckReservedLock(p->real, out);
}

static int
pl_fcntl(sqlite3_file *f, int op, void *arg)
{
	struct plfile	*p = (struct plfile *)f;

	return p->real->pMethods->xFileControl(p->real, op, arg);
}

static int
pl_sector_size(sqlite3_file *f)
{
	struct plfile	*p = (struct plfile *)f;

	return p->real->pMethods->xSectorSize(p->real);
}

static int
pl_devchar(sqlite3_file *f)
{
	struct plfile	*p = (struct plfile *)f;

	return p->real->pMethods->xDeviceCharacteristics(p->real);
}

static int
pl_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	struct plfile	*p = (struct plfile *)f;

	return p->real->pMethods->xShmMap(p->real, pg, pgsz, extend, pp);
}

static int
pl_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	struct plfile	*p = (struct plfile *)f;

	return p->real->pMethods->xShmLock(p->real, off, n, flags);
}

static void
pl_shm_barrier(sqlite3_file *f)
{
	struct plfile	*p = (struct plfile *)f;

	p->real->pMethods->xShmBarrier(p->real);
}

static int
pl_shm_unmap(sqlite3_file *f, int del)
{
	struct plfile	*p = (struct plfile *)f;

	return p->real->pMethods->xShmUnmap(p->real, del);
}

static int
pl_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
	struct plfile	*p = (struct plfile *)f;

	return p->real->pMethods->xFetch(p->real, off, amt, pp);
}

static int
pl_unfetch(sqlite3_file *f, sqlite3_int64 off, void *ptr)
{
	struct plfile	*p = (struct plfile *)f;

	return p->real->pMethods->xUnfetch(p->real, off, ptr);
}

static const sqlite3_io_methods pl_methods = {
	3, pl_close, pl_read, pl_write, pl_truncate, pl_sync, pl_file_size,
	pl_lock_file, pl_unlock_file, pl_check_lock, pl_fcntl, pl_sector_size,
	pl_devchar, pl_shm_map, pl_shm_lock, pl_shm_barrier, pl_shm_unmap,
	pl_fetch, pl_unfetch
};

static int
pl_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
    int *outflags)
{
	struct plfile	*p = (struct plfile *)f;
	int		 rc;

	(void)vfs;
	memset(p, 0, sizeof(*p));
	p->real = (sqlite3_file *)(p + 1);
	rc = pl_real->xOpen(pl_real, name, p->real, flags, outflags);
	if (rc != SQLITE_OK || p->real->pMethods == NULL) {
		/* Nothing to close; SQLite must not call our methods. */
		p->base.pMethods = NULL;
		return rc;
	}
	p->base.pMethods = &pl_methods;
	if (name != NULL && (flags & (SQLITE_OPEN_MAIN_DB |
	    SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_WAL)) != 0 &&
	    (flags & SQLITE_OPEN_READONLY) == 0) {
		pthread_mutex_lock(&pl_lock);
		p->node = node_get(name);
		pthread_mutex_unlock(&pl_lock);
		if (p->node == NULL) {
			p->real->pMethods->xClose(p->real);
			p->base.pMethods = NULL;
			return SQLITE_CANTOPEN;
		}
	}
	return SQLITE_OK;
}

static int
pl_delete(sqlite3_vfs *vfs, const char *name, int dirsync)
{
	(void)vfs;
	pthread_mutex_lock(&pl_lock);
	node_forget(name);	/* deleting is durable at once (see above) */
	pthread_mutex_unlock(&pl_lock);
	return pl_real->xDelete(pl_real, name, dirsync);
}

static int
pl_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return pl_real->xAccess(pl_real, name, flags, out);
}

static int
pl_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	return pl_real->xFullPathname(pl_real, name, n, out);
}

static void *
pl_dlopen(sqlite3_vfs *vfs, const char *name)
{
	(void)vfs;
	return pl_real->xDlOpen(pl_real, name);
}

static void
pl_dlerror(sqlite3_vfs *vfs, int n, char *msg)
{
	(void)vfs;
	pl_real->xDlError(pl_real, n, msg);
}

static void (*pl_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
	(void)vfs;
	return pl_real->xDlSym(pl_real, h, sym);
}

static void
pl_dlclose(sqlite3_vfs *vfs, void *h)
{
	(void)vfs;
	pl_real->xDlClose(pl_real, h);
}

static int
pl_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return pl_real->xRandomness(pl_real, n, out);
}

static int
pl_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return pl_real->xSleep(pl_real, us);
}

static int
pl_current_time(sqlite3_vfs *vfs, double *out)
{
	(void)vfs;
	return pl_real->xCurrentTime(pl_real, out);
}

static int
pl_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return pl_real->xGetLastError(pl_real, n, out);
}

static int
pl_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void)vfs;
	return pl_real->xCurrentTimeInt64(pl_real, out);
}

static sqlite3_vfs pl_vfs = {
	2, 0, 1024, NULL, "powerloss", NULL, pl_open, pl_delete, pl_access,
	pl_full_pathname, pl_dlopen, pl_dlerror, pl_dlsym, pl_dlclose,
	pl_randomness, pl_sleep, pl_current_time, pl_last_error,
	pl_current_time64, NULL, NULL, NULL
};

int
plvfs_register(void)
{
	const char	*v;
	long long	 sec;

	if (pl_registered)
		return 0;
	if ((pl_real = sqlite3_vfs_find("unix")) == NULL)
		return -1;
	pl_vfs.szOsFile = (int)sizeof(struct plfile) + pl_real->szOsFile;
	pl_vfs.mxPathname = pl_real->mxPathname;
	pl_flag_full = getenv("FCGIQ_FAULT_FULL");
	pl_flag_ro = getenv("FCGIQ_FAULT_READONLY");
	pl_flag_cut = getenv("FCGIQ_POWERLOSS_FLAG");
	if ((v = getenv("FCGIQ_POWERLOSS_SECTOR")) != NULL) {
		sec = strtoll(v, NULL, 10);
		if (sec >= 64 && sec <= PL_MAX_SECTOR && (sec & (sec - 1)) == 0)
			pl_sector = sec;
	}
	if (sqlite3_vfs_register(&pl_vfs, 1) != SQLITE_OK)
		return -1;
	pl_registered = 1;
	return 0;
}

void
plvfs_arm(uint64_t after, uint64_t seed, enum plvfs_mode mode)
{
	pthread_mutex_lock(&pl_lock);
	pl_ops = 0;
	pl_after = after;
	pl_mode = mode;
	pl_rng = seed != 0 ? seed : 88172645463325252ULL;
	pthread_mutex_unlock(&pl_lock);
}

uint64_t
plvfs_ops(void)
{
	uint64_t	n;

	pthread_mutex_lock(&pl_lock);
	n = pl_ops;
	pthread_mutex_unlock(&pl_lock);
	return n;
}

#ifdef PLVFS_PRELOAD
/* Preloaded: take over as the default VFS before main() runs. */
__attribute__((constructor)) static void
plvfs_preload(void)
{
	const char	*after, *seed, *mode;

	if (plvfs_register() == -1) {
		say("powerloss: could not register the VFS\n");
		_exit(70);
	}
	after = getenv("FCGIQ_POWERLOSS_AFTER");
	seed = getenv("FCGIQ_POWERLOSS_SEED");
	mode = getenv("FCGIQ_POWERLOSS_MODE");
	plvfs_arm(after != NULL ? strtoull(after, NULL, 10) : 0,
	    seed != NULL ? strtoull(seed, NULL, 10) : (uint64_t)getpid(),
	    mode != NULL && strcmp(mode, "tear") == 0 ? PLVFS_TEAR :
	    PLVFS_DROP);
}
#endif
