/*
 * table: see table.h.
 */
#include "table.h"

#include "err.h"

#include <stdlib.h>
#include <string.h>

int table_row(table_t *t, const char *const *values)
{
    if (t->nrows >= TABLE_MAX_ROWS)
        return ERR_TOOBIG;
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **c = realloc(t->cells, cap * (size_t)t->ncols * sizeof(char *));
        if (!c)
            return ERR_NOMEM;
        t->cells = c;
        t->cap = cap;
    }
    for (int i = 0; i < t->ncols; i++) {
        const char *v = values[i] && values[i][0] ? values[i] : "-";
        size_t len = strnlen(v, TABLE_CELL_MAX - 1);
        char *s = malloc(len + 1);
        if (!s) {
            for (int j = 0; j < i; j++)
                free(t->cells[t->nrows * (size_t)t->ncols + (size_t)j]);
            return ERR_NOMEM;
        }
        memcpy(s, v, len);
        s[len] = '\0';
        for (char *p = s; *p; p++)
            if (*p == '\n' || *p == '\t')
                *p = ' ';
        t->cells[t->nrows * (size_t)t->ncols + (size_t)i] = s;
    }
    t->nrows++;
    return 0;
}

void table_print(const table_t *t, FILE *f)
{
    size_t w[TABLE_MAX_COLS];
    for (int i = 0; i < t->ncols; i++) {
        w[i] = strlen(t->header[i]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t l = strlen(t->cells[r * (size_t)t->ncols + (size_t)i]);
            if (l > w[i])
                w[i] = l;
        }
    }
    for (int i = 0; i < t->ncols; i++)
        fprintf(f, "%-*s%s", i + 1 < t->ncols ? (int)w[i] : 0, t->header[i],
                i + 1 < t->ncols ? "   " : "\n");
    for (size_t r = 0; r < t->nrows; r++)
        for (int i = 0; i < t->ncols; i++)
            fprintf(f, "%-*s%s", i + 1 < t->ncols ? (int)w[i] : 0,
                    t->cells[r * (size_t)t->ncols + (size_t)i], i + 1 < t->ncols ? "   " : "\n");
}

void table_free(table_t *t)
{
    for (size_t r = 0; r < t->nrows; r++)
        for (int i = 0; i < t->ncols; i++)
            free(t->cells[r * (size_t)t->ncols + (size_t)i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
}
