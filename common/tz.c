/*
 * tz: IANA time zones as Go's time package applies them (see tz.h).
 */
#include "tz.h"

#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_DAY 86400
#define S_ALPHA INT64_MIN /* start of a zone period without a known start */
#define S_OMEGA INT64_MAX /* end of a zone period without a known end */

/* One local time type of a zone file. */
typedef struct {
    int32_t off; /* seconds east of UTC */
    bool dst; /* daylight saving time */
} s_type_t;

/* A rule date of a POSIX TZ string. */
typedef struct {
    char kind; /* 'J' (Julian 1..365, no Feb 29), 'D' (day of year 0..365), 'M' (month.week.day) */
    int day, week, mon; /* the date */
    int32_t time; /* local seconds after midnight (may be negative or past 24 h) */
} s_rule_t;

/* The POSIX TZ footer of a zone file. */
typedef struct {
    bool ok; /* parsed */
    bool has_dst; /* a DST part */
    int32_t std_off, dst_off; /* seconds east of UTC */
    s_rule_t start, end; /* DST start and end */
} s_posix_t;

struct tz {
    char name[TZ_NAME_MAX + 1]; /* as loaded */
    int64_t *tx; /* transition instants, ascending */
    uint8_t *tx_type; /* type of each transition */
    size_t ntx; /* transitions */
    s_type_t *types; /* local time types */
    size_t ntypes; /* types; 0: UTC */
    s_posix_t ext; /* the footer rule */
    bool is_static; /* the UTC singleton */
};

static tz_t s_utc = {.name = "UTC", .is_static = true};

const tz_t *tz_utc(void)
{
    return &s_utc;
}

int64_t tz_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The civil date of day `z` since 1970-01-01. */
static void s_civil_from_days(int64_t z, int *year, int *month, int *day)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1);
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = (int)(y + (m <= 2));
    *month = m;
    *day = d;
}

static bool s_leap(int64_t y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int64_t s_floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ---------- POSIX TZ strings ---------- */

/* Skips a zone abbreviation ("EST" or "<+08>"); NULL when malformed. */
static const char *s_px_name(const char *s)
{
    if (*s == '<') {
        const char *e = strchr(s, '>');
        return e && e > s + 1 ? e + 1 : NULL;
    }
    const char *p = s;
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
        p++;
    return p - s >= 3 ? p : NULL;
}

/* Parses [+-]hh[:mm[:ss]] into seconds (hours up to 167); NULL when malformed. */
static const char *s_px_time(const char *s, int32_t *out)
{
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    int32_t parts[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*s != ':')
                break;
            s++;
        }
        if (*s < '0' || *s > '9')
            return NULL;
        int32_t v = 0;
        while (*s >= '0' && *s <= '9' && v < 1000)
            v = v * 10 + (*s++ - '0');
        parts[i] = v;
    }
    if (parts[0] > 167 || parts[1] > 59 || parts[2] > 59)
        return NULL;
    *out = sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]);
    return s;
}

static const char *s_px_int(const char *s, int *out, int lo, int hi)
{
    if (*s < '0' || *s > '9')
        return NULL;
    int v = 0;
    while (*s >= '0' && *s <= '9' && v < 100000)
        v = v * 10 + (*s++ - '0');
    if (v < lo || v > hi)
        return NULL;
    *out = v;
    return s;
}

/* Parses ",rule[/time]"; NULL when malformed. */
static const char *s_px_rule(const char *s, s_rule_t *r)
{
    if (*s != ',')
        return NULL;
    s++;
    memset(r, 0, sizeof(*r));
    if (*s == 'J') {
        r->kind = 'J';
        s = s_px_int(s + 1, &r->day, 1, 365);
    } else if (*s == 'M') {
        r->kind = 'M';
        s = s_px_int(s + 1, &r->mon, 1, 12);
        if (s && *s == '.')
            s = s_px_int(s + 1, &r->week, 1, 5);
        else
            s = NULL;
        if (s && *s == '.')
            s = s_px_int(s + 1, &r->day, 0, 6);
        else
            s = NULL;
    } else {
        r->kind = 'D';
        s = s_px_int(s, &r->day, 0, 365);
    }
    if (!s)
        return NULL;
    r->time = 2 * 3600;
    if (*s == '/')
        s = s_px_time(s + 1, &r->time);
    return s;
}

