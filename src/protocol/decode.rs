//! Incremental request parser for RESP multibulk and inline commands.
//!
//! The parser never consumes the buffer itself: it records argument ranges into the caller's
//! buffer, so a pipelined batch is parsed and executed without copying a single payload byte.
//! Only once the whole batch is done does the connection drop the consumed prefix. State is kept
//! across reads, so a request split at any byte boundary is resumed where it stopped instead of
//! being re-parsed from its first byte (which would be quadratic for large multibulks).

use std::ops::Range;

/// Longest line (multibulk count, bulk length, inline request) accepted before a newline is
/// seen; Redis's `PROTO_INLINE_MAX_SIZE`.
pub const INLINE_MAX_SIZE: usize = 64 * 1024;

/// A malformed request. The connection replies with `-ERR <message>` and then closes, like Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl ProtocolError {
    fn new(msg: &str) -> Self {
        ProtocolError(msg.to_string())
    }
}

/// Where the arguments of the last parsed request live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgSource {
    /// Ranges into the caller's buffer ([`RequestParser::ranges`]).
    Buffer,
    /// Owned, unquoted copies ([`RequestParser::inline_args`]); inline requests need unescaping.
    Inline,
}

/// Argument-table capacity kept between requests; more is released once a request is done.
const KEEP_ARGS: usize = 4096;

/// Resumable parser state for one connection.
#[derive(Debug)]
pub struct RequestParser {
    /// Start of the first byte not yet handed out as part of a complete request.
    consumed: usize,
    /// Parse position inside the request being read.
    pos: usize,
    /// Arguments still expected for the multibulk in progress (0 = none in progress).
    multibulk_left: usize,
    /// Length of the bulk whose header was read but whose payload has not fully arrived.
    bulk_len: Option<usize>,
    ranges: Vec<Range<usize>>,
    inline_args: Vec<Vec<u8>>,
    source: ArgSource,
    /// `proto-max-bulk-len`.
    pub max_bulk_len: usize,
}

impl Default for RequestParser {
    fn default() -> Self {
        Self::new(512 * 1024 * 1024)
    }
}

impl RequestParser {
    pub fn new(max_bulk_len: usize) -> Self {
        RequestParser {
            consumed: 0,
            pos: 0,
            multibulk_left: 0,
            bulk_len: None,
            ranges: Vec::with_capacity(8),
            inline_args: Vec::new(),
            source: ArgSource::Buffer,
            max_bulk_len,
        }
    }

    /// Parses the next request from `buf` (the whole unconsumed input of the connection, of
    /// which the first [`consumed`](Self::consumed) bytes were already handed out).
    ///
    /// Returns `Ok(true)` when a complete request with at least one argument is ready (see
    /// [`args_source`](Self::args_source)), `Ok(false)` when more input is needed. Empty requests
    /// (`*0`, `*-1`, blank inline lines) are skipped silently, as Redis does. `auth_required`
    /// applies Redis's tighter limits to unauthenticated clients.
    pub fn parse(&mut self, buf: &[u8], auth_required: bool) -> Result<bool, ProtocolError> {
        loop {
            if self.multibulk_left == 0 {
                if self.pos >= buf.len() {
                    return Ok(false);
                }
                if buf[self.pos] != b'*' {
                    match self.parse_inline(buf)? {
                        Some(ready) => return Ok(ready),
                        None => continue,
                    }
                }
                match self.parse_multibulk_header(buf, auth_required)? {
                    None => return Ok(false),
                    Some(0) => {
                        self.consumed = self.pos;
                        continue;
                    }
                    Some(n) => {
                        self.multibulk_left = n;
                        self.ranges.clear();
                    }
                }
            }
            if !self.parse_bulks(buf, auth_required)? {
                return Ok(false);
            }
            self.source = ArgSource::Buffer;
            self.consumed = self.pos;
            return Ok(true);
        }
    }

