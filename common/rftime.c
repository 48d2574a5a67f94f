/*
 * rftime: RFC 3339 times and Go durations (see rftime.h).
 */
#include "rftime.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "err.h"

#define S_MS_PER_S 1000LL
#define S_S_PER_DAY 86400LL
#define S_YEAR_MAX 9999 /* the last year RFC 3339 can write */
#define S_MS_PER_UNIT_H 3600000LL
#define S_MS_PER_UNIT_M 60000LL

/* ---- the calendar (proleptic Gregorian, H. Hinnant's days_from_civil and its inverse) ---- */

static int64_t s_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void s_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int s_days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* Floor division and its remainder (>= 0) for a positive divisor. */
static int64_t s_floordiv(int64_t a, int64_t b)
{
    return a / b - (a % b < 0);
}

/* ---- parse ---- */

/* Reads exactly n digits at s into *out. Returns 0 or ERR_PARSE. */
static int s_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return ERR_PARSE;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int rftime_parse(const char *s, int64_t *wall_ms)
{
    if (!s || !wall_ms)
        return ERR_INVAL;
    /* YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm); the digit checks stop at a short string's
     * NUL before reading past it. */
    int y, mo, d, h, mi, se;
    if (s_digits(s, 4, &y) || s[4] != '-' || s_digits(s + 5, 2, &mo) || s[7] != '-' ||
        s_digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || s_digits(s + 11, 2, &h) ||
        s[13] != ':' || s_digits(s + 14, 2, &mi) || s[16] != ':' || s_digits(s + 17, 2, &se))
        return ERR_PARSE;
    const char *p = s + 19;
    int64_t ms = 0;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return ERR_PARSE;
        for (int64_t scale = 100; *p >= '0' && *p <= '9'; p++, scale /= 10)
            ms += (*p - '0') * scale;
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (s_digits(p + 1, 2, &oh) || p[3] != ':' || s_digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return ERR_PARSE;
        off = (oh * 60LL + om) * 60 * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return ERR_PARSE;
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > s_days_in_month(y, mo) || h > 23 || mi > 59 ||
        se > 60)
        return ERR_PARSE;
    int64_t sec = s_days_from_civil(y, mo, d) * S_S_PER_DAY + h * 3600LL + mi * 60LL + se - off;
    *wall_ms = sec * S_MS_PER_S + ms;
    return 0;
}

int rftime_parse_sec(const char *s, int64_t *sec)
{
    int64_t ms;
    if (!sec)
        return ERR_INVAL;
    int rc = rftime_parse(s, &ms);
    if (rc == 0)
        *sec = s_floordiv(ms, S_MS_PER_S);
    return rc;
}

/* ---- format ---- */

int rftime_format(int64_t wall_ms, rftime_prec_t prec, char *out, size_t size)
{
    if (!out)
        return ERR_INVAL;
    size_t need = prec == RFTIME_SEC     ? RFTIME_SEC_LEN
                  : prec == RFTIME_MILLI ? RFTIME_MILLI_LEN
                                         : RFTIME_MICRO_LEN;
    if (size > 0)
        out[0] = '\0';
    if (size <= need)
        return ERR_TOOBIG;
    int64_t sec = s_floordiv(wall_ms, S_MS_PER_S);
    int ms = (int)(wall_ms - sec * S_MS_PER_S);
    int64_t days = s_floordiv(sec, S_S_PER_DAY);
    int64_t rest = sec - days * S_S_PER_DAY;
    int64_t y;
    int m, d;
    s_civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > S_YEAR_MAX)
        return ERR_INVAL;
    int n = snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d", (int)y, m, d, (int)(rest / 3600),
                     (int)(rest / 60 % 60), (int)(rest % 60));
    if (prec == RFTIME_MILLI)
        n += snprintf(out + n, size - (size_t)n, ".%03d", ms);
    else if (prec == RFTIME_MICRO)
        n += snprintf(out + n, size - (size_t)n, ".%03d000", ms);
    snprintf(out + n, size - (size_t)n, "Z");
    return 0;
}

