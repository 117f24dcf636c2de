/*
 * test_wake: the wake-up socket both ways (wake.c): a commit's wake-up
 * reaches the helper; a responder's watch request is recorded, renewed
 * and expires; the helper's notices carry the finished ids, as many
 * datagrams as they need, and a watcher that is gone is dropped.
 */
#include <sys/socket.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "wake.h"

struct fx {
	char	dir[64];
	char	db[96];
	int	hfd;		/* the helper's */
	int	rfd;		/* a responder's */
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	FILE *fp;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_wake.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/q.db", f->dir);
	assert_non_null(fp = fopen(f->db, "w"));	/* named by its inode */
	fclose(fp);
	assert_true((f->hfd = wake_listen(f->db)) >= 0);
	assert_true((f->rfd = wake_watch_open()) >= 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	close(f->hfd);
	if (f->rfd >= 0)
		close(f->rfd);
	unlink(f->db);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* One notice from fd into buf (NUL-terminated): its length, or -1. */
static ssize_t
notice(int fd, char *buf, size_t len)
{
	ssize_t n = recv(fd, buf, len - 1, MSG_DONTWAIT);

	if (n >= 0)
		buf[n] = '\0';
	return n;
}

static void
test_watch_and_tell(void **state)
{
	struct fx *f = *state;
	struct wake_watchers ws = { .n = 0 };
	const char *ids[] = { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" };
	char buf[WAKE_NOTICE_MAX + 1], want[80];

	/* Nothing told while no one watches. */
	wake_tell(f->hfd, &ws, ids, 2, 1000);
	assert_int_equal(notice(f->rfd, buf, sizeof(buf)), -1);

	wake_watch(f->rfd, f->db);
	assert_int_equal(wake_take(f->hfd, &ws, 1000), 0);	/* no job */
	assert_int_equal(ws.n, 1);
	wake_notify(f->db);
	assert_int_equal(wake_take(f->hfd, &ws, 1000), 1);	/* a job */
	wake_watch(f->rfd, f->db);		/* renewed, not added */
	assert_int_equal(wake_take(f->hfd, &ws, 1500), 0);
	assert_int_equal(ws.n, 1);

	wake_tell(f->hfd, &ws, ids, 2, 2000);
	snprintf(want, sizeof(want), "%c%s\n%s\n", WAKE_NOTICE, ids[0],
	    ids[1]);
	assert_int_equal(notice(f->rfd, buf, sizeof(buf)), strlen(want));
	assert_string_equal(buf, want);

	/* The watch lapses WAKE_WATCH_MS after its last renewal. */
	wake_tell(f->hfd, &ws, ids, 1, 1500 + WAKE_WATCH_MS);
	assert_int_equal(ws.n, 0);
	assert_int_equal(notice(f->rfd, buf, sizeof(buf)), -1);
}

static void
test_many_ids_and_gone(void **state)
{
	struct fx *f = *state;
	struct wake_watchers ws = { .n = 0 };
	static char store[300][31];
	const char *ids[300];
	char buf[WAKE_NOTICE_MAX + 1];
	size_t i, got = 0;
	ssize_t n;

	for (i = 0; i < 300; i++) {
		snprintf(store[i], sizeof(store[i]), "%030zu", i);
		ids[i] = store[i];
	}
	wake_watch(f->rfd, f->db);
	(void)wake_take(f->hfd, &ws, 0);
	wake_tell(f->hfd, &ws, ids, 300, 1);
	while ((n = notice(f->rfd, buf, sizeof(buf))) > 0) {
		assert_true(n <= WAKE_NOTICE_MAX);
		assert_int_equal(buf[0], WAKE_NOTICE);
		for (i = 1; i < (size_t)n; i++)
			got += buf[i] == '\n';
	}
	assert_int_equal(got, 300);

	/* A responder that went away is dropped at the next notice. */
	close(f->rfd);
	f->rfd = -1;
	wake_tell(f->hfd, &ws, ids, 1, 2);
	assert_int_equal(ws.n, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_watch_and_tell, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_many_ids_and_gone, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
