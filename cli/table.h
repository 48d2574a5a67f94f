/*
 * table: rayfleetctl's text tables (status, members): rows of cells, each column as wide as its
 * widest cell, three spaces between columns, an empty cell printed as "-", newlines and tabs in a
 * cell turned into spaces.
 */
#ifndef RF_CLI_TABLE_H
#define RF_CLI_TABLE_H

#include <stddef.h>
#include <stdio.h>

#define TABLE_MAX_COLS 12 /* most columns of one table */
#define TABLE_MAX_ROWS 100000 /* most rows printed per table */
#define TABLE_CELL_MAX 256 /* longest cell text */

/* A table being built: rows of owned cell strings. */
typedef struct {
    int ncols; /* columns */
    const char *header[TABLE_MAX_COLS]; /* column titles (borrowed) */
    char **cells; /* nrows * ncols owned strings */
    size_t nrows; /* rows */
    size_t cap; /* rows allocated */
} table_t;

/* Appends a row of t->ncols cells (copied). Returns 0, ERR_TOOBIG or ERR_NOMEM. */
int table_row(table_t *t, const char *const *values);

/* Prints the header and the rows to f. */
void table_print(const table_t *t, FILE *f);

/* Frees the rows (the header is borrowed). */
void table_free(table_t *t);

#endif
