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
//! Some effects are for one reader only: PUBLISH goes to the replicas alone (Redis forces it
//! to `PROPAGATE_REPL`), and a script's `redis.set_repl` picks the readers of its writes. So
//! each of the two readers keeps its own selected database, and the offset counts the
//! replication stream's bytes once replication exists.

use std::ops::Range;

use bytes::BytesMut;

/// The effects of one command, collected while it runs.
#[derive(Debug, Default)]
pub struct Effects {
    buf: Vec<u8>,
    items: Vec<Item>,
    /// Never wrap these effects in MULTI/EXEC (a command that may touch arbitrary keys, whose
    /// only effects are lazy expiries: Redis sends each on its own).
    pub unwrapped: bool,
}

/// Readers of an effect (Redis's `PROPAGATE_AOF` / `PROPAGATE_REPL`), as a bit set.
pub mod to {
    /// The append-only log.
    pub const LOG: u8 = 1;
    /// The replicas.
    pub const REPLICAS: u8 = 2;
    pub const ALL: u8 = LOG | REPLICAS;
    /// Not subject to [`super::Effects::restrict_from`] (deletions of expired keys).
    pub const PINNED: u8 = 4;
}

/// One recorded effect: its database, its bytes in `Effects::buf`, and its readers.
#[derive(Debug)]
struct Item {
    db: usize,
    range: Range<usize>,
    to: u8,
}

impl Effects {
    /// Records `argv` as an effect on database `db`.
    pub fn push<A: AsRef<[u8]>>(&mut self, db: usize, argv: &[A]) {
        let start = self.buf.len();
        encode_command(&mut self.buf, argv);
        self.items.push(Item { db, range: start..self.buf.len(), to: to::ALL });
    }

    /// Records `argv` as an effect for the readers `readers` only (a [`to`] bit set).
    pub fn push_to<A: AsRef<[u8]>>(&mut self, db: usize, argv: &[A], readers: u8) {
        if readers & to::ALL == 0 {
            return;
        }
        self.push(db, argv);
        if let Some(last) = self.items.last_mut() {
            last.to = readers;
        }
    }

    /// Limits the effects recorded from the `first`-th on to the readers `readers`, dropping
    /// those left with none (a script's `redis.set_repl`).
    pub fn restrict_from(&mut self, first: usize, readers: u8) {
        let Some(tail) = self.items.get_mut(first..) else {
            return;
        };
        for item in tail.iter_mut().filter(|i| i.to & to::PINNED == 0) {
            item.to &= readers;
        }
        // Only the restricted ones can be left without readers.
        self.items.retain(|item| item.to != 0);
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
        self.unwrapped = false;
    }

