/*
 * helper: the process that runs the queue's jobs (claims them, runs their
 * handlers in slots, records the outcomes).  supervisor.c starts, watches
 * and stops it; only one helper per database is active at a time.
 */
#ifndef FCGIQ_HELPER_H
#define FCGIQ_HELPER_H

/*
 * Run a helper in this process until SIGTERM/SIGINT or EOF on parent_fd
 * (the pipe watched for fcgiq going away; -1: none), standing by first
 * while another helper holds the database's lock.  conf_path: the file to
 * load and reload on SIGHUP, or NULL.  Returns the exit code.
 */
int	helper_main(const char *conf_path, int parent_fd);

#endif /* FCGIQ_HELPER_H */
