//! Partial resynchronization from the append-only log (beyond Redis).
//!
//! A replica that reconnects with an offset the in-memory backlog no longer holds normally
//! needs a full sync. On a master with `appendonly yes`, the incremental files hold the same
//! write stream (the journal's bytes, `formats/aof.md`), so the master can answer `+CONTINUE`
//! and send the missing part from the files, then the backlog, then the live stream.
//!
//! The log's payload is not the whole stream: `PING`s and `REPLCONF GETACK`s
//! (`Journal::feed_raw`), `PUBLISH` and the `SELECT`s only the replicas need go to the replicas
//! only. (The reverse, a `SELECT` only the log needs, makes the log's bytes differ from the
//! stream: the journal reports that as lost, and coverage starts afresh after it.) So the
//! writer records, in framing 2, *stream notes*
//! among its frames ([`crate::aof::format::Note`]): an origin note (`#O:<replid> <offset>`)
//! where a file starts or the stream was discontinuous, and a gap note (`#G:<hex>`) holding
//! each tap-only write where it occurred. Reading a file from its start, every payload byte
//! then has a known stream offset, and the stream between two offsets can be rebuilt exactly.
//!
//! - [`Cursor`] (kept in the open log) decides what notes a batch needs as it is written and
//!   remembers which stream offset each file's coverage starts at.
//! - [`resume`] decides, at the `PSYNC`, whether the log covers the replica's offset.
//! - [`send`] streams the bytes from the files (read on a thread), then the backlog part.

use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::aof::format::{self, Note, Scanner, Step};
use crate::server::client::ClientShared;
use crate::server::connection::write_killable;
use crate::server::ServerState;

/// Most coverage starts remembered (one per file, plus one per discontinuity).
const STARTS_KEPT: usize = 1024;
/// How long [`send`] waits for the writer to put the needed bytes in the files.
const WRITTEN_WAIT: Duration = Duration::from_secs(10);
/// Stream bytes sent per chunk.
const CHUNK: usize = 256 * 1024;

/// Where one stretch of the log's coverage starts: stream byte `offset` of history `replid`
/// is the first byte described in `file` (the stream is continuous from there on).
#[derive(Debug, Clone)]
struct Start {
    file: String,
    replid: String,
    offset: u64,
}

/// The writer's view of the stream (see the module doc). Lives in `crate::aof::AofLog`.
#[derive(Debug, Default)]
pub struct Cursor {
    /// File being written and the stream offset just past the last byte it describes; `None`
    /// when the next batch must begin with an origin note.
    next: Option<(String, String, u64)>,
    /// Coverage starts, oldest first; all continuous with each other and with `next`.
    starts: Vec<Start>,
}

/// What the writer knows about a batch it is about to write.
pub struct Batch<'a> {
    /// The journal's pending bytes (whole commands, the log's payload).
    pub payload: &'a [u8],
    /// Tap-only writes among them: (position in `payload`, bytes).
    pub marks: &'a [(usize, Vec<u8>)],
    /// Some tap-only write was not recorded: the stream is not continuous here.
    pub lost: bool,
    /// The journal offset after the batch.
    pub end: u64,
    /// The current history, and whether this server is a master (a replica's log holds its
    /// own re-encoding of its master's stream, not the stream).
    pub replid: &'a str,
    pub master: bool,
    /// The file being written to.
    pub file: &'a str,
}

impl Cursor {
    /// Appends to `out` the notes `batch` needs before its payload. Returns false when the
    /// payload goes as one frame right after (the caller frames it), true when `out` already
    /// holds everything: the payload was cut into frames at its tap-only writes, with a gap
    /// note for each.
    pub fn layout(&mut self, out: &mut Vec<u8>, b: &Batch<'_>) -> bool {
        let raw: u64 = b.marks.iter().map(|(_, m)| m.len() as u64).sum();
        let start = b.end.checked_sub(b.payload.len() as u64 + raw);
        let (Some(start), true, false) = (start, b.master, b.lost) else {
            self.reset();
            return false;
        };
        let continues = match &self.next {
            Some((_, id, at)) => id == b.replid && *at == start,
            None => false,
        };
        if !continues {
            self.reset();
        }
        let same_file = self.next.as_ref().is_some_and(|(f, _, _)| f == b.file);
        if !same_file {
            format::write_note(out, &Note::Origin { replid: b.replid.into(), offset: start });
            if self.starts.len() >= STARTS_KEPT {
                self.starts.remove(0);
            }
            self.starts.push(Start { file: b.file.into(), replid: b.replid.into(), offset: start });
        }
        self.next = Some((b.file.into(), b.replid.into(), b.end));
        if b.marks.is_empty() {
            return false;
        }
        let mut pos = 0;
        for (at, bytes) in b.marks {
            let at = (*at).min(b.payload.len());
            frame(out, &b.payload[pos..at]);
            format::write_note(out, &Note::Gap(bytes.clone()));
            pos = at;
        }
        frame(out, &b.payload[pos..]);
        true
    }