/* Parses a POSIX TZ string as Go's tzset does (offsets are west-positive there). */
static void s_px_parse(const char *s, s_posix_t *px)
{
    memset(px, 0, sizeof(*px));
    int32_t off = 0;
    if (!(s = s_px_name(s)) || !(s = s_px_time(s, &off)))
        return;
    px->std_off = -off;
    if (*s == '\0' || *s == ',') {
        px->ok = true;
        return;
    }
    if (!(s = s_px_name(s)))
        return;
    px->dst_off = px->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if (!(s = s_px_time(s, &off)))
            return;
        px->dst_off = -off;
    }
    if (*s == '\0')
        s = ",M3.2.0,M11.1.0"; /* Go's default rule */
    if (!(s = s_px_rule(s, &px->start)) || !(s = s_px_rule(s, &px->end)) || *s != '\0')
        return;
    px->has_dst = true;
    px->ok = true;
}

/* Seconds from the start of `year` (UTC) to the rule's instant, local time at offset `off`. */
static int64_t s_rule_time(int year, const s_rule_t *r, int32_t off)
{
    int64_t d;
    if (r->kind == 'J') {
        d = r->day - 1;
        if (s_leap(year) && r->day >= 60)
            d++;
    } else if (r->kind == 'D') {
        d = r->day;
    } else {
        int64_t first = tz_days_from_civil(year, r->mon, 1);
        int dow = (int)(((first % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
        static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int dim = mdays[r->mon - 1] + (r->mon == 2 && s_leap(year));
        int dd = r->day - dow;
        if (dd < 0)
            dd += 7;
        for (int i = 1; i < r->week; i++) {
            if (dd + 7 >= dim)
                break;
            dd += 7;
        }
        d = first + dd - tz_days_from_civil(year, 1, 1);
    }
    return d * S_DAY + r->time - off;
}

/* Go's tzset(): the offset at `t` by the footer rule, and the period around it. */
static int32_t s_px_lookup(const s_posix_t *px, int64_t last_tx, int64_t t, int64_t *start,
                           int64_t *end)
{
    if (!px->has_dst) {
        *start = last_tx;
        *end = S_OMEGA;
        return px->std_off;
    }
    int year, mon, day;
    s_civil_from_days(s_floordiv(t, S_DAY), &year, &mon, &day);
    int64_t abs = tz_days_from_civil(year, 1, 1) * S_DAY;
    int64_t ysec = t - abs;
    int64_t ss = s_rule_time(year, &px->start, px->std_off);
    int64_t es = s_rule_time(year, &px->end, px->dst_off);
    int32_t std = px->std_off, dst = px->dst_off;
    if (es < ss) {
        int64_t x = ss;
        ss = es;
        es = x;
        int32_t o = std;
        std = dst;
        dst = o;
    }
    if (ysec < ss) {
        *start = abs;
        *end = ss + abs;
        return std;
    }
    if (ysec >= es) {
        *start = es + abs;
        *end = abs + 365 * S_DAY;
        return std;
    }
    *start = ss + abs;
    *end = es + abs;
    return dst;
}

/* Go's Location.lookup(): the offset at `t` and the zone period [start, end) around it. */
static int32_t s_lookup(const tz_t *z, int64_t t, int64_t *start, int64_t *end)
{
    *start = S_ALPHA;
    *end = S_OMEGA;
    if (z->ntypes == 0)
        return 0;
    if (z->ntx == 0 || t < z->tx[0]) {
        size_t first = 0;
        while (first < z->ntypes && z->types[first].dst)
            first++;
        if (first == z->ntypes)
            first = 0;
        if (z->ntx > 0)
            *end = z->tx[0];
        else if (z->ext.ok)
            return s_px_lookup(&z->ext, S_ALPHA, t, start, end);
        return z->types[first].off;
    }
    size_t lo = 0, hi = z->ntx;
    while (hi - lo > 1) {
        size_t m = (lo + hi) / 2;
        if (t < z->tx[m]) {
            *end = z->tx[m];
            hi = m;
        } else {
            lo = m;
        }
    }
    *start = z->tx[lo];
    if (lo == z->ntx - 1 && z->ext.ok)
        return s_px_lookup(&z->ext, *start, t, start, end);
    return z->types[z->tx_type[lo]].off;
}

int32_t tz_offset(const tz_t *z, int64_t t)
{
    int64_t s, e;
    return s_lookup(z, t, &s, &e);
}

void tz_civil(const tz_t *z, int64_t t, tz_civil_t *out)
{
    int32_t off = tz_offset(z, t);
    int64_t l = t + off;
    int64_t days = s_floordiv(l, S_DAY);
    int64_t secs = l - days * S_DAY;
    s_civil_from_days(days, &out->year, &out->month, &out->day);
    out->hour = (int)(secs / 3600);
    out->min = (int)(secs / 60 % 60);
    out->sec = (int)(secs % 60);
    out->wday = (int)(((days % 7) + 7 + 4) % 7);
    out->offset = off;
}

int64_t tz_date(const tz_t *z, int year, int month, int day, int hour, int min, int sec)
{
    /* normalise the month into the year (the rest is plain arithmetic on seconds) */
    int64_t m0 = (int64_t)month - 1;
    int64_t y = year + s_floordiv(m0, 12);
    m0 -= s_floordiv(m0, 12) * 12;
    int64_t local = (tz_days_from_civil(y, (int)m0 + 1, 1) + day - 1) * S_DAY +
                    (int64_t)hour * 3600 + (int64_t)min * 60 + sec;
    int64_t start, end;
    int32_t off = s_lookup(z, local, &start, &end);
    if (off != 0) {
        int64_t utc = local - off;
        if (utc < start || utc >= end)
            off = tz_offset(z, utc);
    }
    return local - off;
}

/* ---------- loading ---------- */

const char *tz_name(const tz_t *z)
{
    return z->name;
}

void tz_free(tz_t **z_p)
{
    if (!z_p || !*z_p)
        return;
    tz_t *z = *z_p;
    *z_p = NULL;
    if (z->is_static)
        return;
    free(z->tx);
    free(z->tx_type);
    free(z->types);
    free(z);
}

static int64_t s_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    if (n == 4)
        return (int32_t)(uint32_t)v;
    return (int64_t)v;
}

/* Parses a TZif image into z. Returns 0 or ERR_PARSE. */
static int s_parse_tzif(const unsigned char *d, size_t n, tz_t *z)
{
    if (n < 44 || memcmp(d, "TZif", 4) != 0)
        return ERR_PARSE;
    int ver = d[4] ? d[4] - '0' : 1;
    const unsigned char *p = d;
    size_t left = n;
    int tsize = 4;
    for (int pass = 0; pass < 2; pass++) {
        if (left < 44 || memcmp(p, "TZif", 4) != 0)
            return ERR_PARSE;
        uint64_t isut = (uint32_t)s_be(p + 20, 4), isstd = (uint32_t)s_be(p + 24, 4);
        uint64_t leap = (uint32_t)s_be(p + 28, 4), timecnt = (uint32_t)s_be(p + 32, 4);
        uint64_t typecnt = (uint32_t)s_be(p + 36, 4), charcnt = (uint32_t)s_be(p + 40, 4);
        if (timecnt > 100000 || typecnt == 0 || typecnt > 256 || leap > 100000 ||
            charcnt > 100000 || isut > 256 || isstd > 256)
            return ERR_PARSE;
        uint64_t body = timecnt * (uint64_t)tsize + timecnt + typecnt * 6 + charcnt +
                        leap * (uint64_t)(tsize + 4) + isstd + isut;
        p += 44;
        left -= 44;
        if (body > left)
            return ERR_PARSE;
        if (pass == 0 && ver >= 2) {
            p += body;
            left -= body;
            tsize = 8;
            continue;
        }
        z->tx = calloc(timecnt ? timecnt : 1, sizeof(*z->tx));
        z->tx_type = calloc(timecnt ? timecnt : 1, 1);
        z->types = calloc(typecnt, sizeof(*z->types));
        if (!z->tx || !z->tx_type || !z->types)
            return ERR_NOMEM;
        z->ntx = timecnt;
        z->ntypes = typecnt;
        for (uint64_t i = 0; i < timecnt; i++)
            z->tx[i] = s_be(p + i * (uint64_t)tsize, tsize);
        const unsigned char *q = p + timecnt * (uint64_t)tsize;
        for (uint64_t i = 0; i < timecnt; i++) {
            if (q[i] >= typecnt)
                return ERR_PARSE;
            z->tx_type[i] = q[i];
        }
        q += timecnt;
        for (uint64_t i = 0; i < typecnt; i++) {
            z->types[i].off = (int32_t)s_be(q + i * 6, 4);
            z->types[i].dst = q[i * 6 + 4] != 0;
        }
        p += body;
        left -= body;
        if (tsize == 8 && left >= 2 && p[0] == '\n') {
            const unsigned char *e = memchr(p + 1, '\n', left - 1);
            if (e && e - p - 1 < 128) {
                char footer[128];
                memcpy(footer, p + 1, (size_t)(e - p - 1));
                footer[e - p - 1] = '\0';
                if (footer[0])
                    s_px_parse(footer, &z->ext);
            }
        }
        return 0;
    }
    return ERR_PARSE;
}

/* Reads file `path` (at most TZ_FILE_MAX bytes) into a new z. */
static int s_read(const char *path, const char *name, tz_t **out, buf_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err)
            buf_printf(err, "unknown time zone %s", name);
        return ERR_NOTFOUND;
    }
    unsigned char *d = malloc(TZ_FILE_MAX + 1);
    if (!d) {
        fclose(f);
        return ERR_NOMEM;
    }
    size_t n = fread(d, 1, TZ_FILE_MAX + 1, f);
    fclose(f);
    if (n > TZ_FILE_MAX) {
        free(d);
        if (err)
            buf_printf(err, "time: file %s is too large", path);
        return ERR_TOOBIG;
    }
    tz_t *z = calloc(1, sizeof(*z));
    if (!z) {
        free(d);
        return ERR_NOMEM;
    }
    snprintf(z->name, sizeof(z->name), "%s", name);
    int rc = s_parse_tzif(d, n, z);
    free(d);
    if (rc != 0) {
        tz_free(&z);
        if (err && rc != ERR_NOMEM)
            buf_printf(err, "unknown time zone %s", name);
        return rc == ERR_NOMEM ? ERR_NOMEM : ERR_NOTFOUND;
    }
    *out = z;
    return 0;
}

