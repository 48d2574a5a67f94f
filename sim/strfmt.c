/* strfmt: the string formats kube-apiserver checks on custom resources; see strfmt.h. */
#include "strfmt.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The format name as go-openapi normalizes it: '-' removed, bounded. */
static void s_norm(const char *format, char *out, size_t n)
{
    size_t j = 0;
    for (const char *p = format; *p && j + 1 < n; p++)
        if (*p != '-')
            out[j++] = *p;
    out[j] = '\0';
}

bool strfmt_supported(const char *format)
{
    static const char *const known[] = {"bsonobjectid", "uri",   "email",    "hostname", "ipv4",
                                        "ipv6",         "cidr",  "mac",      "uuid",     "uuid3",
                                        "uuid4",        "uuid5", "isbn",     "isbn10",   "isbn13",
                                        "creditcard",   "ssn",   "hexcolor", "rgbcolor", "byte",
                                        "password",     "date",  "duration", "datetime"};
    char n[32];
    if (!format || strlen(format) >= sizeof(n))
        return false;
    s_norm(format, n, sizeof(n));
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(n, known[i]) == 0)
            return true;
    return false;
}

static bool s_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

static bool s_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* Go's time.Parse("2006-01-02", s) succeeds: exactly YYYY-MM-DD, a real day of the month. */
static bool s_date(const char *s, size_t n)
{
    if (n != 10 || s[4] != '-' || s[7] != '-' || !s_digits(s, 4) || !s_digits(s + 5, 2) ||
        !s_digits(s + 8, 2))
        return false;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return !(m == 2 && d == 29 && !leap);
}

/* kube-openapi strfmt IsDateTime: split the lower-cased string on 't', the first part a date,
 * the second matching DateTimePattern (see strfmt.h). */
static bool s_datetime(const char *s)
{
    size_t n = strlen(s);
    if (n < 4)
        return false;
    const char *t = s;
    while (*t && *t != 't' && *t != 'T')
        t++;
    if (!*t || !s_date(s, (size_t)(t - s)))
        return false;
    const char *p = t + 1;
    size_t m = 0; /* the second part ends at the next 't' (Go's Split) */
    while (p[m] && p[m] != 't' && p[m] != 'T')
        m++;
    if (m < 9 || !s_digits(p, 2) || p[2] != ':' || !s_digits(p + 3, 2) || p[5] != ':' ||
        !s_digits(p + 6, 2))
        return false;
    if (memcmp(p, "23", 2) > 0 || memcmp(p + 3, "59", 2) > 0 || memcmp(p + 6, "59", 2) > 0)
        return false;
    size_t i = 8;
    if (i < m && i + 1 < m && isdigit((unsigned char)p[i + 1]) &&
        (p[i] != 'z' && p[i] != 'Z' && p[i] != '+' && p[i] != '-')) {
        i++; /* `.` of (.[0-9]+)? is any character */
        while (i < m && isdigit((unsigned char)p[i]))
            i++;
    }
    if (i + 1 == m && (p[i] == 'z' || p[i] == 'Z'))
        return true;
    return i + 6 == m && (p[i] == '+' || p[i] == '-') && s_digits(p + i + 1, 2) &&
           p[i + 3] == ':' && s_digits(p + i + 4, 2);
}

/* Standard base64 with padding (Go's base64.StdEncoding.DecodeString succeeds). */
static bool s_base64(const char *s)
{
    size_t n = strlen(s);
    if (n % 4)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (isalnum((unsigned char)c) || c == '+' || c == '/')
            continue;
        if (c == '=' && (i == n - 1 || (i == n - 2 && s[n - 1] == '=')))
            continue;
        return false;
    }
    return true;
}

/* strfmt's UUID regexes:
 * (?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?V[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$ (version char V;
 * plain uuid: any hex and any variant). */