int64_t rftime_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * S_MS_PER_S * 1000 + ts.tv_nsec / 1000;
}

int64_t rftime_now_ms(void)
{
    return rftime_now_us() / 1000;
}

int rftime_now(rftime_prec_t prec, char *out, size_t size)
{
    return rftime_format(rftime_now_ms(), prec, out, size);
}

/* ---- Go durations ---- */

/* Go's fmtFrac: writes the prec low digits of v as a fraction, trailing zeros (and then the
 * point) omitted, backwards before buf[w]; returns the new w, and v without those digits. */
static int s_frac(char *buf, int w, uint64_t *v, int prec)
{
    bool print = false;
    for (int i = 0; i < prec; i++) {
        int digit = (int)(*v % 10);
        print = print || digit != 0;
        if (print)
            buf[--w] = (char)('0' + digit);
        *v /= 10;
    }
    if (print)
        buf[--w] = '.';
    return w;
}

/* Go's fmtInt: writes v in decimal backwards before buf[w]; returns the new w. */
static int s_int(char *buf, int w, uint64_t v)
{
    if (v == 0) {
        buf[--w] = '0';
        return w;
    }
    for (; v > 0; v /= 10)
        buf[--w] = (char)('0' + v % 10);
    return w;
}

int rftime_duration_format(int64_t ns, char *out, size_t size)
{
    if (!out)
        return ERR_INVAL;
    char buf[RFTIME_DURATION_BUF];
    int w = (int)sizeof(buf);
    bool neg = ns < 0;
    uint64_t u = neg ? 0 - (uint64_t)ns : (uint64_t)ns;
    if (u < (uint64_t)RFTIME_NS_PER_S) {
        int prec;
        buf[--w] = 's';
        if (u == 0) {
            buf[--w] = '0';
            goto done;
        } else if (u < 1000) {
            prec = 0;
            buf[--w] = 'n';
        } else if (u < (uint64_t)RFTIME_NS_PER_MS) {
            prec = 3;
            buf[--w] = (char)0xb5; /* U+00B5 micro sign in UTF-8 */
            buf[--w] = (char)0xc2;
        } else {
            prec = 6;
            buf[--w] = 'm';
        }
        w = s_frac(buf, w, &u, prec);
        w = s_int(buf, w, u);
    } else {
        buf[--w] = 's';
        w = s_frac(buf, w, &u, 9);
        w = s_int(buf, w, u % 60);
        u /= 60;
        if (u > 0) {
            buf[--w] = 'm';
            w = s_int(buf, w, u % 60);
            u /= 60;
            if (u > 0) {
                buf[--w] = 'h';
                w = s_int(buf, w, u);
            }
        }
    }
done:
    if (neg)
        buf[--w] = '-';
    size_t n = sizeof(buf) - (size_t)w;
    if (size <= n) {
        if (size > 0)
            out[0] = '\0';
        return ERR_TOOBIG;
    }
    memcpy(out, buf + w, n);
    out[n] = '\0';
    return 0;
}

int rftime_duration_parse(const char *s, int64_t *ms)
{
    if (!s || !ms)
        return ERR_INVAL;
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    if (!*s)
        return ERR_PARSE;
    int64_t total = 0;
    const char *p = s;
    while (*p) {
        if (*p < '0' || *p > '9')
            return ERR_PARSE;
        int64_t n = 0;
        while (*p >= '0' && *p <= '9') {
            if (n > (INT64_MAX - 9) / 10)
                return ERR_PARSE;
            n = n * 10 + (*p++ - '0');
        }
        int64_t unit;
        if (strncmp(p, "ms", 2) == 0) {
            unit = 1;
            p += 2;
        } else if (*p == 's') {
            unit = S_MS_PER_S;
            p++;
        } else if (*p == 'm') {
            unit = S_MS_PER_UNIT_M;
            p++;
        } else if (*p == 'h') {
            unit = S_MS_PER_UNIT_H;
            p++;
        } else {
            return ERR_PARSE;
        }
        if (n > (INT64_MAX - total) / unit)
            return ERR_PARSE;
        total += n * unit;
    }
    *ms = total;
    return 0;
}

