/*
 * store-sql.c: the text of the statements the store prepares once per
 * connection (enum stmt_id), in one place so that the queries, the indexes
 * they name and the schema (store-schema.c) can be read side by side.
 * The multi-row INSERTs of an enqueue are built in store-enqueue.c.
 */
#include <sqlite3.h>

#include "store-sqlite.h"

/*
 * A job put back to queued, or dead when it has had all its attempts.
 * Its runner is gone (a lease that expired, a helper that went away):
 * one crash more, for quarantine_after (the helper's claim checks it).
 */
#define REQUEUE_SET \
	"SET state = CASE WHEN attempts >= max_attempts THEN 'dead'" \
	"    ELSE 'queued' END," \
	"  run_at = CASE WHEN attempts >= max_attempts THEN run_at" \
	"    ELSE ?1 END," \
	"  finished_at = CASE WHEN attempts >= max_attempts THEN ?1 END," \
	"  lease_until = NULL, last_error = ?2, crashes = crashes + 1 "

/* A failed attempt's job is dead: permanent, out of attempts, or
 * quarantined (its crashes, this one counted, reach ?8).  SET reads the
 * row as it was before the UPDATE. */
#define QUARANTINED	"(?7 AND ?8 > 0 AND crashes + 1 >= ?8)"
#define FAILED_DEAD	"(?3 OR attempts >= max_attempts OR " QUARANTINED ")"

/* The claim's pick: the first ?3 due jobs of queue ?1 in claim order,
 * with the further condition lane, and their serial keys. */
#define CLAIM_PICK(lane) \
	"SELECT seq, serial_key FROM jobs INDEXED BY jobs_claim" \
	" WHERE queue = ?1 AND state IN ('queued', 'retry')" \
	"  AND run_at <= ?2" \
	"  AND NOT EXISTS (SELECT 1 FROM queues WHERE name = ?1 AND paused)" \
	lane \
	" ORDER BY priority DESC, run_at, seq LIMIT ?3"

/* The first job of each serial key of queue ?1 (ordered by key, one
 * search a key), the best due one in claim order, with the further
 * condition lane: claim_pick's way past CLAIM_PICK's window. */
#define SERIAL_HEADS(lane) \
	    "WITH RECURSIVE k(key) AS (" \
	    "  SELECT (SELECT serial_key FROM jobs INDEXED BY jobs_serial" \
	    "    WHERE queue = ?1 AND serial_key IS NOT NULL" \
	    "      AND finished_at IS NULL ORDER BY serial_key LIMIT 1)" \
	    "  UNION ALL" \
	    "  SELECT (SELECT serial_key FROM jobs INDEXED BY jobs_serial" \
	    "    WHERE queue = ?1 AND serial_key > k.key" \
	    "      AND serial_key IS NOT NULL AND finished_at IS NULL" \
	    "    ORDER BY serial_key LIMIT 1)" \
	    "  FROM k WHERE k.key IS NOT NULL)" \
	    " SELECT j.seq FROM k, jobs AS j" \
	    " WHERE k.key IS NOT NULL AND j.seq = (SELECT min(seq) FROM jobs" \
	    "    INDEXED BY jobs_serial WHERE queue = ?1 AND serial_key = k.key" \
	    "    AND serial_key IS NOT NULL AND finished_at IS NULL)" \
	    "  AND (j.state = 'queued' OR j.state = 'retry') AND j.run_at <= ?2" lane \
	    "  AND NOT EXISTS (SELECT 1 FROM queues WHERE name = ?1 AND paused)" \
	    " ORDER BY j.priority DESC, j.run_at, j.seq LIMIT 1"

