//! Number parsing and printing with Redis's exact rules.
//!
//! Integers follow `string2ll` (strict: no '+', no leading zeros, no spaces). Floats go through
//! libc (`strtod`, `strtold`, `printf`) via `numfmt.c`, because Redis's replies and its
//! INCRBYFLOAT arithmetic are defined by what glibc prints, and Rust's own float formatting
//! differs in the last digits.

use std::os::raw::{c_char, c_int};

pub use crate::protocol::decode::parse_i64;

extern "C" {
    fn ferrodis_ld_incrby(
        cur: *const c_char,
        cur_len: usize,
        incr: *const c_char,
        incr_len: usize,
        out: *mut c_char,
        out_cap: usize,
    ) -> c_int;
    fn ferrodis_string2d(s: *const c_char, slen: usize, dp: *mut f64) -> c_int;
    fn ferrodis_fmt_g17(d: f64, out: *mut c_char, out_cap: usize) -> c_int;
    fn ferrodis_ld_parse_human(s: *const c_char, slen: usize, out: *mut c_char, cap: usize) -> c_int;
}

/// Why a long double increment failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncrFloatError {
    /// The stored value is not a valid float.
    NotFloat,
    /// The increment is not a valid float.
    BadIncrement,
    /// The result would be NaN or infinity.
    NanOrInf,
}

/// Adds `incr` to `cur` (None = 0) in C long double and prints the result the way Redis's
/// INCRBYFLOAT does (`%.17Lf`, trailing zeroes removed).
pub fn incr_by_float(cur: Option<&[u8]>, incr: &[u8]) -> Result<Vec<u8>, IncrFloatError> {
    let mut out = vec![0u8; 5200];
    let (cp, cl) = match cur {
        Some(c) => (c.as_ptr().cast::<c_char>(), c.len()),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: pointers and lengths describe live slices; the C side writes at most `out.len()`
    // bytes (snprintf with that capacity) and never keeps the pointers.
    #[allow(unsafe_code)]
    let n = unsafe {
        ferrodis_ld_incrby(
            cp,
            cl,
            incr.as_ptr().cast(),
            incr.len(),
            out.as_mut_ptr().cast(),
            out.len(),
        )
    };
    match n {
        -1 => Err(IncrFloatError::NotFloat),
        -2 => Err(IncrFloatError::BadIncrement),
        n if n < 0 => Err(IncrFloatError::NanOrInf),
        n => {
            out.truncate(n as usize);
            Ok(out)
        }
    }
}

/// Parses a long double and prints it in Redis's human form, or None if it is not a float.
pub fn long_double_human(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![0u8; 5200];
    // SAFETY: as in `incr_by_float`.
    #[allow(unsafe_code)]
    let n = unsafe {
        ferrodis_ld_parse_human(s.as_ptr().cast(), s.len(), out.as_mut_ptr().cast(), out.len())
    };
    if n < 0 {
        return None;
    }
    out.truncate(n as usize);
    Some(out)
}

/// Parses a double with Redis's `string2d` rules (libc `strtod` over the whole input; accepts
/// `inf`, `-inf`, exponents and hex floats; refuses NaN, leading spaces and overflow).
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s.len() >= 5 * 1024 {
        return None;
    }
    let mut d = 0f64;
    // SAFETY: the slice is live for the call; C copies it into its own NUL-terminated buffer.
    #[allow(unsafe_code)]
    let ok = unsafe { ferrodis_string2d(s.as_ptr().cast(), s.len(), &mut d) };
    if ok == 1 {
        Some(d)
    } else {
        None
    }
}

/// Formats like Redis's `addReplyDouble` (`%.17g`, with `inf` / `-inf`).
pub fn fmt_double_17g(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let mut out = [0u8; 64];
    // SAFETY: snprintf writes at most 64 bytes including the NUL.
    #[allow(unsafe_code)]
    let n = unsafe { ferrodis_fmt_g17(d, out.as_mut_ptr().cast(), out.len()) };
    String::from_utf8_lossy(&out[..n.clamp(0, 63) as usize]).into_owned()
}

/// Parses an unsigned-or-signed integer the way Redis's `getLongLongFromObject` does.
pub fn parse_int(s: &[u8]) -> Option<i64> {
    parse_i64(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incrbyfloat_matches_redis_long_double() {
        assert_eq!(incr_by_float(Some(b"1.1"), b"2.2").unwrap(), b"3.3");
        assert_eq!(incr_by_float(None, b"10.5").unwrap(), b"10.5");
        assert_eq!(incr_by_float(Some(b"10.5"), b"-10.5").unwrap(), b"0");
        assert_eq!(incr_by_float(Some(b"5.0e3"), b"2.0e2").unwrap(), b"5200");
        assert_eq!(incr_by_float(Some(b"abc"), b"1"), Err(IncrFloatError::NotFloat));
        assert_eq!(incr_by_float(Some(b"1"), b"x"), Err(IncrFloatError::BadIncrement));
        assert_eq!(incr_by_float(Some(b"1"), b"inf"), Err(IncrFloatError::NanOrInf));
    }

    #[test]
    fn doubles_print_like_printf() {
        assert_eq!(fmt_double_17g(1.1), "1.1000000000000001");
        assert_eq!(fmt_double_17g(3.0), "3");
        assert_eq!(fmt_double_17g(f64::NEG_INFINITY), "-inf");
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
    }
}