int tz_load(const char *name, tz_t **out, buf_t *err)
{
    if (!name || !out)
        return ERR_INVAL;
    *out = NULL;
    if (!*name || strcmp(name, "UTC") == 0) {
        *out = &s_utc;
        return 0;
    }
    if (strcmp(name, "Local") == 0) {
        /* Go's initLocal: $TZ unset: /etc/localtime; "": UTC; else the zone it names (a leading
         * ':' dropped, an absolute path read as is); anything unreadable: UTC */
        const char *env = getenv("TZ");
        char path[4096];
        if (!env)
            snprintf(path, sizeof(path), "/etc/localtime");
        else if (*env == ':')
            env++;
        if (env && (!*env || strcmp(env, "UTC") == 0)) {
            *out = &s_utc;
            return 0;
        }
        if (env && env[0] == '/') {
            snprintf(path, sizeof(path), "%s", env);
        } else if (env) {
            const char *dir = getenv("ZONEINFO");
            if (strstr(env, "..") ||
                (size_t)snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : TZ_DIR, env) >=
                    sizeof(path)) {
                *out = &s_utc;
                return 0;
            }
        }
        int rc = s_read(path, "Local", out, NULL);
        if (rc == ERR_NOMEM)
            return rc;
        if (rc != 0)
            *out = &s_utc;
        return 0;
    }
    size_t len = strlen(name);
    if (len > TZ_NAME_MAX || strstr(name, "..") || name[0] == '/' || name[0] == '\\') {
        if (err)
            buf_puts(err, "time: invalid location name");
        return ERR_INVAL;
    }
    const char *dir = getenv("ZONEINFO");
    if (!dir || !*dir)
        dir = TZ_DIR;
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
        if (err)
            buf_puts(err, "time: invalid location name");
        return ERR_INVAL;
    }
    return s_read(path, name, out, err);
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* The instant of a UTC civil time. */
static int64_t s_utc_at(int y, int mo, int d, int h, int mi)
{
    return tz_days_from_civil(y, mo, d) * S_DAY + h * 3600 + mi * 60;
}