    /// Reads `*<count>\r\n`. Returns the count (0 for empty or negative), or `None` if the line
    /// is not complete yet.
    fn parse_multibulk_header(
        &mut self,
        buf: &[u8],
        auth_required: bool,
    ) -> Result<Option<usize>, ProtocolError> {
        let Some(cr) = find_byte(&buf[self.pos..], b'\r') else {
            if buf.len() - self.pos > INLINE_MAX_SIZE {
                return Err(ProtocolError::new("Protocol error: too big mbulk count string"));
            }
            return Ok(None);
        };
        let line_end = self.pos + cr;
        if line_end + 1 >= buf.len() {
            return Ok(None); // the '\n' has not arrived
        }
        let n = match parse_i64(&buf[self.pos + 1..line_end]) {
            Some(n) if n <= i64::from(i32::MAX) => n,
            _ => return Err(ProtocolError::new("Protocol error: invalid multibulk length")),
        };
        if n > 10 && auth_required {
            return Err(ProtocolError::new("Protocol error: unauthenticated multibulk length"));
        }
        self.pos = line_end + 2;
        Ok(Some(if n <= 0 { 0 } else { n as usize }))
    }

    /// Reads as many `$<len>\r\n<payload>\r\n` arguments as are available. Returns true once the
    /// multibulk in progress is complete.
    fn parse_bulks(&mut self, buf: &[u8], auth_required: bool) -> Result<bool, ProtocolError> {
        while self.multibulk_left > 0 {
            let len = match self.bulk_len {
                Some(len) => len,
                None => {
                    let Some(cr) = find_byte(&buf[self.pos..], b'\r') else {
                        if buf.len() - self.pos > INLINE_MAX_SIZE {
                            return Err(ProtocolError::new(
                                "Protocol error: too big bulk count string",
                            ));
                        }
                        return Ok(false);
                    };
                    let line_end = self.pos + cr;
                    if line_end + 1 >= buf.len() {
                        return Ok(false);
                    }
                    if buf[self.pos] != b'$' {
                        return Err(ProtocolError(format!(
                            "Protocol error: expected '$', got '{}'",
                            char::from(buf[self.pos])
                        )));
                    }
                    let len = match parse_i64(&buf[self.pos + 1..line_end]) {
                        Some(n) if n >= 0 && (n as u64) <= self.max_bulk_len as u64 => n as usize,
                        _ => return Err(ProtocolError::new("Protocol error: invalid bulk length")),
                    };
                    if len > 16384 && auth_required {
                        return Err(ProtocolError::new(
                            "Protocol error: unauthenticated bulk length",
                        ));
                    }
                    self.pos = line_end + 2;
                    self.bulk_len = Some(len);
                    len
                }
            };
            // Like Redis, the two bytes after the payload are skipped without being checked.
            if buf.len() - self.pos < len + 2 {
                return Ok(false);
            }
            self.ranges.push(self.pos..self.pos + len);
            self.pos += len + 2;
            self.bulk_len = None;
            self.multibulk_left -= 1;
        }
        Ok(true)
    }

    /// Reads one inline line. Returns `Ok(None)` for a blank line (skipped, like Redis).
    fn parse_inline(&mut self, buf: &[u8]) -> Result<Option<bool>, ProtocolError> {
        let rest = &buf[self.pos..];
        // Redis looks for the newline with strchr(), which stops at a NUL byte: an inline
        // request with a NUL before its newline never completes (until the line limit).
        let nl = rest.iter().position(|&c| c == b'\n' || c == 0).filter(|&i| rest[i] == b'\n');
        let Some(nl) = nl else {
            if rest.len() > INLINE_MAX_SIZE {
                return Err(ProtocolError::new("Protocol error: too big inline request"));
            }
            return Ok(Some(false));
        };
        let line = if nl > 0 && rest[nl - 1] == b'\r' { &rest[..nl - 1] } else { &rest[..nl] };
        let args = super::inline::split_args(line)
            .ok_or_else(|| ProtocolError::new("Protocol error: unbalanced quotes in request"))?;
        self.pos += nl + 1;
        self.consumed = self.pos;
        if args.is_empty() {
            return Ok(None);
        }
        self.inline_args = args;
        self.source = ArgSource::Inline;
        Ok(Some(true))
    }

    /// Whether the last complete request's arguments are buffer ranges or owned inline args.
    pub fn args_source(&self) -> ArgSource {
        self.source
    }

