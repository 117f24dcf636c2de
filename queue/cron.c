/*
 * cron: crontab(5)'s five fields, and their next slot on a zone's wall
 * clock.  The search runs on naive wall-clock labels (minutes counted on a
 * calendar without time zones), then places each label on the time line
 * with the zone's offsets; the placement is monotone in the label, so the
 * first label whose instant is after a given one is the next slot.  A
 * skipped label lands on the jump that skipped it and a repeated one on
 * its first occurrence: cronie and Vixie cron run such fixed-time jobs
 * once, right after the jump, and once.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cron.h"

#define ZONEINFO	"/usr/share/zoneinfo"
#define SEARCH_YEARS	30	/* 0 0 29 2 1 and friends fit easily */

struct field {
	const char	*name;
	int		 min, max;
	const char *const *names;	/* NULL: numbers only */
	int		 name_base;	/* the value of names[0] */
};

static const char *const month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec", NULL
};
static const char *const dow_names[] = {
	"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL
};

static const struct field fields[5] = {
	{ "minute", 0, 59, NULL, 0 },
	{ "hour", 0, 23, NULL, 0 },
	{ "day-of-month", 1, 31, NULL, 0 },
	{ "month", 1, 12, month_names, 1 },
	{ "day-of-week", 0, 7, dow_names, 0 },
};

static const struct {
	const char	*name;
	const char	*expr;
} macros[] = {
	{ "@yearly", "0 0 1 1 *" },
	{ "@annually", "0 0 1 1 *" },
	{ "@monthly", "0 0 1 * *" },
	{ "@weekly", "0 0 * * 0" },
	{ "@daily", "0 0 * * *" },
	{ "@midnight", "0 0 * * *" },
	{ "@hourly", "0 * * * *" },
};

/* A number or (where the field has them) a name at *pp: 0, or -1. */
static int
parse_value(const struct field *f, const char **pp, int *v, char *err,
    size_t errlen)
{
	const char *p = *pp;
	long n;
	int i;

	if (isdigit((unsigned char)*p)) {
		for (n = 0; isdigit((unsigned char)*p); p++)
			if ((n = n * 10 + (*p - '0')) > 1000)
				n = 1000;
		if (n < f->min || n > f->max) {
			snprintf(err, errlen, "cron: %s: %ld is out of range "
			    "%d-%d", f->name, n, f->min, f->max);
			return -1;
		}
		*v = (int)n;
		*pp = p;
		return 0;
	}
	if (f->names != NULL && isalpha((unsigned char)p[0]) &&
	    isalpha((unsigned char)p[1]) && isalpha((unsigned char)p[2]) &&
	    !isalpha((unsigned char)p[3]))
		for (i = 0; f->names[i] != NULL; i++)
			if (strncasecmp(p, f->names[i], 3) == 0) {
				*v = f->name_base + i;
				*pp = p + 3;
				return 0;
			}
	for (i = 0; p[i] != '\0' && p[i] != ',' && p[i] != '-' &&
	    p[i] != '/' && i < 32; i++)
		;
	snprintf(err, errlen, "cron: %s: \"%.*s\" is not a %s", f->name, i, p,
	    f->names != NULL ? "number or a name" : "number");
	return -1;
}

/* One field's text (no blanks) into the bits of *bits: 0, or -1. */
static int
parse_field(const struct field *f, const char *s, uint64_t *bits, int *star,
    char *err, size_t errlen)
{
	const char *p = s;
	int lo, hi, step, v, any;

	*bits = 0;
	*star = *s == '*';
	for (;;) {
		any = 0;
		if (*p == '*') {
			lo = f->min;
			hi = f->max == 7 ? 6 : f->max;	/* day-of-week */
			p++;
			any = 1;
		} else {
			if (parse_value(f, &p, &lo, err, errlen) == -1)
				return -1;
			hi = lo;
			if (*p == '-') {
				p++;
				if (parse_value(f, &p, &hi, err, errlen) == -1)
					return -1;
				/* "mon-sun": Sunday as the end is 7. */
				if (f->max == 7 && hi == 0 && lo > 0)
					hi = 7;
				if (hi < lo) {
					snprintf(err, errlen, "cron: %s: range "
					    "%d-%d runs backwards", f->name,
					    lo, hi);
					return -1;
				}
			}
		}
		step = 1;
		if (*p == '/') {
			p++;
			if (!isdigit((unsigned char)*p)) {
				snprintf(err, errlen, "cron: %s: a step is a "
				    "number", f->name);
				return -1;
			}
			for (step = 0; isdigit((unsigned char)*p); p++)
				if ((step = step * 10 + (*p - '0')) > 1000)
					step = 1000;
			if (step == 0 || step > f->max) {
				snprintf(err, errlen, "cron: %s: step %d is out "
				    "of range 1-%d", f->name, step, f->max);
				return -1;
			}
			/* "5/15" as cronie reads it: 5-max/15. */
			if (!any && hi == lo)
				hi = f->max;
		}
		for (v = lo; v <= hi; v += step)
			*bits |= (uint64_t)1 << (f->max == 7 && v == 7 ? 0 : v);
		if (*p == '\0')
			return 0;
		if (*p != ',') {
			snprintf(err, errlen, "cron: %s: unexpected \"%c\" in "
			    "\"%s\"", f->name, *p, s);
			return -1;
		}
		p++;
	}
}

