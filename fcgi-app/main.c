/*
 * fcgiq: the FastCGI responder.  Parses options, sets up logging and
 * signals, forks the helper while the process is still single-threaded and
 * has no database handle, then opens the database and starts group
 * commit, the status pool and the server threads.  The main thread then
 * only waits for signals: SIGTERM/SIGINT stop (answer what is in flight,
 * exit within a few seconds), SIGHUP reloads the configuration.
 *
 *   fcgiq [-dW] [-c file] [-n threads] [-s path|host:port] [-T seconds]
 *   fcgiq -t [-c file]		check a configuration and exit
 *   fcgiq work [-d] [-c file]	run a helper alone
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "commit.h"
#include "config.h"
#include "dbpool.h"
#include "router.h"
#include "helper.h"
#include "log.h"
#include "server.h"
#include "store.h"

#define STATUS_CONNS	4	/* dbpool: status reads and cancels */
#define STOP_GRACE_MS	4000	/* requests in flight, after SIGTERM */
#define LISTEN_BACKLOG	1024

static volatile sig_atomic_t	got_term, got_hup, got_chld;

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

static __attribute__((noreturn)) void
usage(void)
{
	fprintf(stderr, "usage: fcgiq [-dW] [-c file] [-n threads] "
	    "[-s path|host:port] [-T seconds]\n"
	    "       fcgiq -t [-c file]\n"
	    "       fcgiq work [-d] [-c file]\n");
	exit(2);
}

/* fds 0-2 open, so that nothing we open lands on them by accident. */
static void
sanitize_fds(void)
{
	int fd;

	for (fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) == -1 && errno == EBADF &&
		    open("/dev/null", O_RDWR | O_CLOEXEC) == -1)
			exit(1);
}

static int
work_main(int argc, char **argv)
{
	const char *conf_path = NULL;
	struct config c;
	char err[512];
	int ch, debug = 0;

	while ((ch = getopt(argc, argv, "c:d")) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 'd':
			debug = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("fcgiq-work", debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, 0);
	/* helper_main loads the file itself; here only where the log goes. */
	if (config_load(&c, conf_path, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (c.log_file != NULL && log_open_file(c.log_file) == -1)
		fatal("%s", c.log_file);
	config_free(&c);
	return helper_main(conf_path, -1);
}

/* `fcgiq supervise`: not for people; see helper_respawn(). */
static int
supervise_main(int argc, char **argv)
{
	const char *conf_path = NULL;
	struct config c;
	char err[512];
	int ch;

	while ((ch = getopt(argc, argv, "c:")) != -1) {
		if (ch != 'c')
			usage();
		conf_path = optarg;
	}
	if (optind != argc || fcntl(3, F_GETFD) == -1)
		usage();
	log_init("fcgiq", LOG_LEVEL_INFO, 0);
	if (config_load(&c, conf_path, err, sizeof(err)) == 0) {
		log_setlevel(c.log_level);
		config_free(&c);
	}
	return helper_supervise(conf_path, 3);
}

static void
install_signals(void)
{
	struct sigaction sa;
	int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGCHLD };
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_signal;
	sa.sa_flags = 0;		/* no SA_RESTART */
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigaction(sigs[i], &sa, NULL) == -1)
			fatal("sigaction");
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) == -1)
		fatal("sigaction SIGPIPE");
}

