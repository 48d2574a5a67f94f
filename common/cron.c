/*
 * cron: robfig/cron v3 schedules (see cron.h).
 */
#include "cron.h"

#include "err.h"
#include "rftime.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define S_STAR (1ULL << 63) /* robfig's starBit */
#define S_FIELD_MAX 256 /* longest field or range expression kept for a message */

/* The bounds and names of a field. */
typedef struct {
    unsigned min, max;
    const char *const *names; /* names of min, min+1, ...; NULL none */
} s_bounds_t;

static const char *const s_months[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
                                       "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const s_days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const s_bounds_t s_bounds[5] = {
    {0, 59, NULL}, {0, 23, NULL}, {1, 31, NULL}, {1, 12, s_months}, {0, 6, s_days}};

const char *cron_field_name(cron_field_t f)
{
    static const char *const names[] = {"minute", "hour", "day of month", "month", "day of week"};
    return f >= CRON_F_MINUTE && f <= CRON_F_DOW ? names[f] : "spec";
}

static uint64_t s_bits(unsigned min, unsigned max, unsigned step)
{
    uint64_t b = 0;
    if (step == 1)
        return (~(~0ULL << (max + 1))) & (~0ULL << min);
    for (unsigned i = min; i <= max; i += step)
        b |= 1ULL << i;
    return b;
}

static uint64_t s_all(cron_field_t f)
{
    return s_bits(s_bounds[f].min, s_bounds[f].max, 1) | S_STAR;
}

/* Go's strconv.Atoi then robfig's mustParseInt. */
static int s_int(const char *e, size_t n, unsigned *out, buf_t *err)
{
    size_t i = 0;
    bool neg = false;
    if (n > 0 && (e[0] == '+' || e[0] == '-')) {
        neg = e[0] == '-';
        i = 1;
    }
    bool syntax = i == n;
    uint64_t v = 0;
    bool range = false;
    for (; i < n && !syntax; i++) {
        if (e[i] < '0' || e[i] > '9') {
            syntax = true;
            break;
        }
        if (v > (UINT64_MAX - 9) / 10 || v * 10 + (uint64_t)(e[i] - '0') > (uint64_t)INT64_MAX)
            range = true;
        else
            v = v * 10 + (uint64_t)(e[i] - '0');
    }
    if (syntax || range) {
        if (err)
            buf_printf(err, "failed to parse int from %.*s: strconv.Atoi: parsing \"%.*s\": %s",
                       (int)n, e, (int)n, e, syntax ? "invalid syntax" : "value out of range");
        return ERR_PARSE;
    }
    if (neg && v > 0) {
        if (err)
            buf_printf(err, "negative number (-%llu) not allowed: %.*s", (unsigned long long)v,
                       (int)n, e);
        return ERR_PARSE;
    }
    *out = v > 0xffffffu ? 0xffffffu : (unsigned)v;
    return 0;
}

static int s_int_or_name(const char *e, size_t n, const s_bounds_t *b, unsigned *out, buf_t *err)
{
    for (size_t i = 0; b->names && b->names[i]; i++)
        if (strlen(b->names[i]) == n && strncasecmp(b->names[i], e, n) == 0) {
            *out = b->min + (unsigned)i;
            return 0;
        }
    return s_int(e, n, out, err);
}

