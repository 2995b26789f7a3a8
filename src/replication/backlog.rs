//! The replication backlog: the last `repl-backlog-size` bytes of the write stream, from which
//! a reconnecting replica is served a partial resync (`+CONTINUE`).

use std::collections::VecDeque;

/// A ring of the newest stream bytes. Offsets are absolute stream positions: `end` is the
/// offset just past the newest byte held (the journal offset), `end - len` the oldest.
#[derive(Debug)]
pub struct Backlog {
    buf: VecDeque<u8>,
    size: usize,
    end: u64,
}

impl Backlog {
    /// An empty backlog starting at stream offset `end`.
    pub fn new(size: usize, end: u64) -> Self {
        Backlog { buf: VecDeque::new(), size: size.max(1), end }
    }

    /// Appends stream bytes, dropping the oldest beyond the size.
    pub fn push(&mut self, bytes: &[u8]) {
        self.end += bytes.len() as u64;
        if bytes.len() >= self.size {
            self.buf.clear();
            self.buf.extend(&bytes[bytes.len() - self.size..]);
            return;
        }
        let over = (self.buf.len() + bytes.len()).saturating_sub(self.size);
        self.buf.drain(..over);
        self.buf.extend(bytes);
    }

    /// Resizes (CONFIG SET repl-backlog-size), keeping the newest bytes that fit.
    pub fn resize(&mut self, size: usize) {
        self.size = size.max(1);
        let over = self.buf.len().saturating_sub(self.size);
        self.buf.drain(..over);
    }

    /// Redis's `repl_backlog_first_byte_offset`: 1-based offset of the oldest byte held.
    pub fn first_byte_offset(&self) -> u64 {
        self.end - self.buf.len() as u64 + 1
    }

    pub fn histlen(&self) -> usize {
        self.buf.len()
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// The bytes from 1-based offset `from` (a replica's `PSYNC <id> <from>`) to the end, or
    /// `None` if they are no longer (or not yet) all held.
    pub fn since(&self, from: u64) -> Option<Vec<u8>> {
        if from < self.first_byte_offset() || from > self.end + 1 {
            return None;
        }
        let skip = (from - self.first_byte_offset()) as usize;
        Some(self.buf.iter().skip(skip).copied().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_bytes_and_serves_offsets_inside() {
        let mut b = Backlog::new(8, 100);
        b.push(b"abcdef");
        assert_eq!(b.first_byte_offset(), 101);
        assert_eq!(b.since(103).unwrap(), b"cdef");
        assert_eq!(b.since(107).unwrap(), b"");
        b.push(b"ghijk");
        assert_eq!(b.histlen(), 8);
        assert_eq!(b.first_byte_offset(), 104);
        assert_eq!(b.since(104).unwrap(), b"defghijk");
        assert!(b.since(103).is_none());
        assert!(b.since(113).is_none());
        b.push(b"0123456789");
        assert_eq!(b.since(114).unwrap(), b"23456789");
    }
}
