/*
 * expo: write the exposition.  Every family gets its HELP and TYPE line
 * once, then its samples; histograms get their buckets cumulated here
 * (the shared counters keep them one by one), _count equal to the +Inf
 * bucket and _sum in the family's unit.  Label values come from the
 * configuration and a fixed table, and are escaped anyway.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "expo.h"

static const char *const state_names[EXPO_NSTATES] = {
	"queued", "running", "retry", "done", "dead", "cancelled"
};

/* Append printf(fmt, ...) to b.  0 or -1. */
static int __attribute__((format(printf, 2, 3)))
put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->cap - b->len < 128 && buf_reserve(b, 4096) == -1)
		return -1;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf((char *)b->data + b->len, b->cap - b->len, fmt,
		    ap);
		va_end(ap);
		if (n < 0)
			return -1;
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return 0;
		}
		if (buf_reserve(b, (size_t)n + 1) == -1)
			return -1;
	}
}

int
expo_label_value(struct buf *b, const char *s)
{
	const char *esc;

	for (; *s != '\0'; s++) {
		switch (*s) {
		case '\\': esc = "\\\\"; break;
		case '"': esc = "\\\""; break;
		case '\n': esc = "\\n"; break;
		default:
			if (buf_append(b, s, 1) == -1)
				return -1;
			continue;
		}
		if (buf_append(b, esc, 2) == -1)
			return -1;
	}
	return 0;
}