static bool s_uuid(const char *s, char version)
{
    static const int groups[] = {8, 4, 4, 4, 12};
    const char *p = s;
    for (int g = 0; g < 5; g++) {
        if (g > 0 && *p == '-')
            p++;
        if (strlen(p) < (size_t)groups[g] || !s_hex(p, (size_t)groups[g]))
            return false;
        if (g == 2 && version && p[0] != version)
            return false;
        if (g == 3 && version && version != '3' && !strchr("89abAB", p[0]))
            return false;
        p += groups[g];
    }
    return *p == '\0';
}

static bool s_ip(const char *s, bool v6)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET, s, buf) == 1)
        return true; /* Go's ParseIP takes an IPv4 for either format */
    return v6 && inet_pton(AF_INET6, s, buf) == 1;
}

static bool s_cidr(const char *s)
{
    const char *slash = strchr(s, '/');
    char ip[64];
    if (!slash || (size_t)(slash - s) >= sizeof(ip) || !slash[1] || strlen(slash + 1) > 3 ||
        !s_digits(slash + 1, strlen(slash + 1)))
        return false;
    memcpy(ip, s, (size_t)(slash - s));
    ip[slash - s] = '\0';
    unsigned char buf[16];
    int bits = (int)strtol(slash + 1, NULL, 10);
    if (inet_pton(AF_INET, ip, buf) == 1)
        return bits <= 32;
    return inet_pton(AF_INET6, ip, buf) == 1 && bits <= 128;
}

/* Go's net.ParseMAC. */
static bool s_mac(const char *s)
{
    size_t n = strlen(s);
    if (n < 14)
        return false;
    if (s[2] == ':' || s[2] == '-') {
        if ((n + 1) % 3 != 0)
            return false;
        size_t octets = (n + 1) / 3;
        if (octets != 6 && octets != 8 && octets != 20)
            return false;
        for (size_t i = 0; i < octets; i++) {
            const char *o = s + 3 * i;
            if (!s_hex(o, 2) || (i + 1 < octets && o[2] != s[2]))
                return false;
        }
        return true;
    }
    if (s[4] == '.') {
        if ((n + 1) % 5 != 0)
            return false;
        size_t groups = (n + 1) / 5;
        if (groups * 2 != 6 && groups * 2 != 8 && groups * 2 != 20)
            return false;
        for (size_t i = 0; i < groups; i++) {
            const char *o = s + 5 * i;
            if (!s_hex(o, 4) || (i + 1 < groups && o[4] != '.'))
                return false;
        }
        return true;
    }
    return false;
}

bool strfmt_valid(const char *format, const char *s)
{
    if (!strfmt_supported(format) || !s)
        return true;
    char f[32];
    s_norm(format, f, sizeof(f));
    if (strcmp(f, "datetime") == 0)
        return s_datetime(s);
    if (strcmp(f, "date") == 0)
        return s_date(s, strlen(s));
    if (strcmp(f, "byte") == 0)
        return s_base64(s);
    if (strcmp(f, "uuid") == 0)
        return s_uuid(s, 0);
    if (strncmp(f, "uuid", 4) == 0)
        return s_uuid(s, f[4]);
    if (strcmp(f, "ipv4") == 0)
        return s_ip(s, false);
    if (strcmp(f, "ipv6") == 0)
        return s_ip(s, true);
    if (strcmp(f, "cidr") == 0)
        return s_cidr(s);
    if (strcmp(f, "mac") == 0)
        return s_mac(s);
    if (strcmp(f, "bsonobjectid") == 0)
        return strlen(s) == 24 && s_hex(s, 24);
    if (strcmp(f, "hexcolor") == 0) {
        const char *p = s[0] == '#' ? s + 1 : s;
        return (strlen(p) == 3 || strlen(p) == 6) && s_hex(p, strlen(p));
    }
    return true; /* password and the formats not checked here */
}

#ifdef RF_SELFTEST
#include "selftest.h"

