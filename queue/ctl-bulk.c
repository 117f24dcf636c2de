/*
 * ctl-bulk.c: fcgiqctl retry, discard and cancel with filters.  Nothing is
 * changed without --all-matching, so that a bare command never touches
 * every job; on a terminal the command counts what the filters select and
 * asks before it changes anything (--yes does not ask), and shows a
 * progress line while the batches run (store_bulk: one short transaction
 * per batch, so intake goes on meanwhile).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "clock.h"
#include "ctl-bulk.h"
#include "text.h"
#include "wake.h"

#define EXIT_DBERR	1	/* as fcgiqctl.c */
#define EXIT_USAGE	2
#define EXIT_REFUSED	4

static const struct option bulk_opts[] = {
	{ "queue", required_argument, NULL, 'q' },
	{ "state", required_argument, NULL, 's' },
	{ "since", required_argument, NULL, 'S' },
	{ "until", required_argument, NULL, 'U' },
	{ "error", required_argument, NULL, 'e' },
	{ "all-matching", no_argument, NULL, 'A' },
	{ "yes", no_argument, NULL, 'y' },
	{ "batch", required_argument, NULL, 'b' },
	{ NULL, 0, NULL, 0 }
};

/* What each command is called in its messages. */
static const struct {
	const char		*cmd;
	const char		*done;		/* "N jobs retried" */
	enum store_bulk_op	 op;
} ops[] = {
	{ "retry", "retried", STORE_BULK_RETRY },
	{ "discard", "discarded", STORE_BULK_DISCARD },
	{ "cancel", "cancelled", STORE_BULK_CANCEL },
};

int
ctl_bulk_wanted(int argc, char **argv)
{
	const struct option *o;
	size_t n;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-y") == 0)
			return 1;
		if (strncmp(argv[i], "--", 2) != 0)
			continue;
		for (o = bulk_opts; o->name != NULL; o++) {
			n = strlen(o->name);
			if (strncmp(argv[i] + 2, o->name, n) == 0 &&
			    (argv[i][2 + n] == '\0' || argv[i][2 + n] == '='))
				return 1;
		}
	}
	return 0;
}

/*
 * A time for --since / --until into *ms: a duration back from now ("2h",
 * "30m", "7d": a unit is required), an RFC 3339 date-time, or
 * "YYYY-MM-DD[THH:MM[:SS]]" (' ' for 'T' too) taken as UTC.  0 or -1.
 */
static int
parse_time(const char *s, int64_t now, int64_t *ms)
{
	char buf[40];
	size_t n = strlen(s);
	int64_t d;

	if (n > 0 && ((s[n - 1] >= 'a' && s[n - 1] <= 'z') ||
	    (s[n - 1] >= 'A' && s[n - 1] <= 'Z')) && s[n - 1] != 'Z' &&
	    config_parse_duration(s, &d) == 0) {
		*ms = now - d;
		return 0;
	}
	if (text_rfc3339(s, ms) == 0)
		return 0;
	if (n != 10 && n != 16 && n != 19)
		return -1;
	snprintf(buf, sizeof(buf), "%s%s", s, n == 10 ? "T00:00:00Z" :
	    n == 16 ? ":00Z" : "Z");
	buf[10] = buf[10] == ' ' ? 'T' : buf[10];
	return text_rfc3339(buf, ms);
}

/* "dead,cancelled" (or one --state per name) into *mask; 0 or -1. */
static int
parse_states(const char *s, unsigned *mask)
{
	char buf[128], *p, *tok, *save = NULL;
	enum store_state st;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	for (p = buf; (tok = strtok_r(p, ",", &save)) != NULL; p = NULL) {
		if (store_state_parse(tok, &st) == -1 || st == STORE_JOB_ANY)
			return -1;
		*mask |= 1u << st;
	}
	return 0;
}

/* The names of the states in mask, "a, b or c", into buf. */
static const char *
state_names(unsigned mask, char *buf, size_t len)
{
	int st, left = 0;
	size_t n;

	for (st = STORE_JOB_QUEUED; st <= STORE_JOB_CANCELLED; st++)
		left += (mask & 1u << st) != 0;
	buf[0] = '\0';
	for (st = STORE_JOB_QUEUED; st <= STORE_JOB_CANCELLED; st++) {
		if (!(mask & 1u << st))
			continue;
		n = strlen(buf);
		snprintf(buf + n, len - n, "%s%s", store_state_name(st),
		    --left == 0 ? "" : left == 1 ? " or " : ", ");
	}
	return buf;
}

struct progress {
	const char	*cmd;
	int64_t		 total;		/* what the count said */
	int64_t		 shown_at;	/* mono ms of the last line */
	int		 shown;
};