static int
leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
mdays(int64_t y, int m)
{
	static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
	    31 };

	return m == 2 && leap(y) ? 29 : d[m - 1];
}

int
cron_parse(struct cron *c, const char *expr, char *err, size_t errlen)
{
	char buf[256], *tok[6], *save = NULL, *t;
	uint64_t bits[5];
	int star[5], n, i, m, ok;
	size_t k;

	while (isspace((unsigned char)*expr))
		expr++;
	if (*expr == '@') {
		for (k = 0; k < sizeof(macros) / sizeof(macros[0]); k++)
			if (strcasecmp(expr, macros[k].name) == 0)
				return cron_parse(c, macros[k].expr, err,
				    errlen);
		snprintf(err, errlen, "cron: \"%.40s\" is not one of @hourly "
		    "@daily @midnight @weekly @monthly @yearly @annually",
		    expr);
		return -1;
	}
	if (strlen(expr) >= sizeof(buf)) {
		snprintf(err, errlen, "cron: too long");
		return -1;
	}
	strcpy(buf, expr);
	for (n = 0, t = strtok_r(buf, " \t", &save); t != NULL && n < 6;
	    t = strtok_r(NULL, " \t", &save))
		tok[n++] = t;
	if (n != 5) {
		snprintf(err, errlen, "cron: expected 5 fields (minute hour "
		    "day-of-month month day-of-week), found %s", n > 5 ?
		    "more" : n == 4 ? "4" : n == 3 ? "3" : n == 2 ? "2" :
		    n == 1 ? "1" : "none");
		return -1;
	}
	for (i = 0; i < 5; i++)
		if (parse_field(&fields[i], tok[i], &bits[i], &star[i], err,
		    errlen) == -1)
			return -1;
	memset(c, 0, sizeof(*c));
	c->minute = bits[0];
	c->hour = (uint32_t)bits[1];
	c->dom = (uint32_t)bits[2];
	c->month = (uint32_t)bits[3];
	c->dow = (uint32_t)bits[4];
	c->dom_star = star[2];
	c->dow_star = star[4];
	/* With the day of week unrestricted, the days of month alone decide:
	 * "0 0 31 4 *" would never run, which is a mistake worth a message. */
	if (!c->dom_star && c->dow_star) {
		for (ok = 0, m = 1; m <= 12 && !ok; m++)
			if (c->month & (1u << m))
				for (i = 1; i <= mdays(2000, m); i++)
					if (c->dom & (1u << i))
						ok = 1;
		if (!ok) {
			snprintf(err, errlen, "cron: day-of-month: no such "
			    "day in the months named: never runs");
			return -1;
		}
	}
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int
day_match(const struct cron *c, int64_t y, int m, int d)
{
	int64_t wd = (days_from_civil(y, m, d) + 4) % 7;	/* 1970: Thu */
	int dm, wm;

	if (wd < 0)
		wd += 7;
	dm = (c->dom >> d) & 1;
	wm = (c->dow >> wd) & 1;
	/* crontab(5): both restricted (neither begins with '*'): either. */
	if (c->dom_star || c->dow_star)
		return dm && wm;
	return dm || wm;
}

/* A wall-clock label: minutes on a calendar without zones. */
struct label {
	int64_t	y;
	int	mo, d, h, mi;
};

static int64_t
label_minutes(const struct label *l)
{
	return days_from_civil(l->y, l->mo, l->d) * 1440 + l->h * 60 + l->mi;
}

/* The first label >= *l that c matches, in *l: 1, or 0 past the search. */
static int
match_from(const struct cron *c, struct label *l)
{
	int64_t	ylim = l->y + SEARCH_YEARS;

	while (l->y <= ylim) {
		if (!(c->month & (1u << l->mo))) {
			l->d = 1;
			l->h = l->mi = 0;
			if (++l->mo > 12) {
				l->mo = 1;
				l->y++;
			}
			continue;
		}
		if (!day_match(c, l->y, l->mo, l->d)) {
			l->h = l->mi = 0;
			goto next_day;
		}
		if (!(c->hour & (1u << l->h))) {
			l->mi = 0;
			goto next_hour;
		}
		if (!(c->minute & ((uint64_t)1 << l->mi))) {
			if (++l->mi <= 59)
				continue;
			l->mi = 0;
			goto next_hour;
		}
		return 1;
next_hour:
		if (++l->h <= 23)
			continue;
		l->h = 0;
next_day:
		if (++l->d <= mdays(l->y, l->mo))
			continue;
		l->d = 1;
		if (++l->mo > 12) {
			l->mo = 1;
			l->y++;
		}
	}
	return 0;
}

/* The zone's offset from UTC at instant t, in seconds. */
static long
offset_at(time_t t)
{
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL)
		return 0;
	return tm.tm_gmtoff;
}

