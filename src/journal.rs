//! The single ordered write stream.
//!
//! Every write a command makes is recorded here after it executes, as a deterministic command
//! (relative expiries already made absolute, floats already computed, random picks already
//! resolved) in RESP form, preceded by a `SELECT` whenever the database changes. The stream has a
//! monotonically increasing byte offset. The append-only log and the replicas are fed from this
//! one stream, so "applied order == logged order == replicated order" holds by construction: the
//! keyspace has exactly one writer (the event loop) and it appends here before it replies.
//!
//! A command that writes more than one effect (lazy expiry of a key it touched plus its own
//! write, or a multi-key rewrite) is wrapped in `MULTI`/`EXEC` so consumers apply it atomically.

use std::ops::Range;

use bytes::BytesMut;

/// The effects of one command, collected while it runs.
#[derive(Debug, Default)]
pub struct Effects {
    buf: Vec<u8>,
    items: Vec<(usize, Range<usize>)>,
}

impl Effects {
    /// Records `argv` as an effect on database `db`.
    pub fn push<A: AsRef<[u8]>>(&mut self, db: usize, argv: &[A]) {
        let start = self.buf.len();
        encode_command(&mut self.buf, argv);
        self.items.push((db, start..self.buf.len()));
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.items.clear();
    }

    /// Iterates over (db, RESP-encoded command).
    pub fn iter(&self) -> impl Iterator<Item = (usize, &[u8])> {
        self.items.iter().map(|(db, r)| (*db, &self.buf[r.clone()]))
    }
}

