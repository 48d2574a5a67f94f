/*
 * tz: IANA time zones as Go's time package loads and applies them (time.LoadLocation,
 * time.Date, Time.In), for schedules evaluated in a zone (common/cron.h).
 *
 * A zone is read from its TZif file (version 1, 2, 3 or 4: the 64-bit block when present, and the
 * POSIX TZ footer for instants past the last transition, rules Mm.w.d, Jn and n) under $ZONEINFO,
 * else TZ_DIR. Names are checked as Go checks them: "" and "UTC" are UTC, "Local" the process's
 * local zone as Go's initLocal finds it ($TZ unset: /etc/localtime; "" or "UTC": UTC; else the
 * zone $TZ names, a leading ':' dropped; unreadable: UTC; in a container that is UTC), a name with
 * ".." or a leading '/' or '\\' is "time: invalid location name", a missing or malformed file is
 * "unknown time zone NAME", and a file above TZ_FILE_MAX bytes is refused.
 *
 * Instants are Unix seconds; the offsets are seconds east of UTC. tz_date() converts a civil
 * date-time (fields may be out of range and are normalised, as Go's time.Date) in the zone to
 * an instant with Go's rule for the gaps and overlaps of DST changes: a time that does not exist
 * (spring forward) is taken with the offset after the change (New York 02:30 on the day of the
 * change is 01:30 EST), a time that exists twice (fall back) is the first of the two.
 */
#ifndef RF_TZ_H
#define RF_TZ_H

#include "buf.h"

#include <stdbool.h>
#include <stdint.h>

#define TZ_DIR "/usr/share/zoneinfo" /* where zone files are read, unless $ZONEINFO */
#define TZ_FILE_MAX (1 << 20) /* largest zone file read */
#define TZ_NAME_MAX 255 /* longest zone name */

typedef struct tz tz_t;

/* Civil time fields in a zone. */
typedef struct {
    int year, month, day; /* month 1..12, day 1..31 */
    int hour, min, sec; /* 0..23, 0..59, 0..59 */
    int wday; /* day of week, 0 Sunday */
    int32_t offset; /* seconds east of UTC in force */
} tz_civil_t;

/* Loads zone `name` (Go's time.LoadLocation). Returns 0 with *out set (free with tz_free()), or
 * ERR_INVAL / ERR_NOTFOUND / ERR_TOOBIG / ERR_NOMEM with Go's message in err (may be NULL). */
int tz_load(const char *name, tz_t **out, buf_t *err);

/* The UTC zone (static; tz_free() ignores it). */
const tz_t *tz_utc(void);

/* Frees a zone and NULLs *z_p. NULL-safe. */
void tz_free(tz_t **z_p);

/* The zone's name as loaded ("UTC", "Local", "Asia/Taipei"). */
const char *tz_name(const tz_t *z);

/* The offset in force at instant `t` (Unix seconds). */
int32_t tz_offset(const tz_t *z, int64_t t);

/* The civil fields of instant `t` in the zone. */
void tz_civil(const tz_t *z, int64_t t, tz_civil_t *out);

/* The instant of the civil time (normalised as Go's time.Date) in the zone. */
int64_t tz_date(const tz_t *z, int year, int month, int day, int hour, int min, int sec);

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12). */
int64_t tz_days_from_civil(int64_t year, int month, int day);

/* Self-test: civil arithmetic, UTC, Asia/Taipei, America/New_York around both 2026 DST changes
 * (transitions and the POSIX rule past them), Europe/London, Australia/Sydney (southern rule),
 * name checks and Go's messages. */
int tz_test(bool verbose);

#endif