/* robfig's getRange() over e[n]. */
static int s_range(const char *e, size_t n, const s_bounds_t *b, uint64_t *out, buf_t *err)
{
    const char *slash = memchr(e, '/', n);
    size_t rlen = slash ? (size_t)(slash - e) : n;
    if (slash && memchr(slash + 1, '/', n - rlen - 1)) {
        if (err)
            buf_printf(err, "too many slashes: %.*s", (int)n, e);
        return ERR_PARSE;
    }
    unsigned start, end, step = 1;
    uint64_t extra = 0;
    const char *hy = memchr(e, '-', rlen);
    bool single = !hy;
    if ((rlen == 1 && (e[0] == '*' || e[0] == '?'))) {
        start = b->min;
        end = b->max;
        extra = S_STAR;
    } else {
        size_t llen = hy ? (size_t)(hy - e) : rlen;
        if (s_int_or_name(e, llen, b, &start, err) != 0)
            return ERR_PARSE;
        if (!hy) {
            end = start;
        } else {
            const char *h2 = hy + 1;
            size_t hlen = rlen - llen - 1;
            if (memchr(h2, '-', hlen)) {
                if (err)
                    buf_printf(err, "too many hyphens: %.*s", (int)n, e);
                return ERR_PARSE;
            }
            if (s_int_or_name(h2, hlen, b, &end, err) != 0)
                return ERR_PARSE;
        }
    }
    if (slash) {
        if (s_int(slash + 1, n - rlen - 1, &step, err) != 0)
            return ERR_PARSE;
        if (single)
            end = b->max;
        if (step > 1)
            extra = 0;
    }
    if (start < b->min) {
        if (err)
            buf_printf(err, "beginning of range (%u) below minimum (%u): %.*s", start, b->min,
                       (int)n, e);
        return ERR_PARSE;
    }
    if (end > b->max) {
        if (err)
            buf_printf(err, "end of range (%u) above maximum (%u): %.*s", end, b->max, (int)n, e);
        return ERR_PARSE;
    }
    if (start > end) {
        if (err)
            buf_printf(err, "beginning of range (%u) beyond end of range (%u): %.*s", start, end,
                       (int)n, e);
        return ERR_PARSE;
    }
    if (step == 0) {
        if (err)
            buf_printf(err, "step of range should be a positive number: %.*s", (int)n, e);
        return ERR_PARSE;
    }
    *out = s_bits(start, end, step) | extra;
    return 0;
}

/* robfig's getField(): the OR of the comma-separated ranges (empty items skipped). */
static int s_field(const char *e, size_t n, const s_bounds_t *b, uint64_t *out, buf_t *err)
{
    uint64_t bits = 0;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && e[j] != ',')
            j++;
        if (j > i) {
            uint64_t r;
            if (s_range(e + i, j - i, b, &r, err) != 0)
                return ERR_PARSE;
            bits |= r;
        }
        i = j + 1;
    }
    *out = bits;
    return 0;
}

/* Go's time.ParseDuration error text for s, which rftime_go_duration_parse() refused: "missing
 * unit", "unknown unit" or "invalid duration" (overflow included). */
static void s_duration_error(const char *s, buf_t *err)
{
    static const char *const units[] = {"ns", "us", "\xc2\xb5s", "\xce\xbcs", "ms",
                                        "s",  "m",  "h",         NULL};
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    while (*p) {
        const char *num = p;
        while ((*p >= '0' && *p <= '9') || *p == '.')
            p++;
        if (p == num || (p - num == 1 && *num == '.'))
            break; /* invalid */
        const char *u = p;
        while (*p && !((*p >= '0' && *p <= '9') || *p == '.'))
            p++;
        if (p == u) {
            buf_printf(err, "time: missing unit in duration \"%s\"", s);
            return;
        }
        bool known = false;
        for (size_t i = 0; units[i] && !known; i++)
            known =
                strlen(units[i]) == (size_t)(p - u) && strncmp(units[i], u, (size_t)(p - u)) == 0;
        if (!known) {
            buf_printf(err, "time: unknown unit \"%.*s\" in duration \"%s\"", (int)(p - u), u, s);
            return;
        }
    }
    buf_printf(err, "time: invalid duration \"%s\"", s);
}

static int s_descriptor(const char *spec, cron_t *c, buf_t *err)
{
    memset(c, 0, sizeof(*c));
    c->minute = 1;
    c->hour = 1;
    c->dom = s_all(CRON_F_DOM);
    c->month = s_all(CRON_F_MONTH);
    c->dow = s_all(CRON_F_DOW);
    if (strcmp(spec, "@yearly") == 0 || strcmp(spec, "@annually") == 0) {
        c->dom = 1ULL << 1;
        c->month = 1ULL << 1;
    } else if (strcmp(spec, "@monthly") == 0) {
        c->dom = 1ULL << 1;
    } else if (strcmp(spec, "@weekly") == 0) {
        c->dow = 1;
    } else if (strcmp(spec, "@daily") == 0 || strcmp(spec, "@midnight") == 0) {
        /* the defaults */
    } else if (strcmp(spec, "@hourly") == 0) {
        c->hour = s_all(CRON_F_HOUR);
    } else if (strncmp(spec, "@every ", 7) == 0) {
        int64_t ns = 0;
        if (rftime_go_duration_parse(spec + 7, &ns) != 0) {
            if (err) {
                buf_printf(err, "failed to parse duration %s: ", spec);
                s_duration_error(spec + 7, err);
            }
            return ERR_PARSE;
        }
        if (ns < RFTIME_NS_PER_S)
            ns = RFTIME_NS_PER_S;
        c->every_s = ns / RFTIME_NS_PER_S;
    } else {
        if (err)
            buf_printf(err, "unrecognized descriptor: %s", spec);
        return ERR_PARSE;
    }
    return 0;
}