static void
reload(const char *conf_path, const char *db, int durability, pid_t helper)
{
	struct config nc;
	char err[512];

	if (config_load(&nc, conf_path, err, sizeof(err)) == -1) {
		log_warnx("reload: %s: keeping the running configuration", err);
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
	if (helper > 0 && kill(helper, SIGHUP) == -1)
		log_warn("reload: helper %ld", (long)helper);
	log_info("reload: %s", conf_path != NULL ? conf_path :
	    "embedded default");
}

int
main(int argc, char **argv)
{
	struct config conf;
	struct store_opts sopts, ropts;
	struct server_conf sc;
	struct store *w, *r;
	struct stat st;
	sigset_t block, waitmask;
	const char *conf_path = NULL, *sock = NULL;
	char err[512], *db = NULL;
	int ch, debug = 0, test = 0, nohelper = 0, threads = 0, io_s = 30;
	int listen_fd = 0, optval, durability;
	socklen_t optlen;
	pid_t helper = -1, pid;
	int64_t respawned = 0;	/* when the supervisor was last restarted */
	size_t i;
	int want_helper;	/* conf is handed over to the handler below */

	if (argc > 1 && strcmp(argv[1], "work") == 0)
		return work_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "supervise") == 0)
		return supervise_main(argc - 1, argv + 1);
	while ((ch = getopt(argc, argv, "c:dn:s:tT:W")) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 'd':
			debug = 1;
			break;
		case 'n':
			threads = atoi(optarg);
			if (threads < 1 || threads > 1024)
				usage();
			break;
		case 's':
			sock = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'T':
			io_s = atoi(optarg);
			if (io_s < 1 || io_s > 3600)
				usage();
			break;
		case 'W':
			nohelper = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	sanitize_fds();
	log_init("fcgiq", debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, 0);
	if (config_load(&conf, conf_path, err, sizeof(err)) == -1) {
		if (test) {
			fprintf(stderr, "fcgiq: %s\n", err);
			return 1;
		}
		fatalx("%s", err);
	}
	if (test) {
		printf("%s: configuration ok\n", conf_path != NULL ? conf_path :
		    "embedded default");
		config_free(&conf);
		return 0;
	}
	if (!debug)
		log_setlevel(conf.log_level);
	/* Before the helper forks, so that it and its supervisor log there too. */
	if (conf.log_file != NULL && log_open_file(conf.log_file) == -1)
		fatal("%s", conf.log_file);
	if (nohelper)
		conf.helper = 0;
	if (threads > 0)
		conf.threads = threads;
	if (config_mkdir_database(&conf, err, sizeof(err)) == -1)
		fatalx("%s", err);

	if (sock == NULL) {
		/* spawn-fcgi, mod_fcgid, systemd: the socket is fd 0. */
		optlen = sizeof(optval);
		if (fstat(0, &st) == -1 || !S_ISSOCK(st.st_mode) ||
		    getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &optval,
		    &optlen) == -1 || !optval)
			fatalx("fd 0 is not a listening socket: start fcgiq "
			    "with spawn-fcgi or a socket unit, or give -s");
	}

	/* Before any thread or database handle exists. */
	want_helper = conf.helper;
	if (conf.helper) {
		if ((helper = helper_start(conf_path)) == -1)
			fatalx("helper: could not start");
		log_debug("helper: started, pid %ld", (long)helper);
	}

	install_signals();
	if (sock != NULL) {
		/* libfcgi's: the address syntax of every libfcgi program
		 * (a path, or [host]:port). */
		if ((listen_fd = FCGX_OpenSocket(sock, LISTEN_BACKLOG)) == -1)
			fatal("%s: cannot listen", sock);
	}
	if (fcntl(listen_fd, F_SETFD, FD_CLOEXEC) == -1)
		fatal("listen socket: FD_CLOEXEC");

	/* Workers inherit this mask: signals reach only
	 * the main thread, so no worker's read is cut short. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &block, &waitmask) == -1)
		fatal("sigprocmask");
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	sigdelset(&waitmask, SIGHUP);
	sigdelset(&waitmask, SIGUSR1);
	sigdelset(&waitmask, SIGCHLD);

	memset(&sopts, 0, sizeof(sopts));
	sopts.durability = conf.durability;
	sopts.busy_timeout_ms = conf.busy_timeout_ms;
	durability = conf.durability;
	if ((db = strdup(conf.database)) == NULL)
		fatal("strdup");
	if ((w = store_open(db, &sopts, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	ropts = sopts;
	ropts.readonly = 1;
	if ((r = store_open(db, &ropts, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	if (dbpool_open(db, &sopts, STATUS_CONNS, err, sizeof(err)) == -1)
		fatalx("%s", err);
	memset(&sc, 0, sizeof(sc));
	sc.listen_fd = listen_fd;
	sc.threads = conf.threads;
	sc.io_timeout_ms = io_s * 1000;
	sc.idle_timeout_ms = 4 * io_s * 1000;
	sc.serve = router_serve;
	if (commit_start(w, r, db) == -1)
		fatalx("commit: cannot start the committer thread");
	for (i = 0; i < conf.nqueues; i++)
		commit_prime(conf.queues[i].name);
	if (router_set_config(&conf) == -1)
		fatalx("out of memory");
	if (server_start(&sc) == -1)
		fatal("server: cannot start");
	log_info("ready: %d threads, database %s%s", sc.threads, db,
	    helper > 0 ? "" : ", no helper");

	while (!got_term) {
		sigsuspend(&waitmask);
		if (got_hup) {
			got_hup = 0;
			reload(conf_path, db, durability, helper);
		}
		if (got_chld) {
			got_chld = 0;
			while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
				if (pid == helper) {
					log_warnx("helper: supervisor pid %ld "
					    "exited", (long)helper);
					helper = -1;
				}
			/*
			 * Its helper stops with it: start another, or jobs
			 * would wait for a restart while we answer 202.  Threads
			 * exist now, so through exec (helper_respawn), at most
			 * once a second.
			 */
			if (helper == -1 && want_helper && !got_term) {
				if (store_now() - respawned < 1000)
					sleep(1);
				respawned = store_now();
				if ((helper = helper_respawn(conf_path)) == -1)
					log_warn("helper: respawn");
				else
					log_info("helper: supervisor restarted, "
					    "pid %ld", (long)helper);
			}
		}
	}

	log_info("stopping");
	server_stop(STOP_GRACE_MS);
	commit_stop();
	dbpool_close();
	if (helper > 0)
		helper_stop(helper);
	router_free();
	if (sock != NULL && sock[0] == '/')
		unlink(sock);
	log_info("stopped");
	free(db);
	return 0;
}
