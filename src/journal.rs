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
//!
//! Some effects are for the replicas only (PUBLISH, as Redis forces it to `PROPAGATE_REPL`):
//! the append-only log never sees them, so each of the two readers keeps its own selected
//! database, and the offset counts the replication stream's bytes once replication exists.

use std::ops::Range;

use bytes::BytesMut;

/// The effects of one command, collected while it runs.
#[derive(Debug, Default)]
pub struct Effects {
    buf: Vec<u8>,
    items: Vec<Item>,
}

/// One recorded effect: its database, its bytes in `Effects::buf`, and whether only the
/// replicas get it.
#[derive(Debug)]
struct Item {
    db: usize,
    range: Range<usize>,
    repl_only: bool,
}

impl Effects {
    /// Records `argv` as an effect on database `db`.
    pub fn push<A: AsRef<[u8]>>(&mut self, db: usize, argv: &[A]) {
        let start = self.buf.len();
        encode_command(&mut self.buf, argv);
        self.items.push(Item { db, range: start..self.buf.len(), repl_only: false });
    }

    /// Records `argv` as an effect only the replicas get (Redis's `PROPAGATE_REPL` alone).
    pub fn push_repl_only<A: AsRef<[u8]>>(&mut self, db: usize, argv: &[A]) {
        self.push(db, argv);
        if let Some(last) = self.items.last_mut() {
            last.repl_only = true;
        }
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

    /// Iterates over (db, RESP-encoded command, for the replicas only).
    pub fn iter(&self) -> impl Iterator<Item = (usize, &[u8], bool)> {
        self.items.iter().map(|i| (i.db, &self.buf[i.range.clone()], i.repl_only))
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
    /// Bytes ever appended: the replication stream's while the tap is installed (the
    /// replication offset), the log's otherwise.
    offset: u64,
    /// `offset` just after the last byte that went to the pending buffer: what the log must
    /// have written before a reply goes out (bytes only the replicas got need no wait).
    logged: u64,
    /// Database each reader last saw selected (log, replicas); `None` forces a SELECT before
    /// the next effect.
    log_db: Option<usize>,
    repl_db: Option<usize>,
    /// Bytes appended since consumers last drained them.
    pending: BytesMut,
    /// Number of attached consumers. With none, nothing is encoded and the offset stays put,
    /// as Redis does when it has neither an AOF nor replicas.
    consumers: usize,
}

impl Journal {
    pub fn new() -> Self {
        Journal::default()
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The offset the append-only log reaches once it has everything appended so far.
    pub fn logged_offset(&self) -> u64 {
        self.logged
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
        }
    }

    /// Forces the next effect to be preceded by SELECT (a new consumer joined mid-stream).
    pub fn reset_selected_db(&mut self) {
        self.log_db = None;
        self.repl_db = None;
    }

    /// Appends one command's effects, wrapping several in MULTI/EXEC.
    pub fn append(&mut self, effects: &Effects) {
        if !self.is_active() || effects.is_empty() {
            return;
        }
        // Like Redis, the wrapping depends on the number of effects, whoever gets them: the
        // log may see MULTI/EXEC around a single write when a replicas-only effect joined it.
        let wrap = effects.len() > 1;
        if wrap {
            let first_db = effects.items[0].db;
            self.select(first_db, true);
            self.raw(b"*1\r\n$5\r\nMULTI\r\n", true);
        }
        for (db, bytes, repl_only) in effects.iter() {
            let to_log = !repl_only;
            self.select(db, to_log);
            self.raw(bytes, to_log);
        }
        if wrap {
            self.raw(b"*1\r\n$4\r\nEXEC\r\n", true);
        }
    }

    /// Sends SELECT to each reader (the log only if `to_log`) whose database is not `db`.
    fn select(&mut self, db: usize, to_log: bool) {
        let log = to_log && self.log_db != Some(db);
        let repl = self.tap.is_some() && self.repl_db != Some(db);
        if !log && !repl {
            return;
        }
        let mut buf = Vec::with_capacity(32);
        let n = itoa::Buffer::new().format(db).as_bytes().to_vec();
        encode_command(&mut buf, &[b"SELECT".as_slice(), &n]);
        self.raw_to(&buf, log, repl);
        // A reader not attached saw nothing: it gets a SELECT once it is.
        if log {
            self.log_db = (self.consumers > 0).then_some(db);
        }
        self.repl_db = self.tap.is_some().then_some(db);
    }

    /// Appends to the replicas, and to the log if `to_log`.
    fn raw(&mut self, bytes: &[u8], to_log: bool) {
        self.raw_to(bytes, to_log, true);
    }

    fn raw_to(&mut self, bytes: &[u8], log: bool, repl: bool) {
        let log = log && self.consumers > 0;
        let repl = repl && self.tap.is_some();
        if repl {
            if let Some(tap) = &self.tap {
                tap.feed(bytes);
            }
        }
        // With the tap installed the offset is the replication stream's; without it, the log's.
        if repl || (log && self.tap.is_none()) {
            self.offset += bytes.len() as u64;
        }
        if log {
            self.pending.extend_from_slice(bytes);
            self.logged = self.offset;
        }
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
        self.logged = offset;
    }

    /// Passes already encoded stream bytes to the tap and counts them in the offset, without
    /// going to the pending buffer: a replica proxying its master's stream to its own replicas,
    /// or a master's `REPLCONF GETACK` / `PING` to its replicas.
    pub fn feed_raw(&mut self, bytes: &[u8]) {
        if let Some(tap) = &self.tap {
            tap.feed(bytes);
        }
        self.offset += bytes.len() as u64;
        // The log bytes not yet handed over are written with the new offset as their end.
        if !self.pending.is_empty() {
            self.logged = self.offset;
        }
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

    /// A tap that keeps what it was fed.
    #[derive(Debug, Default)]
    struct Capture(std::cell::RefCell<Vec<u8>>);

    impl Tap for Capture {
        fn feed(&self, bytes: &[u8]) {
            self.0.borrow_mut().extend_from_slice(bytes);
        }
    }

    #[test]
    fn replicas_only_effects_skip_the_log_and_keep_each_reader_selection() {
        let mut j = Journal::new();
        j.attach();
        let tap = std::rc::Rc::new(Capture::default());
        j.set_tap(Some(tap.clone()));
        let mut e = Effects::default();
        e.push_repl_only(1, &["PUBLISH", "c", "m"]);
        j.append(&e);
        assert!(!j.has_pending());
        assert_eq!(j.logged_offset(), 0);
        e.clear();
        e.push(1, &["SET", "a", "1"]);
        j.append(&e);
        // The log never saw database 1 selected; the replicas did.
        let set = "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n";
        let select = "*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n";
        let log = j.take_pending();
        assert_eq!(std::str::from_utf8(&log).unwrap(), format!("{select}{set}"));
        let repl = format!("{select}*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$1\r\nm\r\n{set}");
        assert_eq!(std::str::from_utf8(&tap.0.borrow()).unwrap(), repl);
        // The offset is the replication stream's; the log is done at its own last byte.
        assert_eq!(j.offset(), repl.len() as u64);
        assert_eq!(j.logged_offset(), j.offset());
        e.clear();
        e.push_repl_only(1, &["PUBLISH", "c", "m"]);
        j.append(&e);
        assert!(j.logged_offset() < j.offset());
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
        self.items.push(Item { db, range: start..self.buf.len(), repl_only: false });
    }
}
