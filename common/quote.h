/*
 * quote: Go's strconv.Quote (what fmt's %q prints for a string), for messages that must match
 * Kubernetes' byte for byte (label selector errors, field.Error values).
 *
 * The rules: '"' and '\\' get a backslash; \a \b \f \n \r \t \v their C escapes; other bytes
 * below 0x20 and 0x7f become \xNN; a byte that does not start valid UTF-8 (stray continuation,
 * overlong form, surrogate, past U+10FFFF, cut short) becomes \xNN and decoding resumes at the
 * next byte; a valid rune is kept as is when printable and written \uNNNN (\UNNNNNNNN past the
 * BMP) when not. Not printable here: the C0 and C1 controls, the Unicode space separators other
 * than ' ', the line and paragraph separators, the format characters (soft hyphen, zero-width and
 * bidirectional marks, word joiners, BOM, interlinear annotation), private-use and the two
 * BMP non-characters U+FFFE/U+FFFF; every other valid rune is treated as printable (Go also
 * escapes unassigned code points, which rayfleet's inputs do not carry).
 */
#ifndef RF_QUOTE_H
#define RF_QUOTE_H

#include <stdbool.h>

#include "buf.h"

/* Appends s quoted as Go's strconv.Quote to b. Returns 0, ERR_INVAL or the buf error (ERR_TOOBIG
 * or ERR_NOMEM; b then holds a cut quote). */
int quote_go(buf_t *b, const char *s);

/* The value of hex digit c (0-9, a-f, A-F), or -1: what the decoders of escapes share (JSON's
 * \uXXXX in jproj, CEL's \x and \u, URL %XX in httpd). */
int quote_hexval(int c);

/* Self-test: ASCII escapes (including the \r that sim/schema.c's copy wrote as \x0d), UTF-8
 * kept, invalid UTF-8, non-printable runes, the bound. */
int quote_test(bool verbose);

#endif
