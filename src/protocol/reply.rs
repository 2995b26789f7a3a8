//! Reply encoding, written straight into the connection's output buffer.
//!
//! Handlers call these methods the way Redis's commands call `addReply*`: there is no
//! intermediate reply tree, so a pipelined batch of GETs costs one buffer append per reply. Each
//! method encodes for the client's protocol version (RESP2 or RESP3, chosen by `HELLO`), so the
//! type distinctions of RESP3 (maps, sets, doubles, null, booleans) are made here once and
//! handlers never branch on the protocol.

use bytes::{BufMut, BytesMut};

/// Protocol version negotiated with `HELLO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resp {
    V2,
    V3,
}

/// An output buffer plus the protocol it encodes for.
#[derive(Debug)]
pub struct ReplyBuf {
    pub buf: BytesMut,
    pub resp: Resp,
}

impl ReplyBuf {
    pub fn new(resp: Resp) -> Self {
        ReplyBuf { buf: BytesMut::with_capacity(16 * 1024), resp }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    /// Appends pre-encoded protocol bytes.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn ok(&mut self) {
        self.raw(b"+OK\r\n");
    }

    /// `+<s>\r\n`. Callers guarantee `s` has no CR or LF.
    pub fn simple(&mut self, s: &str) {
        self.simple_bytes(s.as_bytes());
    }

