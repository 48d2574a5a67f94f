/*
 * buf: a growable byte buffer with a hard upper bound (after curl's dynbuf).
 *
 * The bytes are always followed by a NUL that is not counted in `len`, so a buffer of text can
 * be passed to any C string function. Every append checks the bound: an append that would pass
 * `max` fails with ERR_TOOBIG and leaves the buffer as it was, so a hostile peer cannot make us
 * allocate without limit. A buf_t is a plain struct the caller owns (often on the stack);
 * buf_free() releases its memory.
 */
#ifndef RF_BUF_H
#define RF_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *data; /* the bytes, NUL-terminated; NULL until the first append */
    size_t len; /* bytes used, not counting the NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* the most `len` may ever reach */
} buf_t;

/* Prepares an empty buffer that will never hold more than `max` bytes. Allocates nothing. */
void buf_init(buf_t *b, size_t max);

/* Releases the memory and leaves the buffer empty, ready for reuse with the same bound. */
void buf_free(buf_t *b);

/* Empties the buffer, keeping its memory. */
void buf_reset(buf_t *b);

/* Appends `n` bytes. Returns 0, ERR_TOOBIG (bound passed) or ERR_NOMEM; on error the buffer is
 * unchanged. */
int buf_append(buf_t *b, const void *p, size_t n);

/* Appends a NUL-terminated string. Same returns as buf_append(). */
int buf_puts(buf_t *b, const char *s);

/* Appends printf-formatted text. Same returns as buf_append(). */
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf_t *b, const char *fmt, va_list ap);

/* Appends `s` as the body of a JSON string (escaped, without the quotes). */
int buf_json_escape(buf_t *b, const char *s);

/* Appends `s` percent-encoded as one URL path segment or query value: every byte but RFC 3986's
 * unreserved ones (ALPHA DIGIT - . _ ~) becomes %XX (upper-case hex), '/' included. On error the
 * buffer is restored. */
int buf_url_escape(buf_t *b, const char *s);

/* Takes the bytes out: returns the NUL-terminated data (caller frees with free(), never NULL
 * unless out of memory) and leaves the buffer empty. `len_out` may be NULL. */
char *buf_take(buf_t *b, size_t *len_out);

/* Gives the text a stable address: the data, or "" when nothing has been appended. */
const char *buf_str(const buf_t *b);

#endif