/* The progress line, at most five times a second. */
static int
progress(void *arg, int64_t done)
{
	struct progress *p = arg;
	int64_t now = mono_ms();

	if (p->shown && now - p->shown_at < 200)
		return 0;
	fprintf(stderr, "\r%s: %" PRId64 " of %" PRId64 " jobs", p->cmd, done,
	    p->total);
	p->shown = 1;
	p->shown_at = now;
	return 0;
}

/* On a terminal: "retry 12345 jobs? [y/N] ".  1: yes. */
static int
confirm(const char *cmd, int64_t n)
{
	char line[32];

	fprintf(stderr, "%s %" PRId64 " job%s? [y/N] ", cmd, n,
	    n == 1 ? "" : "s");
	fflush(stderr);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return 0;
	return line[0] == 'y' || line[0] == 'Y';
}

int
ctl_bulk(const struct ctl_bulk_env *env, int argc, char **argv)
{
	struct store_filter f;
	struct progress p;
	struct store *s;
	char names[96];
	int64_t n = -1, total = -1, now = store_now();
	size_t k;
	int ch, all = 0, yes = 0, batch = STORE_BULK_BATCH, ret = 0, tty;

	for (k = 0; k < sizeof(ops) / sizeof(ops[0]); k++)
		if (strcmp(argv[0], ops[k].cmd) == 0)
			break;
	if (k == sizeof(ops) / sizeof(ops[0]))
		return EXIT_USAGE;
	memset(&f, 0, sizeof(f));
	optind = 0;	/* glibc: 0 re-initialises getopt */
	while ((ch = getopt_long(argc, argv, "q:s:y", bulk_opts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'q':
			f.queue = optarg;
			break;
		case 's':
			if (parse_states(optarg, &f.states) == -1)
				goto bad_state;
			break;
		case 'S':
		case 'U':
			if (parse_time(optarg, now, ch == 'S' ? &f.since :
			    &f.until) == -1) {
				fprintf(stderr, "fcgiqctl: %s: \"%s\": not a "
				    "time (2h, 7d, 2026-12-03, "
				    "2026-12-03T10:00:00Z)\n", argv[0], optarg);
				return EXIT_USAGE;
			}
			break;
		case 'e':
			f.error = optarg;
			break;
		case 'A':
			all = 1;
			break;
		case 'y':
			yes = 1;
			break;
		case 'b':
			if ((batch = atoi(optarg)) < 1)
				return EXIT_USAGE;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "fcgiqctl: %s: a job id or filters, not "
		    "both\n", argv[0]);
		return EXIT_USAGE;
	}
	if (!all) {
		fprintf(stderr, "fcgiqctl: %s: without a job id, name the "
		    "jobs with filters and --all-matching\n", argv[0]);
		return EXIT_USAGE;
	}
	if ((f.states & ~store_bulk_states(ops[k].op, 0)) != 0)
		goto bad_state;

	s = env->open(0);
	tty = isatty(STDERR_FILENO);
	if ((!yes && isatty(STDIN_FILENO)) || tty) {
		if ((total = store_bulk_count(s, ops[k].op, &f)) == -1)
			goto dberr;
		if (!yes && isatty(STDIN_FILENO) && total > 0 &&
		    !confirm(argv[0], total)) {
			fprintf(stderr, "fcgiqctl: %s: not confirmed, nothing "
			    "changed\n", argv[0]);
			store_close(s);
			return EXIT_REFUSED;
		}
	}
	memset(&p, 0, sizeof(p));
	p.cmd = argv[0];
	p.total = total;
	n = store_bulk(s, ops[k].op, &f, now, batch, tty && total > batch ?
	    progress : NULL, &p);
	if (p.shown)
		fprintf(stderr, "\r\033[K");
	if (n == -1)
		goto dberr;
	if (n > 0 && ops[k].op == STORE_BULK_RETRY)
		wake_notify(env->conf->database);
	if (env->json) {
		json_t *j = json_pack("{s:I}", ops[k].done, (json_int_t)n);
		char *t = j != NULL ? json_dumps(j, JSON_INDENT(2)) : NULL;

		if (t != NULL)
			puts(t);
		free(t);
		json_decref(j);
	} else
		printf("%" PRId64 " job%s %s\n", n, n == 1 ? "" : "s",
		    ops[k].done);
	store_close(s);
	return ret;
dberr:
	fprintf(stderr, "fcgiqctl: %s: %s\n", argv[0], store_error(s));
	store_close(s);
	return EXIT_DBERR;
bad_state:
	fprintf(stderr, "fcgiqctl: %s: --state: %s takes %s jobs\n", argv[0],
	    argv[0], state_names(store_bulk_states(ops[k].op, 0), names,
	    sizeof(names)));
	return EXIT_USAGE;
}
