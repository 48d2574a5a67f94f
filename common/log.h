/*
 * log: structured logs, one JSON object per line.
 *
 *   {"time":"2026-11-22T10:00:00.123Z","level":"info","service":"watcher",
 *    "msg":"watch restarted","cluster":"default","resource":"pods"}
 *
 * Fields are key/value string pairs ending with NULL:
 *
 *   log_info("watch restarted", "cluster", name, "resource", res, NULL);
 *
 * Each line is written with one write(2), so lines from several processes sharing a pipe do not
 * interleave. Values of keys that look like secrets (containing "token", "password", "secret",
 * "authorization" or "key_data", in any case) are replaced by "[redacted]": a safety net, not a
 * licence to pass secrets. The logger is process-wide state set once by main() with log_setup();
 * before that it writes level info and up to stderr with service "rayfleet".
 */
#ifndef RF_LOG_H
#define RF_LOG_H

#include <stdarg.h>
#include <stdbool.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 } log_level_t;

/* Sets the service name (copied, at most 63 bytes), the lowest level written, and the fd. */
void log_setup(const char *service, log_level_t min_level, int fd);

/* Parses "debug", "info", "warn"/"warning", "error". Returns 0, or ERR_INVAL and leaves *out. */
int log_level_parse(const char *s, log_level_t *out);

/* True when a line at `level` would be written (to skip building expensive fields). */
bool log_enabled(log_level_t level);

/* Writes one line. The variadic arguments are const char * key/value pairs, then NULL. A NULL
 * value is written as JSON null. The message and values are escaped; a line is at most 8 KiB
 * (longer values are cut and end with "..."). */
void log_kv(log_level_t level, const char *msg, ...);
void log_vkv(log_level_t level, const char *msg, va_list ap);

void log_debug(const char *msg, ...);
void log_info(const char *msg, ...);
void log_warn(const char *msg, ...);
void log_error(const char *msg, ...);

#endif