    /// Forgets the coverage: what follows is not continuous with what the files hold.
    fn reset(&mut self) {
        self.next = None;
        self.starts.clear();
    }

    /// The first coverage start still in the log (`files`: the manifest's incremental
    /// files) at or before stream byte `from` of `replid`, and the files from its own on.
    fn covering(&self, files: &[String], replid: &str, from: u64) -> Option<Vec<String>> {
        let live: Vec<&Start> = self
            .starts
            .iter()
            .skip_while(|s| !files.contains(&s.file))
            .collect();
        let first = live.first()?;
        if first.replid != replid || first.offset > from {
            return None;
        }
        let mut names: Vec<String> = Vec::new();
        for s in &live {
            if names.last() != Some(&s.file) {
                names.push(s.file.clone());
            }
        }
        Some(names)
    }
}

/// Appends one frame (nothing for an empty payload).
fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    if !payload.is_empty() {
        format::frame_header(out, payload);
        out.extend_from_slice(payload);
    }
}

/// A partial resync to serve from the log: stream bytes `from..upto` (0-based) come from
/// `files`, then `tail` (the backlog, from `upto` on), then the live stream.
#[derive(Debug)]
pub struct Resume {
    files: Vec<PathBuf>,
    replid: String,
    from: u64,
    upto: u64,
    tail: Vec<u8>,
    written: tokio::sync::watch::Receiver<u64>,
}

/// Whether the log can serve `PSYNC <id> <offset>` (1-based `offset`, the next byte wanted)
/// that the backlog could not: the id is our current one, the offset is before the backlog
/// and after the start of the log's continuous coverage. Must run in the same borrow as the
/// replica's registration on the feed (`master::attach`): the backlog copied here and the
/// live stream queued from then on join exactly.
pub fn resume(state: &mut ServerState, ask: Option<&(String, i64)>) -> Option<Resume> {
    let (id, offset) = ask?;
    let from = u64::try_from(*offset).ok()?.checked_sub(1)?;
    if state.is_replica() || *id != state.repl.replid {
        return None;
    }
    let (tail, upto) = {
        let feed = state.repl.feed.as_ref()?;
        let backlog = feed.backlog.borrow();
        let first = backlog.first_byte_offset();
        (backlog.since(first)?, first - 1)
    };
    if from >= upto {
        return None;
    }
    // The bytes before the backlog must reach the writer now, so that it puts them in a file.
    crate::aof::feed(state);
    let log = state.aof.log.as_ref()?;
    let names: Vec<String> = log.manifest.incrs.iter().map(|e| e.name.clone()).collect();
    let files = log.stream.covering(&names, id, from)?;
    state.repl.sync_partial_aof += 1;
    Some(Resume {
        files: files.iter().map(|f| log.dir.join(f)).collect(),
        replid: id.clone(),
        from,
        upto,
        tail,
        written: log.written(),
    })
}

/// Whether [`resume`] would serve this request (no side effects).
pub fn covers(state: &ServerState, ask: Option<&(String, i64)>) -> bool {
    let Some((id, offset)) = ask else { return false };
    let Some(from) = u64::try_from(*offset).ok().and_then(|o| o.checked_sub(1)) else {
        return false;
    };
    let Some(log) = state.aof.log.as_ref() else { return false };
    let names: Vec<String> = log.manifest.incrs.iter().map(|e| e.name.clone()).collect();
    let ours = !state.is_replica() && *id == state.repl.replid;
    ours && log.stream.covering(&names, id, from).is_some()
}