int strfmt_test(bool verbose)
{
    int failed = 0;
    /* formats kube strips: never an error, whatever the value */
    CHECK(!strfmt_supported("int32") && !strfmt_supported("int64") && !strfmt_supported("x"));
    CHECK(strfmt_valid("int32", "anything") && strfmt_valid("nope", ""));
    CHECK(strfmt_supported("date-time") && strfmt_supported("uuid4"));
    /* date-time */
    CHECK(strfmt_valid("date-time", "2024-02-29T10:00:00Z"));
    CHECK(strfmt_valid("date-time", "2024-02-29t10:00:00.123456z"));
    CHECK(strfmt_valid("date-time", "2024-01-01T23:59:59+05:30"));
    CHECK(strfmt_valid("date-time", "2024-01-01T23:59:59x5Z")); /* `.` is any character */
    CHECK(!strfmt_valid("date-time", "2023-02-29T10:00:00Z"));
    CHECK(!strfmt_valid("date-time", "2024-01-01T24:00:00Z"));
    CHECK(!strfmt_valid("date-time", "2024-01-01T10:00:00"));
    CHECK(!strfmt_valid("date-time", "2024-01-01 10:00:00Z"));
    CHECK(!strfmt_valid("date-time", "2024-01-01T10:00:00+0530"));
    CHECK(!strfmt_valid("date-time", "yesterday"));
    CHECK(!strfmt_valid("date-time", ""));
    /* date */
    CHECK(strfmt_valid("date", "2000-02-29") && !strfmt_valid("date", "1900-02-29"));
    CHECK(!strfmt_valid("date", "2000-13-01") && !strfmt_valid("date", "2000-1-01"));
    /* byte */
    CHECK(strfmt_valid("byte", "aGVsbG8=") && strfmt_valid("byte", ""));
    CHECK(!strfmt_valid("byte", "aGVsbG8") && !strfmt_valid("byte", "a=bc"));
    /* uuid */
    CHECK(strfmt_valid("uuid", "123e4567-E89B-12d3-a456-426614174000"));
    CHECK(strfmt_valid("uuid", "123e4567e89b12d3a456426614174000"));
    CHECK(!strfmt_valid("uuid", "123e4567-e89b-12d3-a456-42661417400"));
    CHECK(strfmt_valid("uuid4", "123e4567-e89b-42d3-a456-426614174000"));
    CHECK(!strfmt_valid("uuid4", "123e4567-e89b-12d3-a456-426614174000"));
    CHECK(!strfmt_valid("uuid4", "123e4567-e89b-42d3-c456-426614174000"));
    /* addresses */
    CHECK(strfmt_valid("ipv4", "10.0.0.1") && !strfmt_valid("ipv4", "10.0.0.256"));
    CHECK(!strfmt_valid("ipv4", "::1") && strfmt_valid("ipv6", "::1"));
    CHECK(strfmt_valid("ipv6", "10.0.0.1") && !strfmt_valid("ipv6", "fe80::g"));
    CHECK(strfmt_valid("cidr", "10.0.0.0/8") && strfmt_valid("cidr", "fd00::/64"));
    CHECK(!strfmt_valid("cidr", "10.0.0.0/33") && !strfmt_valid("cidr", "10.0.0.0"));
    CHECK(strfmt_valid("mac", "00:1a:2B:3c:4d:5e") && strfmt_valid("mac", "001a.2b3c.4d5e"));
    CHECK(!strfmt_valid("mac", "00:1a:2b:3c:4d") && !strfmt_valid("mac", "00:1a-2b:3c:4d:5e"));
    CHECK(strfmt_valid("bsonobjectid", "507f1f77bcf86cd799439011"));
    CHECK(!strfmt_valid("bsonobjectid", "507f1f77bcf86cd79943901"));
    CHECK(strfmt_valid("hexcolor", "#FFF") && !strfmt_valid("hexcolor", "#FFFF"));
    /* not checked here */
    CHECK(strfmt_valid("email", "not an email") && strfmt_valid("password", "x"));
    return SELFTEST_RESULT("strfmt", verbose);
}
#endif