/*
 * The instant (seconds) of wall-clock second n (naive seconds since the
 * epoch): its first occurrence, or in a gap the instant of the jump.
 * Offsets are read a day either side: no zone changes twice in two days.
 */
static time_t
place(int64_t n)
{
	long oa = offset_at((time_t)(n - 86400)), ob = offset_at((time_t)(n +
	    86400));
	time_t ta = (time_t)(n - oa), tb = (time_t)(n - ob), lo, hi, mid;
	int va = offset_at(ta) == oa, vb = offset_at(tb) == ob;

	if (va && vb)
		return ta < tb ? ta : tb;
	if (va)
		return ta;
	if (vb)
		return tb;
	/* In a gap (oa < ob): the jump is in (n - ob, n - oa]. */
	lo = tb < ta ? tb : ta;
	hi = tb < ta ? ta : tb;
	oa = offset_at(lo);
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (offset_at(mid) == oa)
			lo = mid;
		else
			hi = mid;
	}
	return hi;
}

int
cron_next(const struct cron *c, int64_t after, int64_t *slot)
{
	struct label l;
	struct tm tm;
	time_t t;
	int64_t at;
	int i;

	t = (time_t)(after >= 0 ? after / 1000 : (after - 999) / 1000);
	if (localtime_r(&t, &tm) == NULL)
		return 0;
	l.y = (int64_t)tm.tm_year + 1900;
	l.mo = tm.tm_mon + 1;
	l.d = tm.tm_mday;
	l.h = tm.tm_hour;
	l.mi = tm.tm_min;
	/* A label's instant is never before the one of a smaller label, and
	 * after's own label is at or before after: only labels from there
	 * on can be next.  A repeated hour takes a few turns here. */
	for (i = 0; i < 10000; i++) {
		if (!match_from(c, &l))
			return 0;
		at = (int64_t)place(label_minutes(&l) * 60) * 1000;
		if (at > after) {
			*slot = at;
			return 1;
		}
		if (++l.mi > 59) {
			l.mi = 0;
			if (++l.h > 23) {
				l.h = 0;
				if (++l.d > mdays(l.y, l.mo)) {
					l.d = 1;
					if (++l.mo > 12) {
						l.mo = 1;
						l.y++;
					}
				}
			}
		}
	}
	return 0;
}

int
cron_tz_valid(const char *zone)
{
	char path[512];
	struct stat st;
	const char *p;

	if (zone == NULL || *zone == '\0' || *zone == '/' || *zone == '.' ||
	    strlen(zone) > 200)
		return 0;
	for (p = zone; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && strchr("/_+-.", *p) == NULL)
			return 0;
	if (strstr(zone, "..") != NULL)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", ZONEINFO, zone);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static char	*saved_tz;
static int	 saved_set, entered;

int
cron_tz_enter(const char *zone)
{
	const char *old;

	if (zone == NULL)
		return 0;
	if (!cron_tz_valid(zone)) {
		errno = ENOENT;
		return -1;
	}
	old = getenv("TZ");
	free(saved_tz);
	saved_tz = old != NULL ? strdup(old) : NULL;
	saved_set = old != NULL;
	if (setenv("TZ", zone, 1) == -1)
		return -1;
	tzset();
	entered = 1;
	return 0;
}

void
cron_tz_leave(void)
{
	if (!entered)
		return;
	entered = 0;
	if (saved_set && saved_tz != NULL)
		(void)setenv("TZ", saved_tz, 1);
	else
		(void)unsetenv("TZ");
	free(saved_tz);
	saved_tz = NULL;
	tzset();
}

void
cron_fmt_local(int64_t ms, char *buf, size_t len)
{
	struct tm tm;
	time_t t = (time_t)(ms / 1000);

	if (localtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M %Z", &tm) == 0)
		snprintf(buf, len, "?");
}