int cron_parse(const char *spec, cron_t *out, buf_t *err, cron_field_t *field)
{
    if (field)
        *field = CRON_F_SPEC;
    if (!spec || !out)
        return ERR_INVAL;
    memset(out, 0, sizeof(*out));
    if (!*spec) {
        if (err)
            buf_puts(err, "empty spec string");
        return ERR_PARSE;
    }
    if (spec[0] == '@')
        return s_descriptor(spec, out, err);
    const char *f[5];
    size_t fl[5], nf = 0, total = 0;
    for (const char *p = spec; *p;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        const char *s = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        if (nf < 5) {
            f[nf] = s;
            fl[nf] = (size_t)(p - s);
            nf++;
        }
        total++;
    }
    if (total != 5) {
        if (err) {
            buf_printf(err, "expected exactly 5 fields, found %zu: [", total);
            bool first = true;
            for (const char *p = spec; *p;) {
                while (*p && isspace((unsigned char)*p))
                    p++;
                if (!*p)
                    break;
                const char *s = p;
                while (*p && !isspace((unsigned char)*p))
                    p++;
                buf_printf(err, "%s%.*s", first ? "" : " ", (int)(p - s), s);
                first = false;
            }
            buf_puts(err, "]");
        }
        return ERR_PARSE;
    }
    uint64_t *dst[5] = {&out->minute, &out->hour, &out->dom, &out->month, &out->dow};
    for (int i = 0; i < 5; i++)
        if (s_field(f[i], fl[i], &s_bounds[i], dst[i], err) != 0) {
            if (field)
                *field = (cron_field_t)i;
            memset(out, 0, sizeof(*out));
            return ERR_PARSE;
        }
    return 0;
}

static bool s_day_matches(const cron_t *c, const tz_civil_t *t)
{
    bool dom = (c->dom >> t->day) & 1, dow = (c->dow >> t->wday) & 1;
    if ((c->dom & S_STAR) || (c->dow & S_STAR))
        return dom && dow;
    return dom || dow;
}