    pub fn simple_bytes(&mut self, s: &[u8]) {
        self.buf.reserve(s.len() + 3);
        self.buf.put_u8(b'+');
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `-<msg>\r\n`. `msg` carries its own code (`ERR ...`, `WRONGTYPE ...`); one without a code
    /// (first byte not uppercase-word) gets `ERR ` like Redis's `addReplyError`. Newlines are
    /// replaced by spaces so an error can never desynchronise the stream.
    pub fn error(&mut self, msg: &str) {
        self.buf.put_u8(b'-');
        let start = self.buf.len();
        self.buf.extend_from_slice(msg.as_bytes());
        for b in &mut self.buf[start..] {
            if *b == b'\r' || *b == b'\n' {
                *b = b' ';
            }
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn integer(&mut self, n: i64) {
        self.prefixed(b':', n);
    }

    pub fn bulk(&mut self, data: &[u8]) {
        // Most replies are short: assemble them on the stack and append once, instead of paying
        // four small `memcpy` calls (header, digits, payload, CRLF), which showed up at over 10%
        // of CPU in pipelined GET benchmarks.
        const SMALL: usize = 64;
        if data.len() <= SMALL {
            let mut tmp = [0u8; SMALL + 8];
            tmp[0] = b'$';
            let mut n = 1;
            let len = data.len();
            if len >= 10 {
                tmp[n] = b'0' + (len / 10) as u8;
                n += 1;
            }
            tmp[n] = b'0' + (len % 10) as u8;
            tmp[n + 1] = b'\r';
            tmp[n + 2] = b'\n';
            n += 3;
            tmp[n..n + len].copy_from_slice(data);
            n += len;
            tmp[n] = b'\r';
            tmp[n + 1] = b'\n';
            self.buf.extend_from_slice(&tmp[..n + 2]);
            return;
        }
        self.buf.reserve(data.len() + 16);
        self.prefixed(b'$', data.len() as i64);
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn bulk_str(&mut self, s: &str) {
        self.bulk(s.as_bytes());
    }

    /// A bulk string holding the decimal form of `n` (e.g. INCRBYFLOAT-style integer strings).
    pub fn bulk_int(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        self.bulk(b.format(n).as_bytes());
    }

    /// Null bulk string in RESP2, `_` in RESP3.
    pub fn null(&mut self) {
        match self.resp {
            Resp::V2 => self.raw(b"$-1\r\n"),
            Resp::V3 => self.raw(b"_\r\n"),
        }
    }

    /// Null array in RESP2, `_` in RESP3.
    pub fn null_array(&mut self) {
        match self.resp {
            Resp::V2 => self.raw(b"*-1\r\n"),
            Resp::V3 => self.raw(b"_\r\n"),
        }
    }

    pub fn array(&mut self, len: usize) {
        self.prefixed(b'*', len as i64);
    }

    /// A map of `len` pairs: `%len` in RESP3, a flat array of `2*len` in RESP2.
    pub fn map(&mut self, len: usize) {
        match self.resp {
            Resp::V2 => self.prefixed(b'*', 2 * len as i64),
            Resp::V3 => self.prefixed(b'%', len as i64),
        }
    }

    /// A set: `~len` in RESP3, an array in RESP2.
    pub fn set(&mut self, len: usize) {
        match self.resp {
            Resp::V2 => self.prefixed(b'*', len as i64),
            Resp::V3 => self.prefixed(b'~', len as i64),
        }
    }

    /// An out-of-band push frame: `>len` in RESP3, an array in RESP2 (pub/sub messages).
    pub fn push(&mut self, len: usize) {
        match self.resp {
            Resp::V2 => self.prefixed(b'*', len as i64),
            Resp::V3 => self.prefixed(b'>', len as i64),
        }
    }

    /// A double, printed with `%.17g` like Redis 7.0: a bulk string in RESP2, `,` in RESP3.
    pub fn double(&mut self, d: f64) {
        let s = crate::util::num::fmt_double_17g(d);
        match self.resp {
            Resp::V2 => self.bulk(s.as_bytes()),
            Resp::V3 => {
                self.buf.put_u8(b',');
                self.buf.extend_from_slice(s.as_bytes());
                self.buf.extend_from_slice(b"\r\n");
            }
        }
    }

    pub fn boolean(&mut self, b: bool) {
        match self.resp {
            Resp::V2 => self.raw(if b { b":1\r\n" } else { b":0\r\n" }),
            Resp::V3 => self.raw(if b { b"#t\r\n" } else { b"#f\r\n" }),
        }
    }

    /// Verbatim string (`=len\r\ntxt:...`) in RESP3, a bulk string in RESP2. `format` is the
    /// three-letter type (`txt`, `mkd`).
    pub fn verbatim(&mut self, format: &str, text: &[u8]) {
        match self.resp {
            Resp::V2 => self.bulk(text),
            Resp::V3 => {
                self.prefixed(b'=', text.len() as i64 + 4);
                self.buf.extend_from_slice(&format.as_bytes()[..3]);
                self.buf.put_u8(b':');
                self.buf.extend_from_slice(text);
                self.buf.extend_from_slice(b"\r\n");
            }
        }
    }

    /// An array of bulk strings.
    pub fn bulk_array<I, T>(&mut self, items: I)
    where
        I: ExactSizeIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.array(items.len());
        for it in items {
            self.bulk(it.as_ref());
        }
    }

    /// Reserves space for an array header whose length is known only after its elements are
    /// written (Redis's deferred length). Returns a marker for [`set_deferred_len`].
    pub fn defer_len(&mut self) -> DeferredLen {
        let at = self.buf.len();
        // Room for the largest header we patch in: type byte + 20 digits + CRLF.
        self.buf.extend_from_slice(&[0u8; 23]);
        DeferredLen { at }
    }

    /// Writes the deferred header: `kind` is `*`, `%`, or `~` (mapped for RESP2 by the caller
    /// through [`array_kind`]), and moves the elements down over the unused reservation.
    pub fn set_deferred_len(&mut self, d: DeferredLen, kind: u8, len: usize) {
        let mut hdr = Vec::with_capacity(23);
        hdr.push(kind);
        hdr.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
        hdr.extend_from_slice(b"\r\n");
        let body_start = d.at + 23;
        let body_len = self.buf.len() - body_start;
        self.buf[d.at..d.at + hdr.len()].copy_from_slice(&hdr);
        self.buf.copy_within(body_start.., d.at + hdr.len());
        self.buf.truncate(d.at + hdr.len() + body_len);
    }

    /// Header byte and length multiplier for a deferred map (`%` in RESP3, `*` and doubled
    /// length in RESP2).
    pub fn map_kind(&self) -> (u8, usize) {
        match self.resp {
            Resp::V2 => (b'*', 2),
            Resp::V3 => (b'%', 1),
        }
    }

    pub fn set_kind(&self) -> u8 {
        match self.resp {
            Resp::V2 => b'*',
            Resp::V3 => b'~',
        }
    }

    fn prefixed(&mut self, kind: u8, n: i64) {
        // One append of `<kind><digits>\r\n` assembled on the stack (see `bulk`).
        let mut b = itoa::Buffer::new();
        let s = b.format(n).as_bytes();
        let mut tmp = [0u8; 24];
        tmp[0] = kind;
        tmp[1..1 + s.len()].copy_from_slice(s);
        tmp[1 + s.len()] = b'\r';
        tmp[2 + s.len()] = b'\n';
        self.buf.extend_from_slice(&tmp[..3 + s.len()]);
    }
}

/// Position of a header reserved by [`ReplyBuf::defer_len`].
#[derive(Debug, Clone, Copy)]
pub struct DeferredLen {
    at: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_both_protocols() {
        let mut r2 = ReplyBuf::new(Resp::V2);
        let mut r3 = ReplyBuf::new(Resp::V3);
        for r in [&mut r2, &mut r3] {
            r.null();
            r.map(1);
            r.double(1.5);
            r.boolean(true);
            r.verbatim("txt", b"hi");
        }
        assert_eq!(&r2.buf[..], b"$-1\r\n*2\r\n$3\r\n1.5\r\n:1\r\n$2\r\nhi\r\n");
        assert_eq!(&r3.buf[..], b"_\r\n%1\r\n,1.5\r\n#t\r\n=6\r\ntxt:hi\r\n");
    }

    #[test]
    fn deferred_length_is_patched() {
        let mut r = ReplyBuf::new(Resp::V2);
        r.integer(7);
        let d = r.defer_len();
        r.bulk(b"a");
        r.bulk(b"b");
        r.set_deferred_len(d, b'*', 2);
        assert_eq!(&r.buf[..], b":7\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    }

    #[test]
    fn errors_never_contain_newlines() {
        let mut r = ReplyBuf::new(Resp::V2);
        r.error("ERR bad\r\nthing");
        assert_eq!(&r.buf[..], b"-ERR bad  thing\r\n");
    }
}

#[cfg(test)]
mod bulk_tests {
    use super::*;

    #[test]
    fn bulk_lengths_across_the_small_path_boundary() {
        for len in [0usize, 1, 9, 10, 63, 64, 65, 99, 100, 1000] {
            let data = vec![b'x'; len];
            let mut r = ReplyBuf::new(Resp::V2);
            r.bulk(&data);
            let mut expected = format!("${len}\r\n").into_bytes();
            expected.extend_from_slice(&data);
            expected.extend_from_slice(b"\r\n");
            assert_eq!(&r.buf[..], &expected[..], "len {len}");
        }
        let mut r = ReplyBuf::new(Resp::V2);
        r.integer(i64::MIN);
        r.integer(0);
        assert_eq!(&r.buf[..], b":-9223372036854775808\r\n:0\r\n");
    }
}
