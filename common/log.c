/*
 * log: JSON-lines logger. A line is built in a bounded buffer on the stack's behalf (buf_t with
 * an 8 KiB bound); if a field does not fit it is cut, and the line still closes properly.
 */
#include "log.h"
#include "buf.h"
#include "err.h"
#include "rftime.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192
#define LOG_VALUE_MAX 2048

static struct {
    char service[64]; /* written in every line */
    log_level_t level; /* lowest level written */
    int fd; /* where lines go */
} s_log = {"rayfleet", LOG_INFO, 2};

static const char *const s_level_names[] = {"debug", "info", "warn", "error"};

void log_setup(const char *service, log_level_t min_level, int fd)
{
    snprintf(s_log.service, sizeof s_log.service, "%s", service ? service : "rayfleet");
    s_log.level = min_level;
    s_log.fd = fd;
}

int log_level_parse(const char *s, log_level_t *out)
{
    if (!s)
        return ERR_INVAL;
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, s_level_names[i]) == 0) {
            *out = (log_level_t)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return ERR_INVAL;
}

bool log_enabled(log_level_t level)
{
    return level >= s_log.level;
}

/* True for keys whose values must never reach a log. */
static bool s_is_secret_key(const char *key)
{
    static const char *const words[] = {"token", "password", "secret", "authorization", "key_data"};
    char low[64];
    size_t n = 0;
    for (; key[n] && n < sizeof low - 1; n++)
        low[n] = (char)tolower((unsigned char)key[n]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strstr(low, words[i]))
            return true;
    return false;
}

/* Appends "value" (escaped, cut at LOG_VALUE_MAX bytes) to the line. */
static void s_put_string(buf_t *line, const char *v)
{
    size_t n = strlen(v);
    buf_puts(line, "\"");
    if (n <= LOG_VALUE_MAX) {
        buf_json_escape(line, v);
    } else {
        char *cut = strndup(v, LOG_VALUE_MAX);
        if (cut) {
            buf_json_escape(line, cut);
            free(cut);
        }
        buf_puts(line, "...");
    }
    buf_puts(line, "\"");
}

void log_vkv(log_level_t level, const char *msg, va_list ap)
{
    if (level < s_log.level || level > LOG_ERROR)
        return;
    char when[RFTIME_BUF];
    rftime_now(RFTIME_MILLI, when, sizeof(when));

    buf_t line;
    buf_init(&line, LOG_LINE_MAX - 2); /* room for the closing "}\n" */
    buf_printf(&line, "{\"time\":\"%s\",\"level\":\"%s\",\"service\":", when, s_level_names[level]);
    s_put_string(&line, s_log.service);
    buf_puts(&line, ",\"msg\":");
    s_put_string(&line, msg ? msg : "");
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (!key)
            break;
        const char *val = va_arg(ap, const char *);
        size_t before = line.len;
        buf_puts(&line, ",");
        s_put_string(&line, key);
        buf_puts(&line, ":");
        if (!val)
            buf_puts(&line, "null");
        else if (s_is_secret_key(key))
            buf_puts(&line, "\"[redacted]\"");
        else
            s_put_string(&line, val);
        // A field that did not fit whole is taken out, so the line stays valid JSON.
        if (line.len >= line.max - 8) {
            line.len = before;
            line.data[line.len] = '\0';
            break;
        }
    }
    line.max += 2;
    buf_puts(&line, "}\n");
    const char *p = buf_str(&line);
    size_t left = line.len;
    while (left > 0) {
        ssize_t w = write(s_log.fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        p += w;
        left -= (size_t)w;
    }
    buf_free(&line);
}

void log_kv(log_level_t level, const char *msg, ...)
{
    va_list ap;
    va_start(ap, msg);
    log_vkv(level, msg, ap);
    va_end(ap);
}

#define RF_LOG_LEVEL_FN(fn, lvl)                                                                   \
    void fn(const char *msg, ...)                                                                  \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, msg);                                                                         \
        log_vkv(lvl, msg, ap);                                                                     \
        va_end(ap);                                                                                \
    }
RF_LOG_LEVEL_FN(log_debug, LOG_DEBUG)
RF_LOG_LEVEL_FN(log_info, LOG_INFO)
RF_LOG_LEVEL_FN(log_warn, LOG_WARN)
RF_LOG_LEVEL_FN(log_error, LOG_ERROR)

#ifdef RF_SELFTEST
#include "selftest.h"

/* Reads everything written to the pipe so far into `out` (NUL-terminated). */
static void s_drain(int fd, char *out, size_t cap)
{
    ssize_t n = read(fd, out, cap - 1);
    out[n > 0 ? n : 0] = '\0';
}

int log_test(bool verbose)
{
    int failed = 0;
    int p[2];
    CHECK(pipe(p) == 0);
    char got[16384];

    log_setup("testsvc", LOG_INFO, p[1]);
    log_info("hello \"world\"", "cluster", "c1", "count", "3", NULL);
    s_drain(p[0], got, sizeof got);
    CHECK(strncmp(got, "{\"time\":\"", 9) == 0);
    CHECK(strstr(got, "\"level\":\"info\",\"service\":\"testsvc\",\"msg\":\"hello \\\"world\\\"\","
                      "\"cluster\":\"c1\",\"count\":\"3\"}\n") != NULL);

    // Below the level: nothing written.
    log_debug("quiet", NULL);
    log_warn("loud", "x", NULL, NULL);
    s_drain(p[0], got, sizeof got);
    CHECK(strstr(got, "quiet") == NULL);
    CHECK(strstr(got, "\"level\":\"warn\"") && strstr(got, "\"x\":null"));

    // Secret-looking keys never carry their values.
    log_error("auth", "bearer_token", "abc123", "Password", "hunter2", "user", "bob", NULL);
    s_drain(p[0], got, sizeof got);
    CHECK(strstr(got, "abc123") == NULL && strstr(got, "hunter2") == NULL);
    CHECK(strstr(got, "\"bearer_token\":\"[redacted]\"") && strstr(got, "\"user\":\"bob\""));

    // A huge value is cut, and the line is still one line of valid shape.
    char big[20000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    log_info("big", "v", big, "w", big, "z", big, "tail", "t", NULL);
    s_drain(p[0], got, sizeof got);
    size_t len = strlen(got);
    CHECK(len < LOG_LINE_MAX + 1 && len > 2 && got[len - 1] == '\n' && got[len - 2] == '}');
    CHECK(strstr(got, "...\"") != NULL);
    CHECK(strchr(got, '\n') == got + len - 1);

    log_level_t lv = LOG_INFO;
    CHECK(log_level_parse("debug", &lv) == 0 && lv == LOG_DEBUG);
    CHECK(log_level_parse("warning", &lv) == 0 && lv == LOG_WARN);
    CHECK(log_level_parse("loud", &lv) == ERR_INVAL && lv == LOG_WARN);
    CHECK(log_enabled(LOG_ERROR) && !log_enabled(LOG_DEBUG));

    log_setup("rayfleet", LOG_INFO, 2);
    close(p[0]);
    close(p[1]);
    return SELFTEST_RESULT("log", verbose);
}

#endif /* RF_SELFTEST */