static int
family(struct buf *b, const char *name, const char *type, const char *help)
{
	return put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{labels} with labels "k1", v1, "k2", v2 (NULL-terminated pairs). */
static int
sample_head(struct buf *b, const char *name, const char *const *labels)
{
	size_t i;

	if (put(b, "%s", name) == -1)
		return -1;
	for (i = 0; labels != NULL && labels[i] != NULL; i += 2)
		if (put(b, "%s%s=\"", i == 0 ? "{" : ",", labels[i]) == -1 ||
		    expo_label_value(b, labels[i + 1]) == -1 ||
		    put(b, "\"") == -1)
			return -1;
	return put(b, "%s ", labels != NULL && labels[0] != NULL ? "}" :
	    "");
}

static int
sample_u(struct buf *b, const char *name, const char *const *labels,
    uint64_t v)
{
	return sample_head(b, name, labels) == -1 ? -1 :
	    put(b, "%" PRIu64 "\n", v);
}

static int
sample_d(struct buf *b, const char *name, const char *const *labels,
    double v)
{
	return sample_head(b, name, labels) == -1 ? -1 : put(b, "%.6f\n", v);
}

/* One histogram's samples: labels (pairs) plus le. */
static int
hist(struct buf *b, const char *name, const char *const *labels,
    const struct metrics_hist *h, enum metrics_hist_kind kind)
{
	const char *lab[8];
	char n[128], le[32];
	uint64_t cum = 0;
	size_t i, k = 0;

	while (labels != NULL && labels[k] != NULL && k < 4) {
		lab[k] = labels[k];
		k++;
	}
	lab[k] = "le";
	lab[k + 2] = NULL;
	snprintf(n, sizeof(n), "%s_bucket", name);
	for (i = 0; i <= METRICS_NBUCKETS; i++) {
		cum += h->b[i];
		if (i < METRICS_NBUCKETS)
			snprintf(le, sizeof(le), "%g", metrics_bounds[kind][i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		lab[k + 1] = le;
		if (sample_u(b, n, lab, cum) == -1)
			return -1;
	}
	snprintf(n, sizeof(n), "%s_sum", name);
	if (sample_d(b, n, labels, (double)h->sum / 1e6) == -1)
		return -1;
	snprintf(n, sizeof(n), "%s_count", name);
	return sample_u(b, n, labels, cum);
}

/* The counters of queue name: NULL when no process has counted any. */
static const struct metrics_queue *
counted(const struct expo_input *in, const char *name)
{
	size_t i;

	for (i = 0; i < METRICS_MAX_QUEUES; i++)
		if (in->names[i][0] != '\0' && strcmp(in->names[i], name) == 0)
			return &in->sum->q[i];
	return NULL;
}

static const struct metrics_queue zero;

static int
gauges(struct buf *b, const struct expo_input *in)
{
	const char *lab[5] = { "queue", NULL, "state", NULL, NULL };
	size_t i, s;

	if (family(b, "fcgiq_jobs", "gauge", "Jobs in the database by queue "
	    "and state (counted through the indexes; see "
	    "fcgiq_jobs_count_age_seconds).") == -1)
		return -1;
	for (i = 0; i < in->nq; i++) {
		if (!in->q[i].have_counts)
			continue;
		lab[1] = in->q[i].name;
		for (s = 0; s < EXPO_NSTATES; s++) {
			lab[3] = state_names[s];
			if (sample_u(b, "fcgiq_jobs", lab,
			    (uint64_t)in->q[i].count[s]) == -1)
				return -1;
		}
	}
	if (family(b, "fcgiq_jobs_count_age_seconds", "gauge", "How old the "
	    "fcgiq_jobs counts are (recounted at most every 20 times their "
	    "own cost).") == -1)
		return -1;
	if (in->counts_age_s >= 0 && sample_d(b,
	    "fcgiq_jobs_count_age_seconds", NULL, in->counts_age_s) == -1)
		return -1;
	lab[2] = NULL;
	if (family(b, "fcgiq_queue_oldest_waiting_seconds", "gauge", "How "
	    "long the job next in line has waited since it was enqueued.") ==
	    -1)
		return -1;
	for (i = 0; i < in->nq; i++) {
		lab[1] = in->q[i].name;
		if (in->q[i].have_head && sample_d(b,
		    "fcgiq_queue_oldest_waiting_seconds", lab,
		    in->q[i].oldest_waiting_s) == -1)
			return -1;
	}
	if (family(b, "fcgiq_queue_past_due_seconds", "gauge", "How late "
	    "the most overdue due job is (0: none is due).") == -1)
		return -1;
	for (i = 0; i < in->nq; i++) {
		lab[1] = in->q[i].name;
		if (in->q[i].have_head && sample_d(b,
		    "fcgiq_queue_past_due_seconds", lab,
		    in->q[i].past_due_s) == -1)
			return -1;
	}
	if (family(b, "fcgiq_helper_up", "gauge", "1 when a helper of this "
	    "host runs (holds the helper lock).") == -1)
		return -1;
	if (in->helper_up >= 0 && sample_u(b, "fcgiq_helper_up", NULL,
	    (uint64_t)in->helper_up) == -1)
		return -1;
	return 0;
}

static int
http_counters(struct buf *b, const struct expo_input *in)
{
	const char *lab[3] = { "code", NULL, NULL };
	char code[8];
	size_t i;

	if (family(b, "fcgiq_http_requests_total", "counter", "HTTP answers "
	    "by status code, every process of the installation.") == -1)
		return -1;
	for (i = 1; i <= METRICS_NCODES; i++) {
		size_t k = i % METRICS_NCODES;	/* "other" last */

		if (in->sum->http[k] == 0 && metrics_codes[k] != 202)
			continue;
		if (k == 0)
			snprintf(code, sizeof(code), "other");
		else
			snprintf(code, sizeof(code), "%d", metrics_codes[k]);
		lab[1] = code;
		if (sample_u(b, "fcgiq_http_requests_total", lab,
		    in->sum->http[k]) == -1)
			return -1;
	}
	return 0;
}

/* A per-queue counter family: field at off in struct metrics_queue. */
static int
queue_counter(struct buf *b, const struct expo_input *in, const char *name,
    const char *help, size_t off)
{
	const char *lab[3] = { "queue", NULL, NULL };
	const struct metrics_queue *q;
	size_t i;

	if (family(b, name, "counter", help) == -1)
		return -1;
	for (i = 0; i < in->nq; i++) {
		if ((q = counted(in, in->q[i].name)) == NULL)
			q = &zero;
		lab[1] = in->q[i].name;
		if (sample_u(b, name, lab,
		    *(const uint64_t *)((const char *)q + off)) == -1)
			return -1;
	}
	return 0;
}

static int
queue_families(struct buf *b, const struct expo_input *in)
{
	const char *lab[5] = { "queue", NULL, "outcome", NULL, NULL };
	const struct metrics_queue *q;
	size_t i, o;

	if (queue_counter(b, in, "fcgiq_jobs_enqueued_total", "Jobs stored "
	    "by intake.", offsetof(struct metrics_queue, enqueued)) == -1 ||
	    queue_counter(b, in, "fcgiq_jobs_retried_total", "Attempts "
	    "that failed, or whose lease expired or helper went away, with "
	    "attempts left: their job runs again.",
	    offsetof(struct metrics_queue, retried)) == -1 ||
	    queue_counter(b, in, "fcgiq_verify_failures_total", "Requests "
	    "refused by the queue's signature check.",
	    offsetof(struct metrics_queue, verify_failures)) == -1)
		return -1;
	if (family(b, "fcgiq_jobs_finished_total", "counter", "Attempts and "
	    "jobs that ended: done, failed (to be retried), dead, "
	    "cancelled.") == -1)
		return -1;
	for (i = 0; i < in->nq; i++) {
		if ((q = counted(in, in->q[i].name)) == NULL)
			q = &zero;
		lab[1] = in->q[i].name;
		for (o = 0; o < METRICS_NOUTCOMES; o++) {
			lab[3] = metrics_outcome_names[o];
			if (sample_u(b, "fcgiq_jobs_finished_total", lab,
			    q->finished[o]) == -1)
				return -1;
		}
	}
	if (family(b, "fcgiq_job_queue_seconds", "histogram", "From when a "
	    "job became due (its enqueue, or its backoff's end) to its "
	    "start.") == -1)
		return -1;
	lab[2] = NULL;
	for (i = 0; i < in->nq; i++) {
		if ((q = counted(in, in->q[i].name)) == NULL)
			q = &zero;
		lab[1] = in->q[i].name;
		if (hist(b, "fcgiq_job_queue_seconds", lab, &q->wait,
		    METRICS_H_JOB) == -1)
			return -1;
	}
	if (family(b, "fcgiq_job_duration_seconds", "histogram", "How long "
	    "an attempt ran, by its outcome.") == -1)
		return -1;
	lab[2] = "outcome";
	for (i = 0; i < in->nq; i++) {
		if ((q = counted(in, in->q[i].name)) == NULL)
			q = &zero;
		lab[1] = in->q[i].name;
		for (o = 0; o <= METRICS_DEAD; o++) {
			lab[3] = metrics_outcome_names[o];
			if (hist(b, "fcgiq_job_duration_seconds", lab,
			    &q->run[o], METRICS_H_JOB) == -1)
				return -1;
		}
	}
	return 0;
}

int
expo_write(struct buf *b, const struct expo_input *in)
{
	if (gauges(b, in) == -1 || http_counters(b, in) == -1 ||
	    queue_families(b, in) == -1)
		return -1;
	if (family(b, "fcgiq_intake_duration_seconds", "histogram", "From a "
	    "request's params read to its 2xx answer written.") == -1 ||
	    hist(b, "fcgiq_intake_duration_seconds", NULL, &in->sum->intake,
	    METRICS_H_FAST) == -1)
		return -1;
	if (family(b, "fcgiq_commit_batch_size", "histogram", "Jobs per "
	    "group commit.") == -1 ||
	    hist(b, "fcgiq_commit_batch_size", NULL, &in->sum->batch,
	    METRICS_H_BATCH) == -1)
		return -1;
	if (family(b, "fcgiq_commit_duration_seconds", "histogram", "One "
	    "group commit: BEGIN to COMMIT returned.") == -1 ||
	    hist(b, "fcgiq_commit_duration_seconds", NULL, &in->sum->commit,
	    METRICS_H_FAST) == -1)
		return -1;
	return 0;
}