    /// Iterates over (db, RESP-encoded command, readers).
    pub fn iter(&self) -> impl Iterator<Item = (usize, &[u8], u8)> {
        self.items.iter().map(|i| (i.db, &self.buf[i.range.clone()], i.to))
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
            self.raw_marks.clear();
            self.raw_lost = true;
        }
    }

    /// Forces the next effect to be preceded by SELECT (a new consumer joined mid-stream).
    pub fn reset_selected_db(&mut self) {
        self.log_db = None;
        self.repl_db = None;
    }

    /// Appends one command's effects, wrapping several in MULTI/EXEC.
    pub fn append(&mut self, effects: &Effects) {
        let attached = self.attached();
        let live = || effects.iter().filter(|e| e.2 & attached != 0);
        // Like Redis, an effect counts when one of its readers is attached, and the wrapping
        // depends on how many count, whoever gets them: a reader may see MULTI/EXEC around a
        // single write when an effect for the other joined it.
        let Some(first) = live().next() else {
            return;
        };
        let wrap = !effects.unwrapped && live().nth(1).is_some();
        if wrap {
            self.select(first.0, to::ALL);
            self.raw(b"*1\r\n$5\r\nMULTI\r\n", to::ALL);
        }
        for (db, bytes, readers) in live() {
            self.select(db, readers);
            self.raw(bytes, readers);
        }
        if wrap {
            self.raw(b"*1\r\n$4\r\nEXEC\r\n", to::ALL);
        }
    }

    /// The readers attached now (a [`to`] bit set).
    fn attached(&self) -> u8 {
        let log = if self.consumers > 0 { to::LOG } else { 0 };
        let repl = if self.tap.is_some() { to::REPLICAS } else { 0 };
        log | repl
    }

    /// Sends SELECT to each of `readers` whose database is not `db`.
    fn select(&mut self, db: usize, readers: u8) {
        let log = readers & to::LOG != 0 && self.log_db != Some(db);
        let repl = readers & to::REPLICAS != 0 && self.tap.is_some() && self.repl_db != Some(db);
        if !log && !repl {
            return;
        }
        let mut buf = Vec::with_capacity(32);
        let mut n = itoa::Buffer::new();
        encode_command(&mut buf, &[b"SELECT".as_slice(), n.format(db).as_bytes()]);
        let readers = if log { to::LOG } else { 0 } | if repl { to::REPLICAS } else { 0 };
        self.raw(&buf, readers);
        // A reader not attached saw nothing: it gets a SELECT once it is.
        if log {
            self.log_db = (self.consumers > 0).then_some(db);
        }
        if repl {
            self.repl_db = Some(db);
        }
    }

    /// Appends `bytes` for `readers` (those attached).
    fn raw(&mut self, bytes: &[u8], readers: u8) {
        let log = readers & to::LOG != 0 && self.consumers > 0;
        let repl = readers & to::REPLICAS != 0 && self.tap.is_some();
        if repl {
            if let Some(tap) = &self.tap {
                tap.feed(bytes);
            }
        }
        // With the tap installed the offset is the replication stream's; without it, the log's.
        if repl || (log && self.tap.is_none()) {
            self.offset += bytes.len() as u64;
        }
        if repl && !log {
            self.mark_replica_only(bytes);
        }
        if log && !repl && self.tap.is_some() {
            // The log gets bytes the stream lacks: it can no longer rebuild the stream across
            // this point (`aof_resync` starts its coverage afresh).
            self.raw_lost = true;
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
        // What the replicas have selected is unknown across a change of tap.
        self.repl_db = None;
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
        self.mark_replica_only(bytes);
    }

    /// Notes stream bytes the log does not get, at their place among the pending bytes, so
    /// that the log can rebuild the stream (`replication::aof_resync`).
    fn mark_replica_only(&mut self, bytes: &[u8]) {
        if self.consumers == 0 {
            return;
        }
        if bytes.len() <= RAW_MARK_MAX && self.raw_marks.len() < RAW_MARKS_KEPT {
            self.raw_marks.push((self.pending.len(), bytes.to_vec()));
        } else {
            self.raw_lost = true;
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
        e.push_to(1, &["PUBLISH", "c", "m"], to::REPLICAS);
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
        // The log notes where the replica-only bytes sat, and that it got a SELECT the stream
        // lacks (so it cannot rebuild the stream across that point).
        let (marks, lost) = j.take_raw_marks();
        let publish = "*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$1\r\nm\r\n";
        assert_eq!(marks, vec![(0, select.as_bytes().to_vec()), (0, publish.as_bytes().to_vec())]);
        assert!(lost);
        let repl = format!("{select}*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$1\r\nm\r\n{set}");
        assert_eq!(std::str::from_utf8(&tap.0.borrow()).unwrap(), repl);
        // The offset is the replication stream's; the log is done at its own last byte.
        assert_eq!(j.offset(), repl.len() as u64);
        assert_eq!(j.logged_offset(), j.offset());
        e.clear();
        e.push_to(1, &["PUBLISH", "c", "m"], to::REPLICAS);
        j.append(&e);
        assert!(j.logged_offset() < j.offset());
    }

    #[test]
    fn effects_count_for_the_wrapping_only_when_one_of_their_readers_is_attached() {
        let mut j = Journal::new();
        j.attach();
        let mut e = Effects::default();
        e.push_to(0, &["PUBLISH", "c", "m"], to::REPLICAS);
        e.push(0, &["SET", "a", "1"]);
        j.append(&e);
        let set = "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n";
        let select = "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n";
        assert_eq!(std::str::from_utf8(&j.take_pending()).unwrap(), format!("{select}{set}"));
        // With replicas too, the log sees the transaction the replicas see.
        let tap = std::rc::Rc::new(Capture::default());
        j.set_tap(Some(tap.clone()));
        j.append(&e);
        let log = j.take_pending();
        let (multi, exec) = ("*1\r\n$5\r\nMULTI\r\n", "*1\r\n$4\r\nEXEC\r\n");
        assert_eq!(std::str::from_utf8(&log).unwrap(), format!("{multi}{set}{exec}"));
        let publish = "*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$1\r\nm\r\n";
        let repl = format!("{select}{multi}{publish}{set}{exec}");
        assert_eq!(std::str::from_utf8(&tap.0.borrow()).unwrap(), repl);
        // Restricting drops the effects left without readers.
        e.restrict_from(1, to::REPLICAS);
        e.restrict_from(0, to::LOG);
        assert_eq!(e.len(), 0);
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
        self.items.push(Item { db, range: start..self.buf.len(), to: to::ALL });
    }
}
