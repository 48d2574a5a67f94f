/*
 * args: see args.h.
 */
#include "args.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int s_index(const args_opt_t *table, const char *name, size_t len)
{
    for (int i = 0; table[i].name && i < ARGS_MAX_OPTS; i++)
        if (strlen(table[i].name) == len && memcmp(table[i].name, name, len) == 0)
            return i;
    return -1;
}

void args_usage(FILE *f, const char *cmd, const char *synopsis, const char *about,
                const args_opt_t *table)
{
    fprintf(f, "Usage: rayfleetctl %s %s\n\n%s\n\nOptions:\n", cmd, synopsis, about);
    for (int i = 0; table[i].name && i < ARGS_MAX_OPTS; i++) {
        fprintf(f, "  --%s%s%s\n      %s\n", table[i].name, table[i].metavar ? " " : "",
                table[i].metavar ? table[i].metavar : "", table[i].help);
    }
    fprintf(f, "  --help, -h\n      Print this help and exit.\n");
}

int args_parse(const char *cmd, const char *synopsis, const char *about, const args_opt_t *table,
               int max_positional, int argc, char **argv, args_t *out)
{
    memset(out, 0, sizeof(*out));
    out->table = table;
    bool only_positional = false;
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        if (only_positional || w[0] != '-' || w[1] == '\0') {
            if (out->npositional >= max_positional || out->npositional >= ARGS_MAX_POSITIONAL) {
                fprintf(stderr,
                        "rayfleetctl %s: unexpected argument '%s' (%s takes %s; see "
                        "'rayfleetctl %s --help')\n",
                        cmd, w, cmd, max_positional ? "fewer arguments" : "options only", cmd);
                return ARGS_USAGE;
            }
            out->positional[out->npositional++] = w;
            continue;
        }
        if (strcmp(w, "--") == 0) {
            only_positional = true;
            continue;
        }
        if (strcmp(w, "--help") == 0 || strcmp(w, "-h") == 0) {
            args_usage(stdout, cmd, synopsis, about, table);
            return ARGS_HELP;
        }
        if (w[1] != '-') {
            fprintf(stderr, "rayfleetctl %s: unknown option '%s' (options are long: --name)\n", cmd,
                    w);
            return ARGS_USAGE;
        }
        const char *name = w + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int k = s_index(table, name, len);
        if (k < 0) {
            fprintf(stderr,
                    "rayfleetctl %s: unknown option '--%.*s' (see 'rayfleetctl %s --help')\n", cmd,
                    (int)len, name, cmd);
            return ARGS_USAGE;
        }
        if (out->set[k]) {
            fprintf(stderr, "rayfleetctl %s: --%s: given more than once\n", cmd, table[k].name);
            return ARGS_USAGE;
        }
        out->set[k] = true;
        if (!table[k].metavar) {
            if (eq) {
                fprintf(stderr, "rayfleetctl %s: --%s: takes no value (got '%s')\n", cmd,
                        table[k].name, eq + 1);
                return ARGS_USAGE;
            }
            continue;
        }
        if (eq) {
            out->value[k] = eq + 1;
        } else if (i + 1 < argc) {
            out->value[k] = argv[++i];
        } else {
            fprintf(stderr, "rayfleetctl %s: --%s: needs a value (%s)\n", cmd, table[k].name,
                    table[k].metavar);
            return ARGS_USAGE;
        }
        if (out->value[k][0] == '\0') {
            fprintf(stderr, "rayfleetctl %s: --%s: must not be empty\n", cmd, table[k].name);
            return ARGS_USAGE;
        }
    }
    return ARGS_OK;
}

static int s_find(const args_t *a, const char *name)
{
    return s_index(a->table, name, strlen(name));
}

const char *args_str(const args_t *a, const char *name)
{
    int k = s_find(a, name);
    return k < 0 ? NULL : a->value[k];
}

bool args_has(const args_t *a, const char *name)
{
    int k = s_find(a, name);
    return k >= 0 && a->set[k];
}

int args_int(const args_t *a, const char *cmd, const char *name, int64_t min, int64_t max,
             int64_t def, int64_t *out)
{
    *out = def;
    const char *s = args_str(a, name);
    if (!s)
        return 0;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        fprintf(stderr,
                "rayfleetctl %s: --%s: must be an integer in %" PRId64 "..%" PRId64 " (got '%s')\n",
                cmd, name, min, max, s);
        return ARGS_USAGE;
    }
    *out = v;
    return 0;
}

int args_parse_duration(const char *s, int64_t *out_ms)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || v < 0)
        return -1;
    double mult = 1000;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else
        return -1;
    double ms = v * mult;
    if (ms > 1e15)
        return -1;
    *out_ms = (int64_t)ms;
    return 0;
}

int args_duration(const args_t *a, const char *cmd, const char *name, int64_t min_ms,
                  int64_t max_ms, int64_t def_ms, int64_t *out_ms)
{
    *out_ms = def_ms;
    const char *s = args_str(a, name);
    if (!s)
        return 0;
    int64_t v = 0;
    if (args_parse_duration(s, &v) != 0 || v < min_ms || v > max_ms) {
        fprintf(stderr,
                "rayfleetctl %s: --%s: must be a duration like 30s, 500ms or 2m, between %" PRId64
                "ms and %" PRId64 "ms (got '%s')\n",
                cmd, name, min_ms, max_ms, s);
        return ARGS_USAGE;
    }
    *out_ms = v;
    return 0;
}