    /// Argument ranges of the last complete multibulk request, into the caller's buffer.
    pub fn ranges(&self) -> &[Range<usize>] {
        &self.ranges
    }

    /// Arguments of the last complete inline request.
    pub fn inline_args(&self) -> &[Vec<u8>] {
        &self.inline_args
    }

    /// Bytes at the front of the buffer that belong to requests already handed out.
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// Bytes buffered for the request still being read (for the query buffer limit).
    pub fn pending(&self, buf_len: usize) -> usize {
        buf_len - self.consumed
    }

    /// Tells the parser that the caller dropped the first `n` bytes (at most `consumed`) from the
    /// front of its buffer, so recorded positions shift down.
    pub fn discard_front(&mut self, n: usize) {
        debug_assert!(n <= self.consumed);
        self.consumed -= n;
        self.pos -= n;
        if self.multibulk_left > 0 {
            // Arguments of the request still being read sit after `consumed`.
            for r in &mut self.ranges {
                *r = r.start - n..r.end - n;
            }
        } else {
            self.ranges.clear();
            // One huge request (an MSET or SADD of 100k arguments) must not leave its argument
            // table allocated for the life of the connection.
            if self.ranges.capacity() > KEEP_ARGS {
                self.ranges = Vec::new();
            }
            if self.inline_args.capacity() > KEEP_ARGS {
                self.inline_args = Vec::new();
            }
        }
    }

    /// True if a request is partly parsed (used by callers deciding whether a blank `parse`
    /// result left unread bytes).
    pub fn in_progress(&self) -> bool {
        self.multibulk_left > 0
    }
}

fn find_byte(hay: &[u8], b: u8) -> Option<usize> {
    hay.iter().position(|&c| c == b)
}

