//! Argument parsing helpers shared by all command families, with Redis's error for each kind
//! of bad argument.

use crate::error::CmdError;
use crate::util::num;

/// Case-insensitive comparison of an argument with an ASCII keyword.
#[inline]
pub fn is(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

/// Parses an integer argument (`ERR value is not an integer or out of range`).
pub fn int(arg: &[u8]) -> Result<i64, CmdError> {
    num::parse_i64(arg).ok_or(CmdError::NotInteger)
}

/// Parses a non-negative integer argument, with Redis's "out of range" wording when negative.
pub fn uint(arg: &[u8], err_negative: &'static str) -> Result<i64, CmdError> {
    let n = int(arg)?;
    if n < 0 {
        return Err(CmdError::raw(err_negative));
    }
    Ok(n)
}

/// Parses a float argument (`ERR value is not a valid float`).
pub fn float(arg: &[u8]) -> Result<f64, CmdError> {
    num::parse_f64(arg).ok_or(CmdError::NotFloat)
}

/// Lossy UTF-8 view of an argument, for messages.
pub fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// Lowercase name of the command being run (for arity / expire-time messages).
pub fn cmd_name(argv: &[&[u8]]) -> String {
    text(argv[0]).to_lowercase()
}

/// Parses a blocking timeout in seconds (BLPOP, BZPOPMIN, ...) into milliseconds, 0 meaning
/// forever. Like Redis 7.0 it rounds up, and a value too large for a millisecond count is
/// reported as negative (that is what Redis's cast makes of it).
pub fn timeout_ms(arg: &[u8]) -> Result<u64, CmdError> {
    let f = num::parse_f64(arg)
        .filter(|f| !f.is_nan())
        .ok_or(CmdError::raw("ERR timeout is not a float or out of range"))?;
    let ms = (f * 1000.0).ceil();
    if !(0.0..9.2e18).contains(&ms) {
        return Err(CmdError::raw("ERR timeout is negative"));
    }
    Ok(ms as u64)
}
