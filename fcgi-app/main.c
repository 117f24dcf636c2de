/*
 * fcgiq: the FastCGI responder.  Parses options, sets up logging and
 * signals, starts the helper's supervisor while the process is still
 * single-threaded and has no database handle (supervisor.c, which also
 * re-creates it after SIGCHLD), then opens the database and starts group
 * commit, the status pool and the server threads.  The main thread then
 * only waits for signals: SIGTERM/SIGINT stop (answer what is in flight,
 * exit within a few seconds), SIGHUP reloads the configuration.
 *
 *   fcgiq [-dW] [-c file] [-n threads] [-s path|host:port] [-T seconds]
 *   fcgiq -t [-c file]		check a configuration and exit
 *   fcgiq work [-d] [-c file]	run a helper alone (supervisor_main)
 *   fcgiq -h | --help | --version
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "commit.h"
#include "config.h"
#include "dbpool.h"
#include "park.h"
#include "eta.h"
#include "router.h"
#include "log.h"
#include "metrics.h"
#include "scrape.h"
#include "server.h"
#include "store.h"
#include "supervisor.h"

#define STATUS_CONNS	4	/* dbpool: status reads and cancels */
#define STOP_GRACE_MS	4000	/* requests in flight, after SIGTERM */
#define LISTEN_BACKLOG	1024

static volatile sig_atomic_t	got_term, got_hup, got_chld;

/* What the main thread waits for (on_signal); no other thread gets them. */
static const int	main_sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGCHLD };
#define NMAIN_SIGS	(sizeof(main_sigs) / sizeof(main_sigs[0]))

static void
on_signal(int sig)
{
	switch (sig) {
	case SIGHUP:
		got_hup = 1;
		break;
	case SIGCHLD:
		got_chld = 1;
		break;
	default:
		got_term = 1;
		break;
	}
}

static const char usage_text[] =
    "usage: fcgiq [-dW] [-c file] [-n threads] [-s path|host:port] "
    "[-T seconds]\n"
    "       fcgiq -t [-c file]\n"
    "       fcgiq work [-d] [-c file]\n"
    "       fcgiq -h | --help | --version\n";

/* status 0 (asked for with -h): the usage on stdout. */
static __attribute__((noreturn)) void
usage(int status)
{
	fputs(usage_text, status == 0 ? stdout : stderr);
	exit(status);
}

static void
install_signals(void)
{
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_signal;
	sa.sa_flags = 0;		/* no SA_RESTART */
	for (i = 0; i < NMAIN_SIGS; i++)
		if (sigaction(main_sigs[i], &sa, NULL) == -1)
			fatal("sigaction");
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) == -1)
		fatal("sigaction SIGPIPE");
}

static void
reload(const char *conf_path, const char *db, int durability,
    struct supervisor *sv)
{
	struct config nc;
	char err[512];

	if (config_load(&nc, conf_path, err, sizeof(err)) == -1) {
		log_warnx("reload: %s: keeping the running configuration", err);
		return;
	}
	if (config_check_run(&nc, err, sizeof(err)) == -1) {
		log_warnx("reload: %s: keeping the running configuration", err);
		config_free(&nc);
		return;
	}
	if (strcmp(nc.database, db) != 0 || nc.durability != durability)
		log_warnx("reload: database and durability change only at "
		    "restart");
	log_setlevel(nc.log_level);
	if (router_set_config(&nc) == -1) {
		log_warnx("reload: out of memory");
		config_free(&nc);
		return;
	}
	if (supervisor_reload(sv) == -1)
		log_warn("reload: helper %ld", (long)sv->pid);
	log_info("reload: %s", conf_path != NULL ? conf_path :
	    "embedded default");
}