bool cron_next(const cron_t *c, const tz_t *z, int64_t after, int64_t *next)
{
    if (c->every_s > 0) {
        *next = after + c->every_s;
        return true;
    }
    int64_t t = after + 1;
    bool added = false;
    tz_civil_t v;
    tz_civil(z, t, &v);
    int limit = v.year + 5;
wrap:
    tz_civil(z, t, &v);
    if (v.year > limit)
        return false;
    while (!((c->month >> v.month) & 1)) {
        if (!added) {
            added = true;
            t = tz_date(z, v.year, v.month, 1, 0, 0, 0);
            tz_civil(z, t, &v);
        }
        t = tz_date(z, v.year, v.month + 1, v.day, v.hour, v.min, v.sec);
        tz_civil(z, t, &v);
        if (v.month == 1)
            goto wrap;
    }
    while (!s_day_matches(c, &v)) {
        if (!added) {
            added = true;
            t = tz_date(z, v.year, v.month, v.day, 0, 0, 0);
            tz_civil(z, t, &v);
        }
        t = tz_date(z, v.year, v.month, v.day + 1, v.hour, v.min, v.sec);
        tz_civil(z, t, &v);
        if (v.hour != 0) {
            t += v.hour > 12 ? (int64_t)(24 - v.hour) * 3600 : -(int64_t)v.hour * 3600;
            tz_civil(z, t, &v);
        }
        if (v.day == 1)
            goto wrap;
    }
    while (!((c->hour >> v.hour) & 1)) {
        if (!added) {
            added = true;
            t = tz_date(z, v.year, v.month, v.day, v.hour, 0, 0);
        }
        t += 3600;
        tz_civil(z, t, &v);
        if (v.hour == 0)
            goto wrap;
    }
    while (!((c->minute >> v.min) & 1)) {
        if (!added) {
            added = true;
            t -= ((t % 60) + 60) % 60;
        }
        t += 60;
        tz_civil(z, t, &v);
        if (v.min == 0)
            goto wrap;
    }
    while (v.sec != 0) {
        added = true;
        t += 1;
        tz_civil(z, t, &v);
        if (v.sec == 0)
            goto wrap;
    }
    *next = t;
    return true;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* Parses spec and returns its next activation after the UTC civil time, in zone `zone`. */
static int64_t s_next(const char *spec, const char *zone, int y, int mo, int d, int h, int mi,
                      int sec)
{
    cron_t c;
    tz_t *z = NULL;
    if (cron_parse(spec, &c, NULL, NULL) != 0 || tz_load(zone, &z, NULL) != 0)
        return -1;
    int64_t after = tz_date(z, y, mo, d, h, mi, sec), n = 0;
    bool ok = cron_next(&c, z, after, &n);
    tz_free(&z);
    return ok ? n : 0;
}

/* The instant of a civil time in zone `zone`. */
static int64_t s_at(const char *zone, int y, int mo, int d, int h, int mi)
{
    tz_t *z = NULL;
    if (tz_load(zone, &z, NULL) != 0)
        return -2;
    int64_t t = tz_date(z, y, mo, d, h, mi, 0);
    tz_free(&z);
    return t;
}

/* True when parsing spec fails with exactly `msg` at field f. */
static bool s_err(const char *spec, const char *msg, cron_field_t f)
{
    buf_t err;
    buf_init(&err, 1024);
    cron_t c;
    cron_field_t got = CRON_F_SPEC;
    bool ok = cron_parse(spec, &c, &err, &got) == ERR_PARSE && err.data &&
              strcmp(err.data, msg) == 0 && got == f;
    if (!ok)
        printf("cron parse %s: got \"%s\" field %d\n", spec, err.data ? err.data : "", (int)got);
    buf_free(&err);
    return ok;
}

int cron_test(bool verbose)
{
    int failed = 0;
    const char *U = "UTC";
    /* robfig's TestNext, 5-field forms */
    CHECK(s_next("0/15 * * * *", U, 2012, 7, 9, 14, 45, 0) == s_at(U, 2012, 7, 9, 15, 0));
    CHECK(s_next("0/15 * * * *", U, 2012, 7, 9, 14, 59, 59) == s_at(U, 2012, 7, 9, 15, 0));
    CHECK(s_next("20-35/15 * * * *", U, 2012, 7, 9, 15, 45, 0) == s_at(U, 2012, 7, 9, 16, 20));
    CHECK(s_next("*/15 * * * *", U, 2012, 7, 9, 23, 46, 0) == s_at(U, 2012, 7, 10, 0, 0));
    CHECK(s_next("20-35/15 * * * *", U, 2012, 7, 9, 23, 45, 0) == s_at(U, 2012, 7, 10, 0, 20));
    CHECK(s_next("20-35/15 1/2 * * *", U, 2012, 7, 9, 23, 35, 51) == s_at(U, 2012, 7, 10, 1, 20));
    CHECK(s_next("20-35/15 1/2 */2 * *", U, 2012, 7, 9, 23, 35, 51) == s_at(U, 2012, 7, 11, 1, 20));
    CHECK(s_next("20-35/15 * 9-20 Jul *", U, 2012, 7, 9, 23, 35, 51) ==
          s_at(U, 2012, 7, 10, 0, 20));
    CHECK(s_next("0 0 9 Apr-Oct ?", U, 2012, 7, 9, 23, 35, 0) == s_at(U, 2012, 8, 9, 0, 0));
    /* v3: a step above 1 drops the star bit, so dom "every 5th" and dow Mon are OR-ed (Aug 1 is dom
     * 1) */
    CHECK(s_next("0 0 */5 Apr,Aug,Oct Mon", U, 2012, 7, 9, 23, 35, 0) == s_at(U, 2012, 8, 1, 0, 0));
    CHECK(s_next("0 0 */1 Aug Mon", U, 2012, 7, 9, 23, 35, 0) == s_at(U, 2012, 8, 6, 0, 0));
    CHECK(s_next("0 0 */5 Oct Mon", U, 2012, 7, 9, 23, 35, 0) == s_at(U, 2012, 10, 1, 0, 0));
    CHECK(s_next("0 0 * Feb Mon", U, 2012, 7, 9, 23, 35, 0) == s_at(U, 2013, 2, 4, 0, 0));
    CHECK(s_next("0 0 * Feb Mon/2", U, 2012, 7, 9, 23, 35, 0) == s_at(U, 2013, 2, 1, 0, 0));
    CHECK(s_next("* * * * *", U, 2012, 12, 31, 23, 59, 45) == s_at(U, 2013, 1, 1, 0, 0));
    CHECK(s_next("0 0 29 Feb ?", U, 2012, 7, 9, 23, 35, 0) == s_at(U, 2016, 2, 29, 0, 0));
    CHECK(s_next("0 0 30 Feb ?", U, 2012, 7, 9, 23, 35, 0) == 0);
    CHECK(s_next("0 0 31 Apr ?", U, 2012, 7, 9, 23, 35, 0) == 0);
    /* strictly after: at a tick, the next one */
    CHECK(s_next("* * * * *", U, 2026, 12, 7, 9, 0, 0) == s_at(U, 2026, 12, 7, 9, 1));
    /* day OR rule; a star in one day field makes it AND */
    CHECK(s_next("0 0 1,15 * Sun", U, 2012, 7, 14, 1, 0, 0) == s_at(U, 2012, 7, 15, 0, 0));
    CHECK(s_next("0 0 1,15 * Sun", U, 2012, 6, 14, 1, 0, 0) == s_at(U, 2012, 6, 15, 0, 0));
    CHECK(s_next("0 0 * * Mon", U, 2012, 7, 14, 1, 0, 0) == s_at(U, 2012, 7, 16, 0, 0));
    /* descriptors */
    CHECK(s_next("@hourly", U, 2012, 7, 9, 15, 4, 0) == s_at(U, 2012, 7, 9, 16, 0));
    CHECK(s_next("@daily", U, 2012, 7, 9, 15, 4, 0) == s_at(U, 2012, 7, 10, 0, 0));
    CHECK(s_next("@midnight", U, 2012, 7, 9, 15, 4, 0) == s_at(U, 2012, 7, 10, 0, 0));
    CHECK(s_next("@weekly", U, 2012, 7, 9, 15, 4, 0) == s_at(U, 2012, 7, 15, 0, 0));
    CHECK(s_next("@monthly", U, 2012, 7, 9, 15, 4, 0) == s_at(U, 2012, 8, 1, 0, 0));
    CHECK(s_next("@yearly", U, 2012, 7, 9, 15, 4, 0) == s_at(U, 2013, 1, 1, 0, 0));
    CHECK(s_next("@annually", U, 2012, 7, 9, 15, 4, 0) == s_at(U, 2013, 1, 1, 0, 0));
    CHECK(s_next("@every 90s", U, 2012, 7, 9, 15, 4, 0) == s_at(U, 2012, 7, 9, 15, 5) + 30);
    CHECK(s_next("@every 10ms", U, 2012, 7, 9, 15, 4, 0) == s_at(U, 2012, 7, 9, 15, 4) + 1);
    /* names in any case, lists with empty items */
    CHECK(s_next("0 12 * jan,DEC sAt", U, 2026, 12, 7, 0, 0, 0) == s_at(U, 2026, 12, 12, 12, 0));
    CHECK(s_next("5,,10 * * * *", U, 2026, 12, 7, 0, 6, 0) == s_at(U, 2026, 12, 7, 0, 10));

    /* errors: robfig's messages and the field */
    CHECK(s_err("", "empty spec string", CRON_F_SPEC));
    CHECK(s_err("* * * *", "expected exactly 5 fields, found 4: [* * * *]", CRON_F_SPEC));
    CHECK(s_err("0 * * * * *", "expected exactly 5 fields, found 6: [0 * * * * *]", CRON_F_SPEC));
    CHECK(s_err("0-60 * * * *", "end of range (60) above maximum (59): 0-60", CRON_F_MINUTE));
    CHECK(s_err("* 24 * * *", "end of range (24) above maximum (23): 24", CRON_F_HOUR));
    CHECK(s_err("* * 0 * *", "beginning of range (0) below minimum (1): 0", CRON_F_DOM));
    CHECK(
        s_err("* * * 5-2 *", "beginning of range (5) beyond end of range (2): 5-2", CRON_F_MONTH));
    CHECK(s_err("* * * * 1/0", "step of range should be a positive number: 1/0", CRON_F_DOW));
    CHECK(s_err("x * * * *",
                "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax",
                CRON_F_MINUTE));
    CHECK(s_err("1-2-3 * * * *", "too many hyphens: 1-2-3", CRON_F_MINUTE));
    CHECK(s_err("*/2/3 * * * *", "too many slashes: */2/3", CRON_F_MINUTE));
    CHECK(s_err("* * * * funday",
                "failed to parse int from funday: strconv.Atoi: parsing \"funday\": invalid "
                "syntax",
                CRON_F_DOW));
    CHECK(s_err("@fortnightly", "unrecognized descriptor: @fortnightly", CRON_F_SPEC));
    CHECK(s_err("@every 5x",
                "failed to parse duration @every 5x: time: unknown unit \"x\" in duration \"5x\"",
                CRON_F_SPEC));
    CHECK(s_err("@every 5",
                "failed to parse duration @every 5: time: missing unit in duration \"5\"",
                CRON_F_SPEC));
    CHECK(s_err("@every x", "failed to parse duration @every x: time: invalid duration \"x\"",
                CRON_F_SPEC));
    CHECK(strcmp(cron_field_name(CRON_F_DOM), "day of month") == 0);

    /* the time-zone sample: 45 21 * * * in Asia/Taipei is 13:45 UTC */
    CHECK(s_next("45 21 * * *", "Asia/Taipei", 2026, 12, 7, 0, 0, 0) ==
          s_at(U, 2026, 12, 7, 13, 45));
    CHECK(s_next("45 21 * * *", "Asia/Taipei", 2026, 12, 7, 21, 45, 0) ==
          s_at(U, 2026, 12, 8, 13, 45));
    /* America/New_York, spring forward 2026-03-08: 02:30 does not exist that day */
    const char *NY = "America/New_York";
    CHECK(s_next("30 2 * * *", NY, 2026, 3, 7, 2, 30, 0) == s_at(NY, 2026, 3, 9, 2, 30));
    CHECK(s_next("0 * * * *", NY, 2026, 3, 8, 1, 0, 0) == s_at(U, 2026, 3, 8, 7, 0)); /* 03:00 */
    CHECK(s_next("30 3 * * *", NY, 2026, 3, 7, 3, 30, 0) == s_at(U, 2026, 3, 8, 7, 30));
    /* fall back 2026-11-01: hourly steps through both 01:00s; robfig's "30 1" case */
    CHECK(s_next("0 * * * *", NY, 2026, 11, 1, 0, 0, 0) == s_at(U, 2026, 11, 1, 5, 0));
    CHECK(s_next("0 * * * *", NY, 2026, 11, 1, 1, 0, 0) == s_at(U, 2026, 11, 1, 6, 0));
    {
        cron_t c;
        tz_t *z = NULL;
        CHECK(cron_parse("30 1 1 11 *", &c, NULL, NULL) == 0 && tz_load(NY, &z, NULL) == 0);
        int64_t n = 0;
        /* after 01:45 EDT (05:45 UTC) robfig's answer is 01:30 EST (06:30 UTC) */
        CHECK(z && cron_next(&c, z, s_at(U, 2026, 11, 1, 5, 45), &n) &&
              n == s_at(U, 2026, 11, 1, 6, 30));
        /* a daily 02:30 job fires once on the fall-back day (02:30 EST) */
        CHECK(z && cron_parse("30 2 * * *", &c, NULL, NULL) == 0 &&
              cron_next(&c, z, s_at(U, 2026, 10, 31, 6, 30), &n) &&
              n == s_at(U, 2026, 11, 1, 7, 30));
        CHECK(z && cron_next(&c, z, n, &n) && n == s_at(U, 2026, 11, 2, 7, 30));
        tz_free(&z);
    }
    return SELFTEST_RESULT("cron", verbose);
}
#endif
