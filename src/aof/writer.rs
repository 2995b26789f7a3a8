//! The writer thread: appends framed batches to the current incremental file and fsyncs them by
//! policy, so the event loop never blocks on disk.
//!
//! The event loop hands over bytes with [`Writer::push`] (a mutex-protected buffer, swapped out
//! whole by the thread). Each round of the thread writes everything queued since the previous
//! round with one `write` and, with `appendfsync always`, one `fsync`: every client whose batch
//! is in that round shares it (group commit). Progress is published as *journal offsets*:
//! [`Shared::written`] once the bytes are in the file, and the `durable` watch once they are
//! fsynced (per policy), which connections and WAITAOF await.
//!
//! With `everysec` a second thread fsyncs once a second, so a slow fsync never delays writes;
//! a write made while an fsync has been running for over 2 s counts as `aof_delayed_fsync`.
//! A failed write is undone (the file truncated to its last good length) and retried until it
//! succeeds; meanwhile the error is visible to [`crate::aof::write_refusal`] (MISCONF).

use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicU8, Ordering::*};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `appendfsync` as stored in [`Shared::policy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Always = 0,
    Everysec = 1,
    No = 2,
}

impl Policy {
    pub fn parse(s: &str) -> Policy {
        match s {
            "always" => Policy::Always,
            "no" => Policy::No,
            _ => Policy::Everysec,
        }
    }

    fn from_u8(v: u8) -> Policy {
        match v {
            0 => Policy::Always,
            2 => Policy::No,
            _ => Policy::Everysec,
        }
    }
}

/// Bytes waiting for the thread.
#[derive(Default)]
struct Queue {
    buf: Vec<u8>,
    /// Journal offset at the end of `buf`.
    end: u64,
    stop: bool,
}

/// State shared by the event loop and the writer threads.
pub struct Shared {
    queue: Mutex<Queue>,
    cv: Condvar,
    /// Journal offset fsynced (with `no`: written, the kernel decides when it reaches disk).
    pub durable: tokio::sync::watch::Sender<u64>,
    /// Journal offset written to the file.
    pub written: AtomicU64,
    /// The same, for connections to await (`everysec`, `no`: a reply waits until its write
    /// is in the file, so a crash of the process alone loses no acknowledged write, as Redis).
    pub written_watch: tokio::sync::watch::Sender<u64>,
    /// errno of the last failed write, 0 once a write succeeds.
    pub write_errno: AtomicI32,
    /// errno of the last failed fsync, 0 once an fsync succeeds.
    pub fsync_errno: AtomicI32,
    pub delayed_fsync: AtomicU64,
    /// When the fsync in progress started (ms since `epoch`), 0 when none runs.
    fsync_since: AtomicU64,
    /// Bytes in the current incremental file.
    pub file_size: AtomicU64,
    /// Bytes queued but not yet written (`aof_buffer_length`).
    pub queued: AtomicU64,
    policy: AtomicU8,
    /// DEBUG AOF-FAIL-WRITES: writes fail with ENOSPC while set.
    pub fail_writes: AtomicBool,
    /// Set by [`Writer::stop`]; ends the `everysec` thread.
    stopping: AtomicBool,
    epoch: Instant,
}

impl Shared {
    pub fn policy(&self) -> Policy {
        Policy::from_u8(self.policy.load(Relaxed))
    }

    pub fn set_policy(&self, p: Policy) {
        self.policy.store(p as u8, Relaxed);
    }

    /// Whether an fsync is running (`aof_pending_bio_fsync`).
    pub fn fsync_pending(&self) -> bool {
        self.fsync_since.load(Relaxed) != 0
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Raises the durable offset to `v`.
    fn publish_durable(&self, v: u64) {
        self.durable.send_if_modified(|d| {
            let raise = v > *d;
            if raise {
                *d = v;
            }
            raise
        });
    }
}

/// The running threads.
pub struct Writer {
    pub shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Writer {
    /// Starts writing to `file` (opened for append, `len` bytes long) from journal offset
    /// `offset`. With `prev` (a rewrite switching to a new incremental file), the new thread
    /// first lets `prev` write and fsync everything it was given, and only then publishes
    /// `offset` as written and durable: until then a reply for a write queued before the
    /// switch still waits, on this writer, for the old file.
    pub fn start(
        file: File,
        len: u64,
        offset: u64,
        policy: Policy,
        prev: Option<Writer>,
    ) -> std::io::Result<Writer> {
        let (written, durable) = match &prev {
            Some(p) => (p.shared.written.load(Acquire), *p.shared.durable.borrow()),
            None => (offset, offset),
        };
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                end: offset,
                ..Queue::default()
            }),
            cv: Condvar::new(),
            durable: tokio::sync::watch::Sender::new(durable),
            written: AtomicU64::new(written),
            written_watch: tokio::sync::watch::Sender::new(written),
            write_errno: AtomicI32::new(0),
            fsync_errno: AtomicI32::new(0),
            delayed_fsync: AtomicU64::new(0),
            fsync_since: AtomicU64::new(0),
            file_size: AtomicU64::new(len),
            queued: AtomicU64::new(0),
            policy: AtomicU8::new(policy as u8),
            fail_writes: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            epoch: Instant::now(),
        });
        let sync_file = file.try_clone()?;
        let s1 = shared.clone();
        let writer = std::thread::Builder::new()
            .name("aof-writer".into())
            .spawn(move || {
                if let Some(p) = prev {
                    p.finish();
                    s1.written.store(offset, Release);
                    s1.written_watch.send_replace(offset);
                    s1.publish_durable(offset);
                }
                // The fsync thread starts only now: before, `written` was the old file's.
                let s2 = s1.clone();
                let syncer = std::thread::Builder::new()
                    .name("aof-fsync".into())
                    .spawn(move || everysec_loop(&s2, &sync_file));
                write_loop(&s1, file, len);
                s1.stopping.store(true, Relaxed);
                if let Ok(t) = syncer {
                    let _ = t.join();
                }
            })?;
        Ok(Writer {
            shared,
            threads: vec![writer],
        })
    }

    /// Continues on `file` (a rewrite's new incremental file) from journal offset `offset`:
    /// the current threads finish the old file first (see [`Writer::start`]).
    pub fn switch_to(&mut self, file: File, offset: u64) -> std::io::Result<()> {
        let probe = file.try_clone()?;
        drop(probe);
        let prev = Writer {
            shared: self.shared.clone(),
            threads: std::mem::take(&mut self.threads),
        };
        let fail = self.shared.fail_writes.load(Relaxed);
        let next = Writer::start(file, 0, offset, self.shared.policy(), Some(prev))?;
        next.shared.fail_writes.store(fail, Relaxed);
        *self = next;
        Ok(())
    }

    /// Stops the threads once everything queued is written and fsynced, however long that
    /// takes (a rewrite's old writer: its bytes belong to the log).
    fn finish(self) {
        if let Ok(mut q) = self.shared.queue.lock() {
            q.stop = true;
        }
        self.shared.cv.notify_all();
        for t in self.threads {
            let _ = t.join();
        }
    }

    /// Queues framed bytes ending at journal offset `end`.
    pub fn push(&self, header: &[u8], payload: &[u8], end: u64) {
        let Ok(mut q) = self.shared.queue.lock() else {
            return;
        };
        q.buf.extend_from_slice(header);
        q.buf.extend_from_slice(payload);
        q.end = end;
        self.shared
            .queued
            .fetch_add((header.len() + payload.len()) as u64, Relaxed);
        drop(q);
        self.shared.cv.notify_one();
    }

    /// Writes and fsyncs everything queued, then stops the threads (clean shutdown). Gives up
    /// on writes still failing after `patience`.
    pub fn stop(self, patience: Duration) {
        let deadline = Instant::now() + patience;
        self.shared.stopping.store(true, Relaxed);
        if let Ok(mut q) = self.shared.queue.lock() {
            q.stop = true;
        }
        self.shared.cv.notify_all();
        for t in self.threads {
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

/// The writer thread's loop.
fn write_loop(sh: &Shared, mut file: File, mut good_len: u64) {
    let mut pending: Vec<u8> = Vec::new();
    let mut pending_end = sh.written.load(Relaxed);
    let mut synced = pending_end;
    // Errors are logged at most every 30 s, like Redis.
    let mut last_log: Option<Instant> = None;
    let mut last_fsync = Duration::ZERO;
    loop {
        let stop = {
            let Ok(mut q) = sh.queue.lock() else {
                return;
            };
            while q.buf.is_empty() && !q.stop && pending.is_empty() && !fsync_due(sh, synced) {
                q = match sh.cv.wait_timeout(q, Duration::from_millis(100)) {
                    Ok((g, _)) => g,
                    Err(_) => return,
                };
            }
            if sh.policy() == Policy::Always && !q.buf.is_empty() && !q.stop {
                q = match gather(sh, q, last_fsync / 4) {
                    Some(q) => q,
                    None => return,
                };
            }
            if !q.buf.is_empty() {
                if pending.is_empty() {
                    std::mem::swap(&mut pending, &mut q.buf);
                } else {
                    pending.append(&mut q.buf);
                }
                pending_end = q.end;
            }
            q.stop
        };
        if !pending.is_empty() {
            match write_batch(sh, &mut file, &pending, good_len) {
                Ok(()) => {
                    good_len += pending.len() as u64;
                    sh.queued.fetch_sub(pending.len() as u64, Relaxed);
                    pending.clear();
                    sh.written.store(pending_end, Release);
                    sh.written_watch.send_replace(pending_end);
                    sh.file_size.store(good_len, Relaxed);
                    if sh.write_errno.swap(0, Relaxed) != 0 {
                        tracing::warn!("AOF write error looks solved, the server can write again.");
                        last_log = None;
                    }
                }
                Err(e) => {
                    sh.write_errno
                        .store(e.raw_os_error().unwrap_or(libc::EIO), Relaxed);
                    // Replies held for this write re-check: they go out while writes fail.
                    sh.written_watch.send_modify(|_| {});
                    if last_log.is_none_or(|t| t.elapsed() > Duration::from_secs(30)) {
                        tracing::warn!("Error writing to the AOF file: {e}");
                        last_log = Some(Instant::now());
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            }
        }
        let written = sh.written.load(Acquire);
        match sh.policy() {
            Policy::Always => {
                if written > synced {
                    let began = Instant::now();
                    let res = file.sync_data();
                    last_fsync = began.elapsed();
                    match res {
                        Ok(()) => {
                            synced = written;
                            sh.fsync_errno.store(0, Relaxed);
                            sh.publish_durable(synced);
                        }
                        Err(e) => fsync_failed(sh, &e),
                    }
                }
            }
            Policy::No => sh.publish_durable(written),
            Policy::Everysec => synced = synced.max(*sh.durable.borrow()),
        }
        if stop && pending.is_empty() {
            if file.sync_data().is_ok() {
                sh.publish_durable(written);
            }
            return;
        }
    }
}

/// Group commit with `always`: once a batch is queued, waits while more keep arriving (each
/// pause shorter than `GATHER_QUIET`, `budget` in all: a quarter of the last fsync's duration,
/// at most `GATHER_MAX`), so that the clients released by the previous fsync, whose next writes
/// reach the event loop one after another, share the next fsync instead of splitting into
/// alternating groups. On a disk whose fsync is fast the wait shrinks with it.
fn gather<'a>(
    sh: &'a Shared,
    mut q: std::sync::MutexGuard<'a, Queue>,
    budget: Duration,
) -> Option<std::sync::MutexGuard<'a, Queue>> {
    let start = Instant::now();
    let budget = budget.min(GATHER_MAX);
    while start.elapsed() < budget {
        let before = q.buf.len();
        q = sh.cv.wait_timeout(q, GATHER_QUIET.min(budget)).ok()?.0;
        if q.buf.len() == before || q.stop {
            break;
        }
    }
    Some(q)
}

/// See [`gather`].
const GATHER_QUIET: Duration = Duration::from_micros(GATHER_QUIET_US);
const GATHER_QUIET_US: u64 = 200;
const GATHER_MAX: Duration = Duration::from_millis(1);

/// With `always`, written bytes not yet fsynced (after an fsync error) are retried.
fn fsync_due(sh: &Shared, synced: u64) -> bool {
    sh.policy() == Policy::Always && sh.written.load(Acquire) > synced
}

fn fsync_failed(sh: &Shared, e: &std::io::Error) {
    sh.fsync_errno
        .store(e.raw_os_error().unwrap_or(libc::EIO), Relaxed);
    tracing::warn!("Error syncing the AOF file: {e}");
    std::thread::sleep(Duration::from_millis(100));
}

/// Appends one batch; on failure truncates the file back so a retry cannot leave half a frame
/// in the middle of the log.
fn write_batch(sh: &Shared, file: &mut File, bytes: &[u8], good_len: u64) -> std::io::Result<()> {
    let since = sh.fsync_since.load(Relaxed);
    if since != 0 && sh.now_ms().saturating_sub(since) > 2000 {
        sh.delayed_fsync.fetch_add(1, Relaxed);
    }
    let res = if sh.fail_writes.load(Relaxed) {
        Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
    } else {
        file.write_all(bytes)
    };
    if res.is_err() {
        let _ = file.set_len(good_len);
    }
    res
}

/// The `everysec` fsync thread.
fn everysec_loop(sh: &Shared, file: &File) {
    let mut last = Instant::now();
    loop {
        // Its own sleep, not the queue's condvar: a push must wake the writer, not this.
        std::thread::sleep(Duration::from_millis(50));
        if sh.stopping.load(Relaxed) {
            return;
        }
        if last.elapsed() < Duration::from_secs(1) || sh.policy() != Policy::Everysec {
            continue;
        }
        last = Instant::now();
        let target = sh.written.load(Acquire);
        if target <= *sh.durable.borrow() && sh.fsync_errno.load(Relaxed) == 0 {
            continue;
        }
        sh.fsync_since.store(sh.now_ms(), Relaxed);
        let res = file.sync_data();
        sh.fsync_since.store(0, Relaxed);
        match res {
            Ok(()) => {
                sh.fsync_errno.store(0, Relaxed);
                sh.publish_durable(target);
            }
            Err(e) => fsync_failed(sh, &e),
        }
    }
}
