//! The slow log: the most recent commands that ran for at least `slowlog-log-slower-than`
//! microseconds, newest first, at most `slowlog-max-len` of them (SLOWLOG GET/LEN/RESET).
//!
//! An entry keeps a bounded copy of the command: at most 32 arguments (the last one then says
//! how many were left out) of at most 128 bytes each, as Redis does, so one huge command cannot
//! pin megabytes in the log. Secrets are replaced before they are stored (see
//! `dispatch::redacted`).

use std::collections::VecDeque;

/// Arguments kept per entry; the last slot names how many more there were.
const MAX_ARGC: usize = 32;
/// Bytes kept per argument.
const MAX_ARG_LEN: usize = 128;

#[derive(Debug, Clone)]
pub struct Entry {
    pub id: u64,
    /// Unix time in seconds when the command was logged.
    pub time: u64,
    /// How long the command ran, in microseconds.
    pub duration: u64,
    pub argv: Vec<Vec<u8>>,
    /// `ip:port` of the client (`?:0` for commands a script ran).
    pub peer: String,
    pub name: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct SlowLog {
    entries: VecDeque<Entry>,
    next_id: u64,
}

/// What the log needs from a command that may be logged.
pub struct Candidate<'a> {
    pub argv: &'a [&'a [u8]],
    /// Whether argument `i` must be shown as `(redacted)`.
    pub redact: &'a dyn Fn(usize) -> bool,
    pub duration: u64,
    pub peer: String,
    pub name: Vec<u8>,
}

impl SlowLog {
    /// Whether a command that ran `duration` µs belongs in the log under `slower_than`
    /// (negative disables the log). Cheap: the caller builds a [`Candidate`] only if so.
    #[inline]
    pub fn wants(slower_than: i64, duration: u64) -> bool {
        slower_than >= 0 && duration >= slower_than as u64
    }

    /// Adds a command (newest first) and trims the log to `max_len` entries.
    pub fn push(&mut self, c: Candidate<'_>, now_secs: u64, max_len: usize) {
        let entry = Entry {
            id: self.next_id,
            time: now_secs,
            duration: c.duration,
            argv: bounded_argv(c.argv, c.redact),
            peer: c.peer,
            name: c.name,
        };
        self.next_id += 1;
        self.entries.push_front(entry);
        self.trim(max_len);
    }

    /// Drops the oldest entries beyond `max_len` (also after CONFIG SET slowlog-max-len, on
    /// the next command logged, as in Redis).
    pub fn trim(&mut self, max_len: usize) {
        self.entries.truncate(max_len);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Newest first.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// SLOWLOG RESET: the entries go, the id sequence goes on.
    pub fn reset(&mut self) {
        self.entries.clear();
    }
}

/// The arguments as stored: at most [`MAX_ARGC`], each at most [`MAX_ARG_LEN`] bytes.
fn bounded_argv(argv: &[&[u8]], redact: &dyn Fn(usize) -> bool) -> Vec<Vec<u8>> {
    let kept = argv.len().min(MAX_ARGC);
    let mut out = Vec::with_capacity(kept);
    for (i, a) in argv.iter().take(kept).enumerate() {
        if kept != argv.len() && i == kept - 1 {
            let more = argv.len() - kept + 1;
            out.push(format!("... ({more} more arguments)").into_bytes());
        } else if redact(i) {
            out.push(b"(redacted)".to_vec());
        } else if a.len() > MAX_ARG_LEN {
            let mut s = a[..MAX_ARG_LEN].to_vec();
            s.extend_from_slice(format!("... ({} more bytes)", a.len() - MAX_ARG_LEN).as_bytes());
            out.push(s);
        } else {
            out.push(a.to_vec());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate<'a>(argv: &'a [&'a [u8]], redact: &'a dyn Fn(usize) -> bool) -> Candidate<'a> {
        Candidate { argv, redact, duration: 5, peer: "1.2.3.4:5".into(), name: b"n".to_vec() }
    }

    #[test]
    fn newest_first_trimmed_with_ids_that_survive_reset() {
        let mut log = SlowLog::default();
        let never = |_| false;
        for _ in 0..5 {
            log.push(candidate(&[b"ping"], &never), 100, 3);
        }
        assert_eq!(log.iter().map(|e| e.id).collect::<Vec<_>>(), vec![4, 3, 2]);
        log.reset();
        assert!(log.is_empty());
        log.push(candidate(&[b"ping"], &never), 100, 3);
        assert_eq!(log.iter().next().unwrap().id, 5);
    }

    #[test]
    fn long_commands_are_bounded() {
        let many: Vec<Vec<u8>> = (0..40).map(|i| i.to_string().into_bytes()).collect();
        let refs: Vec<&[u8]> = many.iter().map(Vec::as_slice).collect();
        let never = |_| false;
        let argv = bounded_argv(&refs, &never);
        assert_eq!(argv.len(), 32);
        assert_eq!(argv[30], b"30");
        assert_eq!(argv[31], b"... (9 more arguments)");
        let long = vec![b'A'; 129];
        let argv = bounded_argv(&[b"sadd", &long], &never);
        let mut want = vec![b'A'; 128];
        want.extend_from_slice(b"... (1 more bytes)");
        assert_eq!(argv[1], want);
        let secret = |i| i == 1;
        assert_eq!(bounded_argv(&[b"auth", b"pw"], &secret)[1], b"(redacted)");
    }
}
