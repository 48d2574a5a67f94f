/*
 * rftime: wall-clock time as Kubernetes writes it, and Go durations.
 *
 * - RFC 3339 parsing ("2025-01-31T12:00:05Z", an optional fraction of any length, 'Z' or a
 *   "+hh:mm"/"-hh:mm" offset, 'T'/'Z' in either case) into milliseconds since the Unix epoch,
 *   with every field range-checked (days per month and leap years included; a leap second :60 is
 *   accepted as RFC 3339 allows and lands on the next minute).
 * - Formatting in UTC at three precisions: Kubernetes Time ("2006-01-02T15:04:05Z"), milliseconds
 *   ("2006-01-02T15:04:05.000Z", the log and audit form) and MicroTime
 *   ("2006-01-02T15:04:05.000000Z"). Years 0000..9999 only (what RFC 3339 can write).
 * - Go's time.Duration.String() ("1h2m3s", "1.5s", "300ms", "0s") and the duration syntax the
 *   configuration takes ("500ms", "1h30m", "0").
 *
 * Pure functions apart from rftime_now_ms() and rftime_now_us(); no time zone, locale or libc
 * calendar is used.
 */
#ifndef RF_RFTIME_H
#define RF_RFTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RFTIME_SEC_LEN 20 /* strlen("2006-01-02T15:04:05Z") */
#define RFTIME_MILLI_LEN 24 /* strlen("2006-01-02T15:04:05.000Z") */
#define RFTIME_MICRO_LEN 27 /* strlen("2006-01-02T15:04:05.000000Z") */
#define RFTIME_BUF 32 /* a buffer that holds any formatted time */
#define RFTIME_DURATION_BUF 32 /* a buffer that holds any formatted Go duration */

#define RFTIME_NS_PER_MS 1000000LL
#define RFTIME_NS_PER_S 1000000000LL

/* The precision of a formatted time. */
typedef enum {
    RFTIME_SEC, /* Kubernetes Time: seconds */
    RFTIME_MILLI, /* milliseconds */
    RFTIME_MICRO /* Kubernetes MicroTime: microseconds (the last three digits are 0) */
} rftime_prec_t;

/* Parses an RFC 3339 time into milliseconds since the epoch (fraction digits past the
 * millisecond are dropped, toward the past). Returns 0, ERR_INVAL (NULL argument) or ERR_PARSE
 * (malformed or out of range); *wall_ms is untouched on error. */
int rftime_parse(const char *s, int64_t *wall_ms);

/* As rftime_parse(), in whole seconds since the epoch (rounded toward the past). */
int rftime_parse_sec(const char *s, int64_t *sec);

/* Formats wall_ms (milliseconds since the epoch, may be negative) in UTC at precision prec into
 * out[size]. Returns 0, ERR_INVAL (NULL out, or a year outside 0000..9999) or ERR_TOOBIG (size
 * too small; out is then ""). */
int rftime_format(int64_t wall_ms, rftime_prec_t prec, char *out, size_t size);

/* The wall clock (CLOCK_REALTIME) in milliseconds since the epoch. */
int64_t rftime_now_ms(void);

/* The wall clock (CLOCK_REALTIME) in microseconds since the epoch. */
int64_t rftime_now_us(void);

/* Formats the wall clock now, as rftime_format(). */
int rftime_now(rftime_prec_t prec, char *out, size_t size);

/* Formats ns nanoseconds as Go's time.Duration.String(): "0s", "1.5s", "300ms", "2µs", "5ns",
 * "1h2m3s", "-1m0.5s". Returns 0, ERR_INVAL or ERR_TOOBIG (size < RFTIME_DURATION_BUF always
 * suffices). */
int rftime_duration_format(int64_t ns, char *out, size_t size);

/* Parses a configuration duration into milliseconds: "0", or one or more <digits><unit> with
 * units ms, s, m, h ("500ms", "1h30m", "1h2m3s4ms"). No sign, fraction or other unit; overflow
 * is an error. Returns 0, ERR_INVAL or ERR_PARSE. */
int rftime_duration_parse(const char *s, int64_t *ms);

/* Parses a duration exactly as Go's time.ParseDuration into nanoseconds: an optional sign, then
 * "0" or one or more <number><unit> where the number may have a fraction ("1.5h", ".5s", "5.s")
 * and the unit is ns, us, µs (U+00B5 or U+03BC), ms, s, m or h; the fraction is truncated toward
 * zero past the nanosecond, and a magnitude beyond int64 is an error. Returns 0, ERR_INVAL (NULL
 * argument) or ERR_PARSE (Go's "invalid duration", "missing unit", "unknown unit" or overflow);
 * *ns is untouched on error. */
int rftime_go_duration_parse(const char *s, int64_t *ns);

/* Self-test: parse edges and bad input, round trips, the three precisions, negative times,
 * Go duration strings, duration parse bounds, Go's ParseDuration. */
int rftime_test(bool verbose);

#endif
