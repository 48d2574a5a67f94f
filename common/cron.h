/*
 * cron: schedules as KubeRay parses and steps them (robfig/cron v3 ParseStandard and
 * SpecSchedule.Next / ConstantDelaySchedule.Next), in a time zone (common/tz.h).
 *
 * Syntax: five fields (minute 0-59, hour 0-23, day of month 1-31, month 1-12 or JAN-DEC, day of
 * week 0-6 or SUN-SAT; names in any case), each a comma list of `*`, `?`, `N`, `N-M`, each with
 * an optional `/step` (`N/step` is N-max/step); or a descriptor @yearly @annually @monthly
 * @weekly @daily @midnight @hourly, or `@every <Go duration>` (rounded down to whole seconds, at
 * least 1 s). When both day fields are restricted (neither begins with `*` or `?` without a
 * step above 1) a day matches either; else both must match. Error messages are robfig's, word for
 * word (KubeRay's Event quotes them: "expected exactly 5 fields, found 4: [* * * *]", "end of
 * range (60) above maximum (59): 0-60", "failed to parse int from x: strconv.Atoi: parsing "x":
 * invalid syntax", ...); the field at fault is returned besides (cron_field_name()).
 *
 * cron_next() is the first activation strictly after an instant (whole seconds; the schedule's
 * second is 0), computed on the civil time of the zone exactly as robfig does: the fields are
 * stepped with Go's time.Date normalisation, so a time that does not exist on a spring-forward
 * day is skipped and a time in the repeated hour of a fall-back day can match in each of its two
 * occurrences (robfig's own test: after 01:45 EDT, "30 1 4 11 *" is next at 01:30 EST). No
 * activation within five years (e.g. "0 0 30 2 *") is reported as none.
 */
#ifndef RF_CRON_H
#define RF_CRON_H

#include "buf.h"
#include "tz.h"

#include <stdbool.h>
#include <stdint.h>

/* The fields of a spec, for messages. */
typedef enum {
    CRON_F_SPEC = -1, /* the spec as a whole (field count, descriptor) */
    CRON_F_MINUTE = 0,
    CRON_F_HOUR,
    CRON_F_DOM,
    CRON_F_MONTH,
    CRON_F_DOW
} cron_field_t;

/* A parsed schedule (plain value). */
typedef struct {
    uint64_t minute, hour, dom, month, dow; /* bit sets; bit 63: the field began with * or ? */
    int64_t every_s; /* > 0: @every, the delay in seconds (the bit sets unused) */
} cron_t;

/* Parses `spec` as robfig/cron v3 ParseStandard. Returns 0, or ERR_PARSE with robfig's message in
 * err (may be NULL) and the field at fault in *field (may be NULL). */
int cron_parse(const char *spec, cron_t *out, buf_t *err, cron_field_t *field);

/* The first activation strictly after `after` (Unix seconds) in zone z. Returns true with *next
 * set, or false when there is none within five years. */
bool cron_next(const cron_t *c, const tz_t *z, int64_t after, int64_t *next);

/* "minute", "hour", "day of month", "month", "day of week" or "spec". */
const char *cron_field_name(cron_field_t f);

/* Self-test: robfig's own parse and Next cases (5-field forms of them), descriptors, names, steps,
 * the day OR rule, error messages, Asia/Taipei and America/New_York across both 2026 DST changes.
 */
int cron_test(bool verbose);

#endif