/* The nanoseconds of a Go duration unit of `n` bytes at p, or 0 when it is not one. */
static uint64_t s_go_unit(const char *p, size_t n)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"ns", 1},           {"us", 1000},         {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
        {"\xce\xbcs", 1000}, /* U+03BC Greek small letter mu */
        {"ms", 1000000},     {"s", 1000000000ULL}, {"m", 60000000000ULL}, {"h", 3600000000000ULL}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strlen(units[i].name) == n && memcmp(units[i].name, p, n) == 0)
            return units[i].ns;
    return 0;
}

int rftime_go_duration_parse(const char *s, int64_t *ns)
{
    if (!s || !ns)
        return ERR_INVAL;
    const uint64_t lim = 1ULL << 63; /* the largest magnitude (of a negative duration) */
    const char *p = s;
    bool neg = false;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (strcmp(p, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (!*p)
        return ERR_PARSE;
    uint64_t d = 0;
    while (*p) {
        if (!(*p == '.' || (*p >= '0' && *p <= '9')))
            return ERR_PARSE;
        /* leadingInt */
        const char *start = p;
        uint64_t v = 0;
        while (*p >= '0' && *p <= '9') {
            if (v > lim / 10)
                return ERR_PARSE;
            v = v * 10 + (uint64_t)(*p++ - '0');
            if (v > lim)
                return ERR_PARSE;
        }
        bool pre = p != start;
        /* leadingFraction: digits past what fits are consumed and dropped */
        uint64_t f = 0;
        double scale = 1;
        bool post = false;
        if (*p == '.') {
            p++;
            const char *fs = p;
            bool overflow = false;
            while (*p >= '0' && *p <= '9') {
                if (!overflow) {
                    if (f > (UINT64_MAX >> 1) / 10) {
                        overflow = true;
                    } else {
                        uint64_t y = f * 10 + (uint64_t)(*p - '0');
                        if (y > lim)
                            overflow = true;
                        else {
                            f = y;
                            scale *= 10;
                        }
                    }
                }
                p++;
            }
            post = p != fs;
        }
        if (!pre && !post)
            return ERR_PARSE;
        const char *us = p;
        while (*p && *p != '.' && !(*p >= '0' && *p <= '9'))
            p++;
        if (p == us)
            return ERR_PARSE; /* missing unit */
        uint64_t unit = s_go_unit(us, (size_t)(p - us));
        if (!unit)
            return ERR_PARSE; /* unknown unit */
        if (v > lim / unit)
            return ERR_PARSE;
        v *= unit;
        if (f > 0) {
            v += (uint64_t)((double)f * ((double)unit / scale));
            if (v > lim)
                return ERR_PARSE;
        }
        d += v;
        if (d > lim)
            return ERR_PARSE;
    }
    if (neg) {
        *ns = d == lim ? INT64_MIN : -(int64_t)d;
        return 0;
    }
    if (d > lim - 1)
        return ERR_PARSE;
    *ns = (int64_t)d;
    return 0;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test ---- */

static bool s_fmt_is(int64_t ms, rftime_prec_t prec, const char *want)
{
    char b[RFTIME_BUF];
    return rftime_format(ms, prec, b, sizeof(b)) == 0 && strcmp(b, want) == 0;
}

static bool s_dur_is(int64_t ns, const char *want)
{
    char b[RFTIME_DURATION_BUF];
    return rftime_duration_format(ns, b, sizeof(b)) == 0 && strcmp(b, want) == 0;
}

int rftime_test(bool verbose)
{
    int failed = 0;
    int64_t t = 0;

    // RFC 3339: Z, lower case, fractions of any length, offsets both ways.
    CHECK(rftime_parse("1970-01-01T00:00:00Z", &t) == 0 && t == 0);
    CHECK(rftime_parse("1970-01-01T00:01:00Z", &t) == 0 && t == 60000);
    CHECK(rftime_parse("1970-01-01t00:00:01.5z", &t) == 0 && t == 1500);
    CHECK(rftime_parse("2025-01-31T12:00:05.123456789Z", &t) == 0 && t == 1738324805123LL);
    CHECK(rftime_parse("1970-01-01T01:00:00.5+01:00", &t) == 0 && t == 500);
    CHECK(rftime_parse("1969-12-31T19:00:00-05:00", &t) == 0 && t == 0);
    CHECK(rftime_parse("2024-02-29T23:59:59Z", &t) == 0 && t == 1709251199000LL);
    CHECK(rftime_parse("2016-12-31T23:59:60Z", &t) == 0 && t == 1483228800000LL);
    CHECK(rftime_parse("1969-12-31T23:59:59.9Z", &t) == 0 && t == -100);
    CHECK(rftime_parse("0000-01-01T00:00:00Z", &t) == 0 && t == -62167219200000LL);
    CHECK(rftime_parse("9999-12-31T23:59:59Z", &t) == 0 && t == 253402300799000LL);
    // Bad input leaves *out alone.
    t = 42;
    const char *bad[] = {"",
                         "nope",
                         "1970-01-01 00:01:00",
                         "1970-01-01T00:01:00",
                         "1970-01-01T00:01:00ZZ",
                         "1970-01-01T00:01:00.Z",
                         "1970-01-01T00:01Z",
                         "1970-1-01T00:01:00Z",
                         "1970-13-01T00:00:00Z",
                         "1970-00-01T00:00:00Z",
                         "1970-01-00T00:00:00Z",
                         "1970-04-31T00:00:00Z",
                         "2023-02-29T00:00:00Z",
                         "1900-02-29T00:00:00Z",
                         "1970-01-01T24:00:00Z",
                         "1970-01-01T00:60:00Z",
                         "1970-01-01T00:00:61Z",
                         "1970-01-01T00:00:00+24:00",
                         "1970-01-01T00:00:00+01:60",
                         "1970-01-01T00:00:00+0100",
                         "1970-01-01T00:00:00+01:0",
                         "+970-01-01T00:00:00Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (rftime_parse(bad[i], &t) != ERR_PARSE || t != 42) {
            printf("rftime: accepted bad time '%s'\n", bad[i]);
            failed++;
        }
    }
    CHECK(rftime_parse(NULL, &t) == ERR_INVAL && rftime_parse("x", NULL) == ERR_INVAL);
    // Go's reference time as Kubernetes MicroTime (the Lease's renewTime); from lease.c's test.
    char ts[RFTIME_MICRO_LEN + 1];
    CHECK(rftime_format(1136214245123, RFTIME_MICRO, ts, sizeof(ts)) == 0 &&
          !strcmp(ts, "2006-01-02T15:04:05.123000Z"));
    CHECK(rftime_format(1, RFTIME_MICRO, ts, 5) == ERR_TOOBIG);
    CHECK(rftime_parse("2006-01-02T15:04:05.123456Z", &t) == 0 && t == 1136214245123);
    CHECK(rftime_parse("2006-01-02T15:04:05Z", &t) == 0 && t == 1136214245000);
    CHECK(rftime_parse("2006-01-02T16:04:05.5+01:00", &t) == 0 && t == 1136214245500);
    CHECK(rftime_parse("2006-01-02 15:04:05Z", &t) == ERR_PARSE);
    CHECK(rftime_parse("2006-01-02T15:04:05.Z", &t) == ERR_PARSE);
    CHECK(rftime_parse("2006-13-02T15:04:05Z", &t) == ERR_PARSE);
    // Seconds, as the exec credential's expirationTimestamp is read; from kubeconfig.c's test.
    CHECK(rftime_parse_sec("1970-01-01T00:01:00Z", &t) == 0 && t == 60);
    CHECK(rftime_parse_sec("1970-01-01T01:00:00.5+01:00", &t) == 0 && t == 0);
    CHECK(rftime_parse_sec("1970-01-01 00:01:00", &t) == ERR_PARSE);
    CHECK(rftime_parse_sec("nope", &t) == ERR_PARSE);
    CHECK(rftime_parse_sec("1970-01-01T00:01:00.999Z", &t) == 0 && t == 60);
    CHECK(rftime_parse_sec("1969-12-31T23:59:59.5Z", &t) == 0 && t == -1);
    CHECK(rftime_parse_sec("x", &t) == ERR_PARSE && rftime_parse_sec("x", NULL) == ERR_INVAL);

    // The three precisions, negative times, bounds, round trips.
    CHECK(s_fmt_is(0, RFTIME_SEC, "1970-01-01T00:00:00Z"));
    CHECK(s_fmt_is(1738324805123LL, RFTIME_SEC, "2025-01-31T12:00:05Z"));
    CHECK(s_fmt_is(1738324805123LL, RFTIME_MILLI, "2025-01-31T12:00:05.123Z"));
    CHECK(s_fmt_is(1738324805123LL, RFTIME_MICRO, "2025-01-31T12:00:05.123000Z"));
    CHECK(s_fmt_is(-1, RFTIME_MILLI, "1969-12-31T23:59:59.999Z"));
    CHECK(s_fmt_is(-1, RFTIME_SEC, "1969-12-31T23:59:59Z"));
    CHECK(s_fmt_is(1709251199000LL, RFTIME_SEC, "2024-02-29T23:59:59Z"));
    CHECK(s_fmt_is(253402300799999LL, RFTIME_MICRO, "9999-12-31T23:59:59.999000Z"));
    CHECK(s_fmt_is(-62167219200000LL, RFTIME_SEC, "0000-01-01T00:00:00Z"));
    char b[RFTIME_BUF];
    CHECK(rftime_format(253402300800000LL, RFTIME_SEC, b, sizeof(b)) == ERR_INVAL);
    CHECK(rftime_format(-62167219200001LL, RFTIME_SEC, b, sizeof(b)) == ERR_INVAL);
    CHECK(rftime_format(0, RFTIME_SEC, b, RFTIME_SEC_LEN) == ERR_TOOBIG && b[0] == '\0');
    CHECK(rftime_format(0, RFTIME_SEC, b, RFTIME_SEC_LEN + 1) == 0 && strlen(b) == RFTIME_SEC_LEN);
    CHECK(rftime_format(0, RFTIME_MICRO, b, RFTIME_MICRO_LEN) == ERR_TOOBIG);
    CHECK(rftime_format(0, RFTIME_SEC, NULL, 8) == ERR_INVAL);
    // A time in every day of four centuries (leap rules included) round-trips at ms precision.
    for (int64_t ms = -4LL * 146097 * S_S_PER_DAY * S_MS_PER_S / 2; ms < 146097LL * 86400000LL;
         ms += 86400000LL + 3723004LL) {
        int64_t back = -1;
        if (rftime_format(ms, RFTIME_MILLI, b, sizeof(b)) != 0 || rftime_parse(b, &back) != 0 ||
            back != ms) {
            printf("rftime: %lld does not round-trip (%s)\n", (long long)ms, b);
            failed++;
            break;
        }
    }
    int64_t now = rftime_now_ms();
    CHECK(now > 1700000000000LL);
    int64_t us = rftime_now_us(); /* the same clock, a thousand times finer */
    CHECK(us / 1000 >= now && us / 1000 - now < 60000 && rftime_now_ms() >= us / 1000);
    CHECK(rftime_now(RFTIME_MICRO, b, sizeof(b)) == 0 && strlen(b) == RFTIME_MICRO_LEN &&
          rftime_parse(b, &t) == 0 && t >= now && t - now < 60000);
    CHECK(rftime_format(now, RFTIME_MICRO, ts, sizeof(ts)) == 0 && rftime_parse(ts, &t) == 0 &&
          t == now);
    // The same instant as libc prints it.
    time_t sec = (time_t)(now / 1000);
    struct tm tm;
    char libc[RFTIME_BUF];
    CHECK(gmtime_r(&sec, &tm) && strftime(libc, sizeof(libc), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0 &&
          s_fmt_is(now, RFTIME_SEC, libc));

    // Go's time.Duration.String().
    CHECK(s_dur_is(0, "0s"));
    CHECK(s_dur_is(1, "1ns"));
    CHECK(s_dur_is(1100, "1.1µs"));
    CHECK(s_dur_is(2200 * 1000LL, "2.2ms"));
    CHECK(s_dur_is(300 * RFTIME_NS_PER_MS, "300ms"));
    CHECK(s_dur_is(1500 * RFTIME_NS_PER_MS, "1.5s"));
    CHECK(s_dur_is(45 * RFTIME_NS_PER_S, "45s"));
    CHECK(s_dur_is(300 * RFTIME_NS_PER_S, "5m0s"));
    CHECK(s_dur_is(3661 * RFTIME_NS_PER_S, "1h1m1s"));
    CHECK(s_dur_is(3600 * RFTIME_NS_PER_S, "1h0m0s"));
    CHECK(s_dur_is(3723 * RFTIME_NS_PER_S + 1, "1h2m3.000000001s"));
    CHECK(s_dur_is(-(60 * RFTIME_NS_PER_S + RFTIME_NS_PER_S / 2), "-1m0.5s"));
    CHECK(s_dur_is(INT64_MAX, "2562047h47m16.854775807s"));
    CHECK(s_dur_is(INT64_MIN, "-2562047h47m16.854775808s"));
    char d[4];
    CHECK(rftime_duration_format(1500 * RFTIME_NS_PER_MS, d, sizeof(d)) == ERR_TOOBIG);
    CHECK(rftime_duration_format(0, d, sizeof(d)) == 0 && strcmp(d, "0s") == 0);
    CHECK(rftime_duration_format(0, NULL, 4) == ERR_INVAL);

    // The configuration's duration syntax.
    int64_t ms = -1;
    CHECK(rftime_duration_parse("500ms", &ms) == 0 && ms == 500);
    CHECK(rftime_duration_parse("2s", &ms) == 0 && ms == 2000);
    CHECK(rftime_duration_parse("1m", &ms) == 0 && ms == 60000);
    CHECK(rftime_duration_parse("1h30m", &ms) == 0 && ms == 5400000);
    CHECK(rftime_duration_parse("1h2m3s4ms", &ms) == 0 && ms == 3723004);
    CHECK(rftime_duration_parse("0", &ms) == 0 && ms == 0);
    ms = 7;
    const char *badd[] = {"",
                          "5",
                          "1.5s",
                          "-1s",
                          "+1s",
                          "s",
                          "1d",
                          "1 s",
                          "1sx",
                          "99999999999999999999h",
                          "2562047788015216h"};
    for (size_t i = 0; i < sizeof(badd) / sizeof(badd[0]); i++) {
        if (rftime_duration_parse(badd[i], &ms) != ERR_PARSE || ms != 7) {
            printf("rftime: accepted bad duration '%s'\n", badd[i]);
            failed++;
        }
    }
    CHECK(rftime_duration_parse(NULL, &ms) == ERR_INVAL);

    // Go's time.ParseDuration (its own test table, time/time_test.go parseDurationTests).
    static const struct {
        const char *in;
        int64_t ns;
    } god[] = {{"0", 0},
               {"5s", 5 * RFTIME_NS_PER_S},
               {"30s", 30 * RFTIME_NS_PER_S},
               {"1478s", 1478 * RFTIME_NS_PER_S},
               {"-5s", -5 * RFTIME_NS_PER_S},
               {"+5s", 5 * RFTIME_NS_PER_S},
               {"-0", 0},
               {"+0", 0},
               {"5.0s", 5 * RFTIME_NS_PER_S},
               {"5.6s", 5 * RFTIME_NS_PER_S + 600 * RFTIME_NS_PER_MS},
               {"5.s", 5 * RFTIME_NS_PER_S},
               {".5s", 500 * RFTIME_NS_PER_MS},
               {"1.0s", RFTIME_NS_PER_S},
               {"1.004s", RFTIME_NS_PER_S + 4 * RFTIME_NS_PER_MS},
               {"100.00100s", 100 * RFTIME_NS_PER_S + RFTIME_NS_PER_MS},
               {"10ns", 10},
               {"11us", 11000},
               {"12\xc2\xb5s", 12000},
               {"12\xce\xbcs", 12000},
               {"13ms", 13 * RFTIME_NS_PER_MS},
               {"14s", 14 * RFTIME_NS_PER_S},
               {"15m", 15 * 60 * RFTIME_NS_PER_S},
               {"16h", 16 * 3600 * RFTIME_NS_PER_S},
               {"3h30m", 12600 * RFTIME_NS_PER_S},
               {"10.5s4m", 4 * 60 * RFTIME_NS_PER_S + 10500 * RFTIME_NS_PER_MS},
               {"-2m3.4s", -(2 * 60 * RFTIME_NS_PER_S + 3400 * RFTIME_NS_PER_MS)},
               {"1h2m3s4ms5us6ns", 3723004005006LL},
               {"39h9m14.425s", 140954425 * RFTIME_NS_PER_MS},
               {"52763797000ns", 52763797000LL},
               {"0.3333333333333333333h", 20 * 60 * RFTIME_NS_PER_S},
               {"9007199254740993ns", 9007199254740993LL},
               {"9223372036854775807ns", INT64_MAX},
               {"9223372036854775.807us", INT64_MAX},
               {"9223372036s854ms775us807ns", INT64_MAX},
               {"-9223372036854775808ns", INT64_MIN},
               {"-9223372036854775.808us", INT64_MIN},
               {"0.100000000000000000000h", 6 * 60 * RFTIME_NS_PER_S},
               {"0.830103483285477580700h", 2988372539827LL}};
    for (size_t i = 0; i < sizeof(god) / sizeof(god[0]); i++) {
        int64_t ns = 42;
        if (rftime_go_duration_parse(god[i].in, &ns) != 0 || ns != god[i].ns) {
            printf("rftime: Go duration '%s' gave %lld\n", god[i].in, (long long)ns);
            failed++;
        }
    }
    const char *gobad[] = {"",
                           "3",
                           "-",
                           "s",
                           ".",
                           "-.",
                           ".s",
                           "+.s",
                           "1d",
                           "\x85\x85",
                           "\xff"
                           "ff",
                           "hello \xff world",
                           "9223372036854775808ns",
                           "9223372036854775.808us",
                           "-9223372036854775809ns",
                           "1x",
                           "1.5"};
    for (size_t i = 0; i < sizeof(gobad) / sizeof(gobad[0]); i++) {
        int64_t ns = 42;
        if (rftime_go_duration_parse(gobad[i], &ns) != ERR_PARSE || ns != 42) {
            printf("rftime: accepted bad Go duration '%s'\n", gobad[i]);
            failed++;
        }
    }
    CHECK(rftime_go_duration_parse(NULL, &ms) == ERR_INVAL &&
          rftime_go_duration_parse("1s", NULL) == ERR_INVAL);
    return SELFTEST_RESULT("rftime", verbose);
}

#endif /* RF_SELFTEST */