/// Sends `+CONTINUE <replid>` and the stream from the replica's offset up to the live stream
/// (which `master::attach` queued meanwhile). False if the replica went away or the files did
/// not hold the bytes (the replica then reconnects and is served a full sync).
pub async fn send(
    stream: &mut TcpStream,
    shared: &ClientShared,
    replid: &str,
    mut r: Resume,
) -> bool {
    let head = format!("+CONTINUE {replid}\r\n");
    if !write_killable(stream, head.as_bytes(), shared).await {
        return false;
    }
    let upto = r.upto;
    let in_files = tokio::time::timeout(WRITTEN_WAIT, r.written.wait_for(|w| *w >= upto)).await;
    if !matches!(in_files, Ok(Ok(_))) {
        tracing::warn!("Partial resynchronization from the AOF abandoned: the log is behind");
        return false;
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, String>>(4);
    let (files, id, from) = (std::mem::take(&mut r.files), r.replid.clone(), r.from);
    let reader = std::thread::Builder::new()
        .name("aof-resync".into())
        .spawn(move || read_stream(&files, &id, from, upto, &tx));
    if reader.is_err() {
        return false;
    }
    while let Some(chunk) = rx.recv().await {
        match chunk {
            Ok(bytes) => {
                if !write_killable(stream, &bytes, shared).await {
                    return false;
                }
            }
            Err(e) => {
                tracing::warn!("Partial resynchronization from the AOF failed: {e}");
                return false;
            }
        }
    }
    write_killable(stream, &r.tail, shared).await
}

/// On the reader thread: sends the stream bytes `from..upto` rebuilt from `files`, in chunks,
/// or an error; the channel closes after the last byte.
fn read_stream(
    files: &[PathBuf],
    replid: &str,
    from: u64,
    upto: u64,
    tx: &tokio::sync::mpsc::Sender<Result<Vec<u8>, String>>,
) {
    let mut rebuild = Rebuild { replid, pos: None, sent: from, upto, out: Vec::new(), tx };
    for path in files {
        match rebuild.file(path) {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                let _ = tx.blocking_send(Err(format!("{}: {e}", path.display())));
                return;
            }
        }
    }
    let missing = format!("the log ends at stream offset {} before {upto}", rebuild.sent);
    let _ = tx.blocking_send(Err(missing));
}

/// Rebuilds the stream from the files' frames and notes.
struct Rebuild<'a> {
    replid: &'a str,
    /// Stream offset of the next byte read, once an origin note of `replid` gave it.
    pos: Option<u64>,
    /// Next stream byte to send.
    sent: u64,
    upto: u64,
    out: Vec<u8>,
    tx: &'a tokio::sync::mpsc::Sender<Result<Vec<u8>, String>>,
}