/* The FastCGI socket: fd 0 (spawn-fcgi, mod_fcgid, systemd), or sock. */
static int
open_listener(const char *sock)
{
	struct stat st;
	socklen_t optlen;
	int fd = 0, optval;

	if (sock == NULL) {
		optlen = sizeof(optval);
		if (fstat(0, &st) == -1 || !S_ISSOCK(st.st_mode) ||
		    getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &optval,
		    &optlen) == -1 || !optval)
			fatalx("fd 0 is not a listening socket: start fcgiq "
			    "with spawn-fcgi or a socket unit, or give -s");
	} else {
		/* libfcgi's: the address syntax of every libfcgi program
		 * (a path, or [host]:port). */
		if ((fd = FCGX_OpenSocket(sock, LISTEN_BACKLOG)) == -1)
			fatal("%s: cannot listen", sock);
	}
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
		fatal("listen socket: FD_CLOEXEC");
	return fd;
}

/*
 * Block the signals of install_signals() in this thread, so that the
 * workers inherit the mask and signals reach only the main thread (no
 * worker's read is cut short); *waitmask gets the mask to sigsuspend with.
 */
static void
block_signals(sigset_t *waitmask)
{
	sigset_t block;
	size_t i;

	sigemptyset(&block);
	for (i = 0; i < NMAIN_SIGS; i++)
		sigaddset(&block, main_sigs[i]);
	if (sigprocmask(SIG_BLOCK, &block, waitmask) == -1)
		fatal("sigprocmask");
	for (i = 0; i < NMAIN_SIGS; i++)
		sigdelset(waitmask, main_sigs[i]);
}

/*
 * Open the database connections and start the committer, the status
 * pool, the router and the server threads on listen_fd; conf is handed
 * over to the router.  Exits on failure (start-up only).
 */