int tz_test(bool verbose)
{
    int failed = 0;
    CHECK(tz_days_from_civil(1970, 1, 1) == 0);
    CHECK(tz_days_from_civil(2000, 3, 1) == 11017);
    CHECK(s_utc_at(2026, 12, 7, 9, 0) == 1796634000);
    tz_civil_t c;
    tz_civil(tz_utc(), 1796634000, &c);
    CHECK(c.year == 2026 && c.month == 12 && c.day == 7 && c.hour == 9 && c.wday == 1);
    CHECK(tz_date(tz_utc(), 2026, 13, 1, 0, 0, 0) == s_utc_at(2027, 1, 1, 0, 0));
    CHECK(tz_date(tz_utc(), 2026, 3, 0, 0, 0, 0) == s_utc_at(2026, 2, 28, 0, 0));

    buf_t err;
    buf_init(&err, 512);
    tz_t *z = NULL;
    CHECK(tz_load("", &z, &err) == 0 && z == tz_utc());
    CHECK(tz_load("UTC", &z, &err) == 0 && z == tz_utc());
    /* Local follows $TZ as Go's initLocal does */
    const char *saved = getenv("TZ");
    char keep[256] = "";
    if (saved)
        snprintf(keep, sizeof(keep), "%s", saved);
    setenv("TZ", "Asia/Taipei", 1);
    CHECK(tz_load("Local", &z, &err) == 0 && z && strcmp(tz_name(z), "Local") == 0 &&
          tz_offset(z, 0) == 8 * 3600);
    tz_free(&z);
    setenv("TZ", ":America/New_York", 1);
    CHECK(tz_load("Local", &z, &err) == 0 && z && tz_offset(z, 1796634000) == -5 * 3600);
    tz_free(&z);
    setenv("TZ", "", 1);
    CHECK(tz_load("Local", &z, &err) == 0 && z == tz_utc());
    setenv("TZ", "No/Such", 1);
    CHECK(tz_load("Local", &z, &err) == 0 && z == tz_utc());
    if (saved)
        setenv("TZ", keep, 1);
    else
        unsetenv("TZ");
    CHECK(tz_load("../etc/passwd", &z, &err) == ERR_INVAL && !z);
    CHECK(err.data && strcmp(err.data, "time: invalid location name") == 0);
    buf_reset(&err);
    CHECK(tz_load("/etc/passwd", &z, &err) == ERR_INVAL);
    buf_reset(&err);
    CHECK(tz_load("Mars/Olympus", &z, &err) == ERR_NOTFOUND && !z);
    CHECK(err.data && strcmp(err.data, "unknown time zone Mars/Olympus") == 0);
    buf_reset(&err);

    /* Asia/Taipei: +08:00 without DST */
    CHECK(tz_load("Asia/Taipei", &z, &err) == 0 && z);
    if (z) {
        CHECK(strcmp(tz_name(z), "Asia/Taipei") == 0);
        CHECK(tz_offset(z, s_utc_at(2026, 12, 7, 0, 0)) == 8 * 3600);
        CHECK(tz_date(z, 2026, 12, 7, 21, 45, 0) == s_utc_at(2026, 12, 7, 13, 45));
        tz_free(&z);
    }
    /* America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST */
    CHECK(tz_load("America/New_York", &z, &err) == 0 && z);
    if (z) {
        CHECK(tz_offset(z, s_utc_at(2026, 3, 8, 6, 59)) == -5 * 3600);
        CHECK(tz_offset(z, s_utc_at(2026, 3, 8, 7, 0)) == -4 * 3600);
        CHECK(tz_offset(z, s_utc_at(2026, 11, 1, 5, 59)) == -4 * 3600);
        CHECK(tz_offset(z, s_utc_at(2026, 11, 1, 6, 0)) == -5 * 3600);
        /* far past the last transition of a slim file: the footer rule */
        CHECK(tz_offset(z, s_utc_at(2090, 7, 1, 0, 0)) == -4 * 3600);
        CHECK(tz_offset(z, s_utc_at(2090, 1, 1, 0, 0)) == -5 * 3600);
        /* a time in the gap takes the offset after it, as Go's time.Date (02:30 -> 01:30 EST) */
        CHECK(tz_date(z, 2026, 3, 8, 2, 30, 0) == s_utc_at(2026, 3, 8, 6, 30));
        /* a time in the overlap is the first one (EDT) */
        CHECK(tz_date(z, 2026, 11, 1, 1, 30, 0) == s_utc_at(2026, 11, 1, 5, 30));
        tz_civil(z, s_utc_at(2026, 11, 1, 6, 30), &c);
        CHECK(c.hour == 1 && c.min == 30 && c.offset == -5 * 3600);
        tz_free(&z);
    }
    /* Australia/Sydney: southern rule (DST ends first in the year) */
    CHECK(tz_load("Australia/Sydney", &z, &err) == 0 && z);
    if (z) {
        CHECK(tz_offset(z, s_utc_at(2026, 1, 15, 0, 0)) == 11 * 3600);
        CHECK(tz_offset(z, s_utc_at(2026, 6, 15, 0, 0)) == 10 * 3600);
        CHECK(tz_offset(z, s_utc_at(2095, 1, 15, 0, 0)) == 11 * 3600);
        CHECK(tz_offset(z, s_utc_at(2095, 6, 15, 0, 0)) == 10 * 3600);
        tz_free(&z);
    }
    /* the footer parser alone */
    s_posix_t px;
    s_px_parse("<+0330>-3:30", &px);
    CHECK(px.ok && !px.has_dst && px.std_off == 3 * 3600 + 1800);
    s_px_parse("EST5EDT,M3.2.0,M11.1.0", &px);
    CHECK(px.ok && px.has_dst && px.std_off == -5 * 3600 && px.dst_off == -4 * 3600);
    s_px_parse("IST-2IDT,M3.4.4/26,M10.5.0", &px);
    CHECK(px.ok && px.start.time == 26 * 3600);
    s_px_parse("EST", &px);
    CHECK(!px.ok);
    buf_free(&err);
    return SELFTEST_RESULT("tz", verbose);
}
#endif