const char *const sq_sql[ST__COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_IDEM_LOOKUP] =
	    "SELECT id, body FROM jobs"
	    " WHERE queue = ?1 AND idempotency_key = ?2",
	/* The claim is three statements: RETURNING would collect its row
	 * in a temporary b-tree (see migration 2 -> 3 in store-schema.c
	 * for their cost). */
	/* The due jobs in claim order, the first attempts' alone when
	 * retries hold all the slots they may (retry_concurrency: attempts
	 * is not in jobs_claim, so each entry that lane passes over costs a
	 * row lookup, and only then); store_claim() takes the first one that
	 * no earlier job of its serial key holds back. */
	[ST_CLAIM_PICK] = CLAIM_PICK(""),
	[ST_CLAIM_PICK_FRESH] = CLAIM_PICK(" AND attempts = 0"),
	[ST_CLAIM] =
	    "UPDATE jobs SET state = 'running', attempts = attempts + 1,"
	    "  started_at = ?2, lease_until = ?3"
	    " WHERE seq = ?1",
	[ST_GET_SEQ] = "SELECT " JOB_COLUMNS " FROM jobs WHERE seq = ?1",
	[ST_NEXT_DUE] =
	    "SELECT min(run_at) FROM jobs INDEXED BY jobs_claim"
	    " WHERE queue = ?1 AND state IN ('queued', 'retry')"
	    "  AND NOT EXISTS (SELECT 1 FROM queues WHERE name = ?1 AND paused)",
	[ST_DONE] =
	    "UPDATE jobs SET state = 'done', result = ?3, finished_at = ?4,"
	    "  lease_until = NULL, result_type = ?5"
	    " WHERE id = ?1 AND state = 'running' AND attempts = ?2",
	/* ?7: the attempt crashed (one more in crashes); ?8: the crashes
	 * that make the job dead (0: none do), quarantine_after. */
	[ST_FAILED] =
	    "UPDATE jobs SET"
	    "  state = CASE WHEN " FAILED_DEAD " THEN 'dead'"
	    "    ELSE 'retry' END,"
	    "  run_at = CASE WHEN " FAILED_DEAD " THEN run_at ELSE ?5 END,"
	    "  finished_at = CASE WHEN " FAILED_DEAD " THEN ?4 END,"
	    "  lease_until = NULL,"
	    "  last_error = CASE WHEN " QUARANTINED " THEN"
	    "    'crashed ' || (crashes + 1) || ' times' ELSE ?6 END,"
	    "  crashes = crashes + ?7"
	    " WHERE id = ?1 AND state = 'running' AND attempts = ?2",
	[ST_STATE] = "SELECT state FROM jobs WHERE id = ?1",
	[ST_RELEASE] =
	    "UPDATE jobs SET state = 'queued', run_at = ?3, lease_until = NULL,"
	    "  last_error = ?4"
	    " WHERE id = ?1 AND state = 'running' AND attempts = ?2",
	[ST_EXTEND] =
	    "UPDATE jobs SET lease_until = ?3"
	    " WHERE id = ?1 AND state = 'running' AND attempts = ?2",
	[ST_CANCEL] =
	    "UPDATE jobs SET state = 'cancelled', finished_at = ?2,"
	    "  lease_until = NULL"
	    " WHERE id = ?1 AND state IN ('queued', 'retry')",
	[ST_EXISTS] = "SELECT 1 FROM jobs WHERE id = ?1",
	[ST_REQUEUE_EXPIRED] =
	    "UPDATE jobs INDEXED BY jobs_lease " REQUEUE_SET
	    " WHERE state = 'running' AND lease_until < ?1",
	[ST_REQUEUE_RUNNING] =
	    "UPDATE jobs INDEXED BY jobs_lease " REQUEUE_SET
	    " WHERE state = 'running'",
	[ST_PRUNE] =
	    "DELETE FROM jobs INDEXED BY jobs_finished"
	    " WHERE finished_at < ?1 AND (?2 IS NULL OR queue = ?2)"
	    "  AND (?3 IS NULL OR state = ?3)",
	[ST_GET] = "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1",
	[ST_COUNT_WAITING] =
	    "SELECT count(*) FROM jobs INDEXED BY jobs_claim"
	    " WHERE queue = ?1 AND state IN ('queued', 'retry')",
	[ST_STATS] =
	    "SELECT queue, state, count(*), min(created_at) FROM jobs"
	    " GROUP BY queue, state ORDER BY queue, state",
	[ST_PAUSE] =
	    "INSERT INTO queues (name, paused) VALUES (?1, ?2)"
	    " ON CONFLICT (name) DO UPDATE SET paused = excluded.paused",
	[ST_PAUSED] = "SELECT paused FROM queues WHERE name = ?1",
	/* An operator's retry: at least one more attempt, from now. */
	[ST_RETRY] =
	    "UPDATE jobs SET state = 'queued', run_at = ?2, finished_at = NULL,"
	    "  max_attempts = max(max_attempts, attempts + 1)"
	    " WHERE id = ?1 AND state IN ('dead', 'cancelled', 'retry')",
	[ST_RETRY_DEAD] =
	    "UPDATE jobs SET state = 'queued', run_at = ?1, finished_at = NULL,"
	    "  max_attempts = max(max_attempts, attempts + 1)"
	    " WHERE state = 'dead' AND (?2 IS NULL OR queue = ?2)",
	[ST_LIST] =
	    "SELECT id, queue, state, attempts, max_attempts, created_at,"
	    "  length(body), coalesce(last_error, '') FROM jobs"
	    " WHERE (?1 IS NULL OR queue = ?1) AND (?2 IS NULL OR state = ?2)"
	    " ORDER BY seq DESC LIMIT ?3",
	/* The latest jobs of a queue to finish, from jobs_finished
	 * (finished_at >= ?2 implies its IS NOT NULL); the LIMIT bounds the
	 * rows read, whatever the rate. */
	[ST_DRAIN] =
	    "SELECT count(*), min(finished_at) FROM"
	    " (SELECT finished_at FROM jobs INDEXED BY jobs_finished"
	    "  WHERE finished_at >= ?2 AND queue = ?1"
	    "  ORDER BY finished_at DESC LIMIT ?3)",
	/* Whether an unfinished job of serial key ?2 arrived before ?3. */
	[ST_SERIAL_PROBE] =
	    "SELECT 1 FROM jobs INDEXED BY jobs_serial"
	    " WHERE queue = ?1 AND serial_key = ?2 AND seq < ?3"
	    "  AND serial_key IS NOT NULL AND finished_at IS NULL LIMIT 1",
	/*
	 * The best due job among the first unfinished job of each serial
	 * key: a walk from key to key in jobs_serial (one search each, not
	 * one per job waiting behind a key), for when the claim order
	 * starts with more jobs held back than store_claim() reads.
	 */
	[ST_SERIAL_HEADS] = SERIAL_HEADS(""),
	[ST_SERIAL_HEADS_FRESH] = SERIAL_HEADS(" AND j.attempts = 0"),
};