static void
start_responder(struct config *conf, int listen_fd, int io_s, const char *db)
{
	struct store_opts sopts, ropts;
	struct server_conf sc;
	struct store *w, *r;
	char err[512];
	size_t i;

	memset(&sopts, 0, sizeof(sopts));
	sopts.durability = conf->durability;
	sopts.busy_timeout_ms = conf->busy_timeout_ms;
	if ((w = store_open(db, &sopts, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	ropts = sopts;
	ropts.readonly = 1;
	if ((r = store_open(db, &ropts, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	if (dbpool_open(db, &sopts, STATUS_CONNS, err, sizeof(err)) == -1)
		fatalx("%s", err);
	/* Not fatal: without the shared file, counts stay this process's. */
	if (metrics_open(db, 1, err, sizeof(err)) == -1)
		log_warnx("metrics: %s", err);
	if (park_start(db, &sopts, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (eta_start(db, &sopts, err, sizeof(err)) == -1)
		fatalx("%s", err);
	memset(&sc, 0, sizeof(sc));
	sc.listen_fd = listen_fd;
	sc.threads = conf->threads;
	sc.io_timeout_ms = io_s * 1000;
	sc.idle_timeout_ms = 4 * io_s * 1000;
	sc.serve = router_serve;
	if (commit_start(w, r, db) == -1)
		fatalx("commit: cannot start the committer thread");
	for (i = 0; i < conf->nqueues; i++)
		commit_prime(conf->queues[i].name);
	if (router_set_config(conf) == -1)
		fatalx("out of memory");
	if (server_start(&sc) == -1)
		fatal("server: cannot start");
}

/* The command line. */
struct opts {
	const char	*conf_path;	/* NULL: the embedded default */
	const char	*sock;		/* NULL: fd 0 */
	int		 debug, test, nohelper;
	int		 threads;	/* 0: the configuration's */
	int		 io_s;
};

/* Parse fcgiq's options into o; -h, --version and errors exit. */
static void
parse_options(int argc, char **argv, struct opts *o)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	memset(o, 0, sizeof(*o));
	o->io_s = 30;
	while ((ch = getopt_long(argc, argv, "c:dhn:s:tT:W", lopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->conf_path = optarg;
			break;
		case 'd':
			o->debug = 1;
			break;
		case 'h':
			usage(0);
		case 'n':
			o->threads = atoi(optarg);
			if (o->threads < 1 || o->threads > 1024)
				usage(2);
			break;
		case 's':
			o->sock = optarg;
			break;
		case 't':
			o->test = 1;
			break;
		case 'T':
			o->io_s = atoi(optarg);
			if (o->io_s < 1 || o->io_s > 3600)
				usage(2);
			break;
		case 'V':
			printf("fcgiq %s\n", PACKAGE_VERSION);
			exit(0);
		case 'W':
			o->nohelper = 1;
			break;
		default:
			usage(2);
		}
	}
	if (optind != argc)
		usage(2);
}

/*
 * Load the configuration into c with the command line's overrides, and
 * log where it says.  -t: say whether it loads, and exit.
 */
static void
load_config(const struct opts *o, struct config *c)
{
	char err[512];

	if (config_load(c, o->conf_path, err, sizeof(err)) == -1 ||
	    config_check_run(c, err, sizeof(err)) == -1) {
		if (o->test) {
			fprintf(stderr, "fcgiq: %s\n", err);
			exit(1);
		}
		fatalx("%s", err);
	}
	if (o->test) {
		printf("%s: configuration ok\n", o->conf_path != NULL ?
		    o->conf_path : "embedded default");
		config_free(c);
		exit(0);
	}
	if (!o->debug)
		log_setlevel(c->log_level);
	/* Before the helper forks, so that it and its supervisor log there too. */
	if (c->log_file != NULL && log_open(c->log_file) == -1)
		fatal("%s", c->log_file);
	if (o->nohelper)
		c->helper = 0;
	if (o->threads > 0)
		c->threads = o->threads;
	if (config_mkdir_database(c, err, sizeof(err)) == -1)
		fatalx("%s", err);
}

int
main(int argc, char **argv)
{
	struct supervisor sv = { .pid = -1, .watch_fd = -1 };
	struct opts o;
	struct config conf;
	sigset_t waitmask;
	char *db;
	int listen_fd = 0, durability, want_helper, threads, rc;
	mode_t umask_orig;

	/* What fcgiq creates (the database, its WAL, the lock file, the
	 * log) is not for others to read: job bodies are often secret. */
	umask_orig = umask(027);
	supervisor_std_fds();
	if (argc > 1 && (rc = supervisor_main(argc - 1, argv + 1)) != -1)
		return rc;
	parse_options(argc, argv, &o);
	log_init("fcgiq", o.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	load_config(&o, &conf);
	if (o.sock == NULL)
		listen_fd = open_listener(NULL);	/* fails before forking */

	/* Before any thread or database handle exists. */
	want_helper = conf.helper;
	if (want_helper) {
		if (supervisor_start(&sv, o.conf_path) == -1)
			fatal("helper: could not start");
		log_debug("helper: started, pid %ld", (long)sv.pid);
	}

	install_signals();
	if (o.sock != NULL) {
		/* The socket keeps the mode it always had: who may connect
		 * is the web server's side of the setup. */
		(void)umask(umask_orig);
		listen_fd = open_listener(o.sock);
		(void)umask(027);
	}
	block_signals(&waitmask);
	/* conf goes to the router in start_responder(). */
	durability = conf.durability;
	threads = conf.threads;
	if ((db = strdup(conf.database)) == NULL)
		fatal("strdup");
	start_responder(&conf, listen_fd, o.io_s, db);
	log_info("ready: %d threads, database %s%s", threads, db,
	    sv.pid > 0 ? "" : ", no helper");

	while (!got_term) {
		sigsuspend(&waitmask);
		if (got_hup) {
			got_hup = 0;
			reload(o.conf_path, db, durability, &sv);
		}
		if (got_chld) {
			got_chld = 0;
			supervisor_reap(&sv, want_helper && !got_term);
		}
	}

	log_info("stopping");
	/* Waiting requests first: they are answered with their job as it is,
	 * and new ones are answered at once. */
	park_stop();
	server_stop(STOP_GRACE_MS);
	commit_stop();
	scrape_stop();
	eta_stop();	/* after the committer's last 202 */
	dbpool_close();
	metrics_close();
	supervisor_stop(&sv);
	router_free();
	if (o.sock != NULL && o.sock[0] == '/')
		unlink(o.sock);
	log_info("stopped");
	free(db);
	return 0;
}