/// Parses a decimal i64 with Redis's `string2ll` strictness: optional '-', no '+', no leading
/// zeros, no spaces, no overflow.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = if s[0] == b'-' { (true, &s[1..]) } else { (false, s) };
    if digits.is_empty() || digits[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_of(p: &RequestParser, buf: &[u8]) -> Vec<Vec<u8>> {
        match p.args_source() {
            ArgSource::Buffer => p.ranges().iter().map(|r| buf[r.clone()].to_vec()).collect(),
            ArgSource::Inline => p.inline_args().to_vec(),
        }
    }

    #[test]
    fn parses_multibulk_split_at_every_byte() {
        let req = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        for split in 0..req.len() {
            let mut p = RequestParser::default();
            let mut buf = req[..split].to_vec();
            let done = p.parse(&buf, false).unwrap();
            if !done {
                buf.extend_from_slice(&req[split..]);
                assert!(p.parse(&buf, false).unwrap(), "split at {split}");
            }
            assert_eq!(args_of(&p, &buf), vec![b"SET".to_vec(), b"k".to_vec(), b"hello".to_vec()]);
            assert_eq!(p.consumed(), req.len());
        }
    }

    #[test]
    fn parses_pipeline_and_discards_front() {
        let buf = b"*1\r\n$4\r\nPING\r\nECHO hi\r\n*0\r\n*1\r\n$4\r\nPING\r\n".to_vec();
        let mut p = RequestParser::default();
        assert!(p.parse(&buf, false).unwrap());
        assert_eq!(args_of(&p, &buf), vec![b"PING".to_vec()]);
        assert!(p.parse(&buf, false).unwrap());
        assert_eq!(args_of(&p, &buf), vec![b"ECHO".to_vec(), b"hi".to_vec()]);
        let n = p.consumed();
        let buf = buf[n..].to_vec();
        p.discard_front(n);
        assert!(p.parse(&buf, false).unwrap());
        assert_eq!(args_of(&p, &buf), vec![b"PING".to_vec()]);
        assert!(!p.parse(&buf, false).unwrap());
        assert_eq!(p.consumed(), buf.len());
    }

    #[test]
    fn rejects_bad_lengths_with_redis_messages() {
        let cases: &[(&[u8], &str)] = &[
            (b"*3000000000\r\n", "Protocol error: invalid multibulk length"),
            (b"*abc\r\n", "Protocol error: invalid multibulk length"),
            (b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
            (b"*1\r\n$600000000\r\n", "Protocol error: invalid bulk length"),
            (b"*1\r\nfoo\r\n", "Protocol error: expected '$', got 'f'"),
            (b"SET \"k v\r\n", "Protocol error: unbalanced quotes in request"),
        ];
        for (input, msg) in cases {
            let err = RequestParser::default().parse(input, false).unwrap_err();
            assert_eq!(err.0, *msg, "input {:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn unauthenticated_clients_get_tight_limits() {
        let err = RequestParser::default().parse(b"*20\r\n", true).unwrap_err();
        assert_eq!(err.0, "Protocol error: unauthenticated multibulk length");
        let err = RequestParser::default().parse(b"*1\r\n$20000\r\n", true).unwrap_err();
        assert_eq!(err.0, "Protocol error: unauthenticated bulk length");
    }

    #[test]
    fn long_lines_without_newline_are_refused() {
        let mut big = vec![b'*'];
        big.extend(std::iter::repeat(b'1').take(INLINE_MAX_SIZE + 1));
        let err = RequestParser::default().parse(&big, false).unwrap_err();
        assert_eq!(err.0, "Protocol error: too big mbulk count string");
        let big = vec![b'a'; INLINE_MAX_SIZE + 1];
        let err = RequestParser::default().parse(&big, false).unwrap_err();
        assert_eq!(err.0, "Protocol error: too big inline request");
    }

    #[test]
    fn parse_i64_is_strict() {
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        for bad in [&b"9223372036854775808"[..], b"01", b"+1", b" 1", b"", b"-", b"-0", b"1a"] {
            assert_eq!(parse_i64(bad), None, "{:?}", bad);
        }
    }
}

/// Peeks at the complete multibulk request starting at `from`, without parsing it for real:
/// returns the byte range of its second argument (for most commands, the first key) and the
/// offset just past the request. `None` if the request is not a complete, well-formed multibulk
/// of at least two arguments: the caller (prefetching the keys of a pipelined batch) then simply
/// stops looking ahead; the real parser judges the bytes later.
pub fn peek_key(buf: &[u8], from: usize) -> Option<(std::ops::Range<usize>, usize)> {
    /// Reads `<prefix><decimal>\r\n` at `at`; returns the number and the offset after it.
    fn header(buf: &[u8], at: usize, prefix: u8) -> Option<(usize, usize)> {
        if *buf.get(at)? != prefix {
            return None;
        }
        let mut n = 0usize;
        let mut i = at + 1;
        while let Some(&c) = buf.get(i) {
            if c == b'\r' {
                return (i > at + 1 && buf.get(i + 1) == Some(&b'\n')).then_some((n, i + 2));
            }
            if !c.is_ascii_digit() || i - at > 11 {
                return None;
            }
            n = n * 10 + usize::from(c - b'0');
            i += 1;
        }
        None
    }
    let (argc, mut at) = header(buf, from, b'*')?;
    if argc < 2 {
        return None;
    }
    let mut key = 0..0;
    for arg in 0..argc {
        let (len, start) = header(buf, at, b'$')?;
        let end = start.checked_add(len)?;
        if buf.get(end..end + 2)? != b"\r\n" {
            return None;
        }
        if arg == 1 {
            key = start..end;
        }
        at = end + 2;
    }
    Some((key, at))
}

#[cfg(test)]
mod peek_tests {
    use super::peek_key;

    #[test]
    fn finds_the_second_argument_of_complete_requests_only() {
        let buf = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk";
        let (key, next) = peek_key(buf, 0).unwrap();
        assert_eq!(&buf[key], b"key");
        assert_eq!(&buf[next..next + 2], b"*2");
        assert_eq!(peek_key(buf, next), None, "cut request");
        assert_eq!(peek_key(b"*1\r\n$4\r\nPING\r\n", 0), None, "no key");
        assert_eq!(peek_key(b"PING\r\n", 0), None, "inline");
        assert_eq!(peek_key(b"*2\r\n$99999999999999999999\r\n", 0), None, "absurd length");
        assert_eq!(peek_key(b"*2\r\n$3\r\nGET\r\n$1\r\nkX\n", 0), None, "bad terminator");
    }
}
