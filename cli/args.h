/*
 * args: the small option parser of rayfleetctl's subcommands.
 *
 * Each command declares a table of long options ("--state-dir DIR", "--detach"); args_parse()
 * accepts "--name VALUE", "--name=VALUE" and bare flags, rejects unknown options, missing values,
 * values given to flags and positional arguments (unless the command allows them), and prints
 * each error on stderr as "rayfleetctl CMD: --name: rule (got 'x')". args_usage() prints the
 * command's help from the same table, so --help and the parser never disagree.
 */
#ifndef RF_CLI_ARGS_H
#define RF_CLI_ARGS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define ARGS_MAX_OPTS 32 /* most options one command declares */
#define ARGS_MAX_POSITIONAL 8 /* most positional arguments one command accepts */

/* One option of a command. A table ends with an entry whose name is NULL. */
typedef struct {
    const char *name; /* long name without the dashes ("state-dir") */
    const char *metavar; /* value placeholder ("DIR"), or NULL for a flag without value */
    const char *help; /* one sentence (or more) for --help */
} args_opt_t;

/* A command's parsed arguments; strings are borrowed from argv. */
typedef struct {
    const args_opt_t *table; /* the table parsed against */
    const char *value[ARGS_MAX_OPTS]; /* value of option i, or NULL when not given */
    bool set[ARGS_MAX_OPTS]; /* option i was given */
    const char *positional[ARGS_MAX_POSITIONAL]; /* positional arguments in order */
    int npositional; /* how many */
} args_t;

/* Results of args_parse(). */
#define ARGS_OK 0 /* parsed; run the command */
#define ARGS_HELP 1 /* --help was printed on stdout; exit 0 */
#define ARGS_USAGE 2 /* an error was printed on stderr; exit 2 */

/* Parses argv[0..argc-1] (the words after the command name) for command `cmd` against `table`;
 * at most `max_positional` positional words (0: none). `--help`/`-h` prints
 * args_usage(cmd, synopsis, about, table) and returns ARGS_HELP. Returns ARGS_OK, ARGS_HELP or
 * ARGS_USAGE (message printed). */
int args_parse(const char *cmd, const char *synopsis, const char *about, const args_opt_t *table,
               int max_positional, int argc, char **argv, args_t *out);

/* Prints the help of a command to `f`: synopsis, description, the options with their help. */
void args_usage(FILE *f, const char *cmd, const char *synopsis, const char *about,
                const args_opt_t *table);

/* The value of option `name` (NULL when not given or a flag). `name` must be in the table. */
const char *args_str(const args_t *a, const char *name);

/* Whether option `name` was given. */
bool args_has(const args_t *a, const char *name);

/* Parses option `name` as an integer in [min, max]; *out keeps `def` when the option is absent.
 * Returns 0, or ARGS_USAGE after printing "rayfleetctl CMD: --name: must be an integer in
 * min..max (got 'x')". */
int args_int(const args_t *a, const char *cmd, const char *name, int64_t min, int64_t max,
             int64_t def, int64_t *out);

/* Parses option `name` as a duration ("90s", "500ms", "2m", "1h"; a bare number is seconds) in
 * [min_ms, max_ms]; *out_ms keeps `def_ms` when absent. Returns 0 or ARGS_USAGE (printed). */
int args_duration(const args_t *a, const char *cmd, const char *name, int64_t min_ms,
                  int64_t max_ms, int64_t def_ms, int64_t *out_ms);

/* Parses a duration text as above into *out_ms. Returns 0, or -1 when malformed. */
int args_parse_duration(const char *s, int64_t *out_ms);

#endif
