/*
 * hash: SHA-1 (through OpenSSL's libcrypto) and the text encodings of digests: lower-case hex
 * and base32hex (RFC 4648 section 7, the alphabet 0-9A-V of Go's base32.HexEncoding, upper or
 * lower case, '=' padding).
 *
 * SHA-1 here names content (KubeRay's Recreate-strategy spec hash), never authenticates it.
 * For a fast non-cryptographic hash of a JSON tree see jx_hash() (FNV-1a of the canonical form).
 */
#ifndef RF_HASH_H
#define RF_HASH_H

#include <stdbool.h>
#include <stddef.h>

#define HASH_SHA1_LEN 20 /* SHA-1 digest bytes */
#define HASH_SHA1_B32HEX_LEN 32 /* base32hex characters of a SHA-1 digest (no padding needed) */

/* The case of base32hex letters. */
typedef enum {
    HASH_UPPER, /* "0123456789ABCDEFGHIJKLMNOPQRSTUV", RFC 4648 and Go's HexEncoding */
    HASH_LOWER /* "0123456789abcdefghijklmnopqrstuv" */
} hash_case_t;

/* SHA-1 of data[n] into out. Returns 0, ERR_INVAL (NULL out, or NULL data with n > 0) or
 * ERR_NOMEM (libcrypto failed). */
int hash_sha1(const void *data, size_t n, unsigned char out[HASH_SHA1_LEN]);

/* Base32hex of in[n] with '=' padding to a multiple of 8 characters, NUL-terminated into
 * out[size]. Returns 0, ERR_INVAL or ERR_TOOBIG (size < hash_base32hex_len(n) + 1; out is then
 * ""). */
int hash_base32hex(const void *in, size_t n, hash_case_t c, char *out, size_t size);

/* Characters (without NUL) of the padded base32hex of n bytes. */
size_t hash_base32hex_len(size_t n);

/* Lower-case hex of in[n], NUL-terminated into out[size] (size >= 2n + 1). Returns 0, ERR_INVAL
 * or ERR_TOOBIG (out is then ""). */
int hash_hex(const void *in, size_t n, char *out, size_t size);

/* base32hex(sha1(text[n])) in case c: HASH_SHA1_B32HEX_LEN characters into out[size]. Returns 0
 * or the error of hash_sha1()/hash_base32hex(). */
int hash_sha1_b32hex(const void *text, size_t n, hash_case_t c, char *out, size_t size);

/* Self-test: FIPS 180 and RFC 3174 SHA-1 vectors (empty, "abc", two blocks, a million 'a'),
 * RFC 4648 section 10 base32hex vectors in both cases with padding, hex, bounds. */
int hash_test(bool verbose);

#endif
