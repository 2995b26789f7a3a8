/* Number parsing and formatting that must match Redis digit for digit.
 *
 * Redis does INCRBYFLOAT / HINCRBYFLOAT arithmetic in C `long double` (x87 80-bit on x86-64) and
 * formats with printf's %.17Lf / %.17g; Rust has no long double and its float printing differs.
 * These small wrappers give the Rust side the exact libc behaviour. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <ctype.h>
#include <stdlib.h>

#define LD_MAX_CHARS (5 * 1024)

static int parse_ld(const char *s, size_t slen, long double *dp) {
    char buf[LD_MAX_CHARS];
    char *eptr;
    long double value;
    if (slen == 0 || slen >= sizeof(buf)) return 0;
    memcpy(buf, s, slen);
    buf[slen] = '\0';
    errno = 0;
    value = strtold(buf, &eptr);
    if (isspace((unsigned char)buf[0]) || eptr[0] != '\0' || (size_t)(eptr - buf) != slen ||
        (errno == ERANGE && (value == HUGE_VAL || value == -HUGE_VAL || fpclassify(value) == FP_ZERO)) ||
        errno == EINVAL || isnan(value))
        return 0;
    *dp = value;
    return 1;
}

/* Human-friendly long double: %.17Lf with trailing zeroes (and a bare '.') removed. */
static int format_ld_human(long double value, char *buf, size_t len) {
    int l;
    if (isinf(value)) {
        l = snprintf(buf, len, "%s", value > 0 ? "inf" : "-inf");
        return l;
    }
    l = snprintf(buf, len, "%.17Lf", value);
    if (l < 0 || (size_t)l + 1 > len) return -1;
    if (strchr(buf, '.') != NULL) {
        char *p = buf + l - 1;
        while (*p == '0') { p--; l--; }
        if (*p == '.') l--;
    }
    if (l == 2 && buf[0] == '-' && buf[1] == '0') { buf[0] = '0'; l = 1; }
    buf[l] = '\0';
    return l;
}

/* Returns the length written to out, or: -1 current value not a float, -2 increment not a
 * float, -3 result NaN or infinite, -4 no room. A NULL `cur` means 0. */
int ferrodis_ld_incrby(const char *cur, size_t cur_len, const char *incr, size_t incr_len,
                       char *out, size_t out_cap) {
    long double a = 0, b;
    if (cur != NULL && !parse_ld(cur, cur_len, &a)) return -1;
    if (!parse_ld(incr, incr_len, &b)) return -2;
    a += b;
    if (isnan(a) || isinf(a)) return -3;
    int l = format_ld_human(a, out, out_cap);
    return l < 0 ? -4 : l;
}

/* Parses a long double and prints it back in human form (used to canonicalise). */
int ferrodis_ld_parse_human(const char *s, size_t slen, char *out, size_t out_cap) {
    long double v;
    if (!parse_ld(s, slen, &v)) return -1;
    int l = format_ld_human(v, out, out_cap);
    return l < 0 ? -4 : l;
}

/* Redis string2d: strtod over the whole string, no leading space, no NaN, no overflow. */
int ferrodis_string2d(const char *s, size_t slen, double *dp) {
    char buf[LD_MAX_CHARS];
    char *eptr;
    if (slen == 0 || slen >= sizeof(buf)) return 0;
    memcpy(buf, s, slen);
    buf[slen] = '\0';
    errno = 0;
    *dp = strtod(buf, &eptr);
    if (isspace((unsigned char)buf[0]) || (size_t)(eptr - buf) != slen ||
        (errno == ERANGE && (*dp == HUGE_VAL || *dp == -HUGE_VAL || fpclassify(*dp) == FP_ZERO)) ||
        isnan(*dp))
        return 0;
    return 1;
}

/* printf("%.17g") of a finite double. */
int ferrodis_fmt_g17(double d, char *out, size_t out_cap) {
    return snprintf(out, out_cap, "%.17g", d);
}

/* printf with an arbitrary double conversion ("%.17g", "%.17Lg" of a double...). */
int ferrodis_fmt_double(const char *fmt, double d, char *out, size_t out_cap) {
    return snprintf(out, out_cap, fmt, d);
}