/// Appends `argv` as a RESP multibulk.
pub fn encode_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, argv: &[A]) {
    let mut ib = itoa::Buffer::new();
    out.push(b'*');
    out.extend_from_slice(ib.format(argv.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in argv {
        let a = a.as_ref();
        out.push(b'$');
        out.extend_from_slice(ib.format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// A live reader of the stream, handed every byte as it is appended (the replication backlog
/// and the replicas' output, see `crate::replication`). Unlike the pending buffer, a tap is
/// fed synchronously, so a reply can only be sent after its effects reached the replicas'
/// buffers.
pub trait Tap: std::fmt::Debug {
    fn feed(&self, bytes: &[u8]);
}

/// The stream itself.
#[derive(Debug, Default)]
pub struct Journal {
    /// Replication's reader of the stream, if replication is active.
    tap: Option<std::rc::Rc<dyn Tap>>,
    /// Bytes ever appended (the replication offset once replication exists).
    offset: u64,
    /// Database the stream last selected; `None` forces a SELECT before the next effect.
    selected_db: Option<usize>,
    /// Bytes appended since consumers last drained them.
    pending: BytesMut,
    /// Number of attached consumers. With none, nothing is encoded and the offset stays put,
    /// as Redis does when it has neither an AOF nor replicas.
    consumers: usize,
    /// Stream bytes that went to the tap only ([`Journal::feed_raw`]) since the pending bytes
    /// were last taken, with the pending length at the time: the append-only log records
    /// where they sit (`replication::aof_resync`).
    raw_marks: Vec<(usize, Vec<u8>)>,
    /// Some of those bytes were not kept (too many or too long).
    raw_lost: bool,
}

/// Longest tap-only write kept in `raw_marks`, and how many are kept.
const RAW_MARK_MAX: usize = crate::aof::format::GAP_MAX;
const RAW_MARKS_KEPT: usize = 4096;

impl Journal {
    pub fn new() -> Self {
        Journal::default()
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn is_active(&self) -> bool {
        self.consumers > 0 || self.tap.is_some()
    }

    /// Registers a consumer (AOF, replication backlog, test capture).
    pub fn attach(&mut self) {
        self.consumers += 1;
    }

    pub fn detach(&mut self) {
        self.consumers = self.consumers.saturating_sub(1);
        if self.consumers == 0 {
            self.pending.clear();
            self.raw_marks.clear();
            self.raw_lost = true;
        }
    }

    /// Forces the next effect to be preceded by SELECT (a new consumer joined mid-stream).
    pub fn reset_selected_db(&mut self) {
        self.selected_db = None;
    }

    /// Appends one command's effects, wrapping several in MULTI/EXEC.
    pub fn append(&mut self, effects: &Effects) {
        if !self.is_active() || effects.is_empty() {
            return;
        }
        let wrap = effects.len() > 1;
        if wrap {
            let first_db = effects.items[0].0;
            self.select(first_db);
            self.raw(b"*1\r\n$5\r\nMULTI\r\n");
        }
        for (db, bytes) in effects.iter() {
            self.select(db);
            self.raw(bytes);
        }
        if wrap {
            self.raw(b"*1\r\n$4\r\nEXEC\r\n");
        }
    }

    fn select(&mut self, db: usize) {
        if self.selected_db != Some(db) {
            let mut buf = Vec::with_capacity(32);
            encode_command(&mut buf, &[b"SELECT".as_slice(), itoa::Buffer::new().format(db).as_bytes()]);
            self.raw(&buf);
            self.selected_db = Some(db);
        }
    }

    fn raw(&mut self, bytes: &[u8]) {
        if self.consumers > 0 {
            self.pending.extend_from_slice(bytes);
        }
        if let Some(tap) = &self.tap {
            tap.feed(bytes);
        }
        self.offset += bytes.len() as u64;
    }

    /// Takes the bytes appended since the last call.
    pub fn take_pending(&mut self) -> BytesMut {
        self.pending.split()
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }
}

// Replication's hooks (see `crate::replication`).
impl Journal {
    /// Installs (or removes) the replication tap; returns the previous one.
    pub fn set_tap(&mut self, tap: Option<std::rc::Rc<dyn Tap>>) -> Option<std::rc::Rc<dyn Tap>> {
        std::mem::replace(&mut self.tap, tap)
    }

    /// Moves the offset (a replica adopting its master's offset after a full sync).
    pub fn set_offset(&mut self, offset: u64) {
        self.offset = offset;
    }

    /// Passes already encoded stream bytes to the tap and counts them in the offset, without
    /// going to the pending buffer: a replica proxying its master's stream to its own replicas,
    /// or a master's `REPLCONF GETACK` / `PING` to its replicas.
    pub fn feed_raw(&mut self, bytes: &[u8]) {
        if let Some(tap) = &self.tap {
            tap.feed(bytes);
        }
        self.offset += bytes.len() as u64;
        if self.consumers > 0 {
            if bytes.len() <= RAW_MARK_MAX && self.raw_marks.len() < RAW_MARKS_KEPT {
                self.raw_marks.push((self.pending.len(), bytes.to_vec()));
            } else {
                self.raw_lost = true;
            }
        }
    }

    /// Takes the tap-only writes recorded since the last call (see `raw_marks`) and whether
    /// any was lost; called with [`Journal::take_pending`].
    pub fn take_raw_marks(&mut self) -> (Vec<(usize, Vec<u8>)>, bool) {
        (std::mem::take(&mut self.raw_marks), std::mem::replace(&mut self.raw_lost, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_and_wraps_multi_effect_commands() {
        let mut j = Journal::new();
        j.attach();
        let mut e = Effects::default();
        e.push(0, &["SET", "a", "1"]);
        j.append(&e);
        e.clear();
        e.push(0, &["DEL", "x"]);
        e.push(1, &["SET", "b", "2"]);
        j.append(&e);
        let out = j.take_pending();
        let expected = "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n\
             *1\r\n$5\r\nMULTI\r\n*2\r\n$3\r\nDEL\r\n$1\r\nx\r\n\
             *2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n\
             *1\r\n$4\r\nEXEC\r\n";
        assert_eq!(std::str::from_utf8(&out).unwrap(), expected);
        assert_eq!(j.offset(), expected.len() as u64);
    }

    #[test]
    fn inactive_journal_records_nothing() {
        let mut j = Journal::new();
        let mut e = Effects::default();
        e.push(0, &["SET", "a", "1"]);
        j.append(&e);
        assert_eq!(j.offset(), 0);
        assert!(!j.has_pending());
    }
}

impl Effects {
    /// Records an already encoded command.
    pub fn push_encoded(&mut self, db: usize, encoded: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(encoded);
        self.items.push((db, start..self.buf.len()));
    }
}