impl Rebuild<'_> {
    /// Reads one file; true once everything up to `upto` was sent.
    fn file(&mut self, path: &std::path::Path) -> Result<bool, String> {
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let mut sc = Scanner::new(file);
        sc.keep_notes = true;
        loop {
            let step = sc.next_step().map_err(|e| e.to_string())?;
            for note in std::mem::take(&mut sc.notes) {
                match note {
                    Note::Origin { replid, offset } => {
                        self.pos = (replid == self.replid).then_some(offset);
                    }
                    Note::Gap(bytes) => self.bytes(&bytes)?,
                }
            }
            match step {
                Step::Commands { cmds, .. } => {
                    let mut buf = Vec::new();
                    for argv in &cmds {
                        // The journal writes canonical RESP: re-encoding gives its bytes back.
                        crate::journal::encode_command(&mut buf, argv);
                    }
                    self.bytes(&buf)?;
                }
                Step::End | Step::Torn { .. } => break,
                Step::Corrupt { offset, reason } => {
                    return Err(format!("corrupt at offset {offset}: {reason}"));
                }
            }
            if self.sent >= self.upto {
                break;
            }
        }
        self.flush(true)?;
        Ok(self.sent >= self.upto)
    }

    /// Stream bytes at `pos`: the part in `sent..upto` is sent.
    fn bytes(&mut self, bytes: &[u8]) -> Result<(), String> {
        let Some(pos) = self.pos else { return Ok(()) };
        let end = pos + bytes.len() as u64;
        self.pos = Some(end);
        if end <= self.sent || self.sent >= self.upto {
            return Ok(());
        }
        if pos > self.sent {
            return Err(format!("stream bytes {}..{pos} are not in the log", self.sent));
        }
        let a = (self.sent - pos) as usize;
        let b = (end.min(self.upto) - pos) as usize;
        self.out.extend_from_slice(&bytes[a..b]);
        self.sent = pos + b as u64;
        self.flush(false)
    }

    /// Hands the collected bytes to the connection (when a chunk is full, or `all`).
    fn flush(&mut self, all: bool) -> Result<(), String> {
        if self.out.is_empty() || (!all && self.out.len() < CHUNK) {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.out);
        self.tx.blocking_send(Ok(chunk)).map_err(|_| "the replica went away".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(args: &[&str]) -> Vec<u8> {
        let mut v = Vec::new();
        crate::journal::encode_command(&mut v, args);
        v
    }

    const ID: &str = "0123456789abcdef0123456789abcdef01234567";

    /// Writes batches through a cursor into a file and rebuilds stream ranges from it.
    #[test]
    fn the_stream_is_rebuilt_from_frames_and_notes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.1.incr.aof");
        let mut cur = Cursor::default();
        let mut file = Vec::new();
        let mut stream = vec![0u8; 100]; // stream bytes before the log (offset 100 = start)
        let set = cmd(&["SET", "a", "1"]);
        let ping = cmd(&["PING"]);
        let del = cmd(&["DEL", "a"]);
        // Batch 1: SET, PING (tap-only), DEL.
        let mut payload = set.clone();
        payload.extend_from_slice(&del);
        stream.extend_from_slice(&set);
        stream.extend_from_slice(&ping);
        stream.extend_from_slice(&del);
        let marks = vec![(set.len(), ping.clone())];
        let b = Batch {
            payload: &payload,
            marks: &marks,
            lost: false,
            end: stream.len() as u64,
            replid: ID,
            master: true,
            file: "f.1.incr.aof",
        };
        let mut out = Vec::new();
        assert!(cur.layout(&mut out, &b));
        file.extend_from_slice(&out);
        // Batch 2: a plain frame, continuous.
        stream.extend_from_slice(&set);
        let b = Batch { payload: &set, marks: &[], end: stream.len() as u64, ..b };
        out.clear();
        assert!(!cur.layout(&mut out, &b));
        assert!(out.is_empty(), "no note for a continuous batch");
        format::frame_header(&mut out, &set);
        out.extend_from_slice(&set);
        file.extend_from_slice(&out);
        std::fs::write(&path, &file).unwrap();
        let files = vec!["f.1.incr.aof".to_string()];
        assert!(cur.covering(&files, ID, 99).is_none());
        assert_eq!(cur.covering(&files, ID, 100).unwrap(), files);
        assert!(cur.covering(&files, "x", 100).is_none());
        let end = stream.len() as u64;
        for from in [100, 101, 100 + set.len() as u64 + 3, end - 1] {
            let (tx, mut rx) = tokio::sync::mpsc::channel(64);
            read_stream(&[path.clone()], ID, from, end, &tx);
            drop(tx);
            let mut got = Vec::new();
            while let Ok(c) = rx.try_recv() {
                got.extend_from_slice(&c.unwrap());
            }
            assert_eq!(got, &stream[from as usize..], "from {from}");
        }
        // Past the end of the log: an error.
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        read_stream(&[path.clone()], ID, 100, end + 5, &tx);
        drop(tx);
        let mut last = None;
        while let Ok(c) = rx.try_recv() {
            last = Some(c);
        }
        assert!(last.unwrap().is_err());
    }

    #[test]
    fn a_discontinuity_or_a_replica_forgets_the_coverage() {
        let mut cur = Cursor::default();
        let set = cmd(&["SET", "a", "1"]);
        let b = Batch {
            payload: &set,
            marks: &[],
            lost: false,
            end: 50 + set.len() as u64,
            replid: ID,
            master: true,
            file: "f",
        };
        let mut out = Vec::new();
        cur.layout(&mut out, &b);
        let files = vec!["f".to_string()];
        assert!(cur.covering(&files, ID, 50).is_some());
        // A jump in the offset: coverage restarts at the new batch.
        let b2 = Batch { end: 500, ..b };
        cur.layout(&mut out, &b2);
        assert!(cur.covering(&files, ID, 50).is_none());
        assert!(cur.covering(&files, ID, 500 - set.len() as u64).is_some());
        let b3 = Batch { master: false, end: 600, ..b };
        cur.layout(&mut out, &b3);
        assert!(cur.covering(&files, ID, 500 - set.len() as u64).is_none());
    }

    #[test]
    fn notes_round_trip_and_damage_is_caught() {
        let mut out = Vec::new();
        format::write_note(&mut out, &Note::Origin { replid: ID.into(), offset: 42 });
        format::write_note(&mut out, &Note::Gap(b"*1\r\n$4\r\nPING\r\n".to_vec()));
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(
            format::parse_note(lines[0].as_bytes()),
            Some(Ok(Note::Origin { replid: ID.into(), offset: 42 }))
        );
        assert_eq!(
            format::parse_note(lines[1].as_bytes()),
            Some(Ok(Note::Gap(b"*1\r\n$4\r\nPING\r\n".to_vec())))
        );
        let damaged = lines[0].replace("42", "43");
        assert_eq!(format::parse_note(damaged.as_bytes()), Some(Err(())));
        assert_eq!(format::parse_note(b"#TS:123"), None);
    }
}
