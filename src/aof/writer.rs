//! The writer thread: appends framed batches to the current incremental file and fsyncs them by
//! policy, so the event loop never blocks on disk.
//!
//! [`Writer::push`] normally writes a batch itself, on the event loop, as Redis does: a `write`
//! of a few hundred bytes into the page cache costs less than handing them to a thread and
//! waking it (on a two-core machine that round trip was the largest cost of a logged write).
//! It queues them for the writer thread instead (a mutex-protected buffer, swapped out whole)
//! whenever a direct write could block or reorder: while the thread still has bytes of its own,
//! after a failed write (the thread retries), and with `everysec` while an fsync has run for
//! over 2 s (a write can wait for it on some file systems; Redis postpones its writes then). With
//! `appendfsync always` the thread fsyncs what was written, and the event loop goes on writing
//! the next batches meanwhile: every client whose batch was written before the fsync began
//! shares it (group commit). Progress is published as *journal offsets*:
//! [`Shared::written`] once the bytes are in the file, and the `durable` watch once they are
//! fsynced (per policy), which connections and WAITAOF await.
//!
//! With `everysec` a second thread fsyncs once a second, so a slow fsync never delays writes;
//! a write made while an fsync has been running for over 2 s counts as `aof_delayed_fsync`.
//! A failed write is undone (the file truncated to its last good length) and retried until it
//! succeeds; meanwhile the error is visible to [`crate::aof::write_refusal`] (MISCONF).

use std::fs::File;
use std::io::{IoSlice, Write};
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

impl Queue {
    fn append(&mut self, sh: &Shared, parts: [&[u8]; 2], end: u64) {
        for p in parts {
            self.buf.extend_from_slice(p);
        }
        self.end = end;
        sh.queued
            .fetch_add((parts[0].len() + parts[1].len()) as u64, Relaxed);
    }
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
    /// With `always`: how many times a connection began to wait for an fsync (see [`Group`]).
    arrivals: AtomicU64,
    /// The writer thread holds bytes taken from the queue that are not yet in the file (set
    /// under the queue's lock). [`Writer::push`] then queues, so the file keeps their order.
    busy: AtomicBool,
    /// Direct writes are allowed: false until a previous writer (before a rewrite's switch)
    /// has finished its file, whose offsets come first.
    direct_ok: AtomicBool,
    epoch: Instant,
}

impl Shared {
    pub fn policy(&self) -> Policy {
        Policy::from_u8(self.policy.load(Relaxed))
    }

    pub fn set_policy(&self, p: Policy) {
        self.policy.store(p as u8, Relaxed);
    }

    /// Whether the `everysec` fsync has run for over 2 s: then writes are postponed (queued
    /// for the thread) instead of risking a `write` that waits for it, as Redis does.
    fn fsync_stuck(&self) -> bool {
        let since = self.fsync_since.load(Relaxed);
        since != 0 && self.now_ms().saturating_sub(since) > 2000
    }

    /// Whether an fsync is running (`aof_pending_bio_fsync`).
    pub fn fsync_pending(&self) -> bool {
        self.fsync_since.load(Relaxed) != 0
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Counts a connection that waits for the next fsync (`always`), for group commit.
    pub fn arrive(&self) {
        // Under the lock, so that the thread either sees it or is already waiting.
        if let Ok(_q) = self.queue.lock() {
            self.arrivals.fetch_add(1, Relaxed);
        }
        self.cv.notify_one();
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
    /// The same file as the thread's, for the event loop's direct writes.
    file: File,
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
            busy: AtomicBool::new(false),
            arrivals: AtomicU64::new(0),
            direct_ok: AtomicBool::new(prev.is_none()),
            epoch: Instant::now(),
        });
        let sync_file = file.try_clone()?;
        let direct = file.try_clone()?;
        let s1 = shared.clone();
        let writer = std::thread::Builder::new()
            .name("aof-writer".into())
            .spawn(move || {
                if let Some(p) = prev {
                    p.finish();
                    s1.written.store(offset, Release);
                    s1.written_watch.send_replace(offset);
                    s1.publish_durable(offset);
                    s1.direct_ok.store(true, Release);
                }
                // The fsync thread starts only now: before, `written` was the old file's.
                let s2 = s1.clone();
                let syncer = std::thread::Builder::new()
                    .name("aof-fsync".into())
                    .spawn(move || everysec_loop(&s2, &sync_file));
                write_loop(&s1, file);
                s1.stopping.store(true, Relaxed);
                if let Ok(t) = syncer {
                    let _ = t.join();
                }
            })?;
        Ok(Writer {
            shared,
            threads: vec![writer],
            file: direct,
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
            file: self.file.try_clone()?,
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

    /// Appends framed bytes ending at journal offset `end`: written at once when nothing else
    /// is in flight (see the module docs), queued for the thread otherwise.
    pub fn push(&self, header: &[u8], payload: &[u8], end: u64) {
        let sh = &*self.shared;
        let Ok(mut q) = sh.queue.lock() else {
            return;
        };
        let parts = [header, payload];
        if self.direct_allowed(&q) {
            let good_len = sh.file_size.load(Acquire);
            // On failure the bytes are queued below: the thread retries and reports the error.
            if let Ok(n) = write_batch(sh, &self.file, parts, good_len) {
                q.end = end;
                sh.file_size.store(good_len + n, Release);
                // Under the lock: the thread reads `written` in its wait condition, so it
                // either sees this offset or is already waiting when notified below.
                sh.written.store(end, Release);
                drop(q);
                sh.written_watch.send_replace(end);
                match sh.policy() {
                    Policy::Always => sh.cv.notify_one(),
                    Policy::No => sh.publish_durable(end),
                    Policy::Everysec => {}
                }
                return;
            }
        }
        q.append(sh, parts, end);
        drop(q);
        sh.cv.notify_one();
    }

    /// Whether [`Writer::push`] may write itself (`q` is the locked queue).
    fn direct_allowed(&self, q: &Queue) -> bool {
        let sh = &*self.shared;
        q.buf.is_empty()
            && !q.stop
            && !sh.busy.load(Acquire)
            && sh.direct_ok.load(Acquire)
            && sh.write_errno.load(Relaxed) == 0
            && !sh.fail_writes.load(Relaxed)
            && !sh.fsync_stuck()
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
fn write_loop(sh: &Shared, file: File) {
    let mut pending: Vec<u8> = Vec::new();
    let mut pending_end = sh.written.load(Relaxed);
    // From what was published as durable, not from `written`: the event loop may already have
    // written a batch directly before this thread got here, and that batch still needs its
    // fsync (starting from `written` skipped it, and its replies waited forever).
    let mut synced = *sh.durable.borrow();
    // Errors are logged at most every 30 s, like Redis.
    let mut last_log: Option<Instant> = None;
    let mut group = Group::default();
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
            if !q.buf.is_empty() {
                if pending.is_empty() {
                    std::mem::swap(&mut pending, &mut q.buf);
                } else {
                    pending.append(&mut q.buf);
                }
                pending_end = q.end;
                sh.busy.store(true, Release);
            }
            q.stop
        };
        if !pending.is_empty() {
            // No direct write happens while `busy`: the size is this thread's to advance.
            let good_len = sh.file_size.load(Acquire);
            match write_batch(sh, &file, [&pending, &[]], good_len) {
                Ok(n) => {
                    sh.queued.fetch_sub(pending.len() as u64, Relaxed);
                    pending.clear();
                    sh.written.store(pending_end, Release);
                    sh.written_watch.send_replace(pending_end);
                    sh.file_size.store(good_len + n, Release);
                    sh.busy.store(false, Release);
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
                    let covered = group.gather(sh);
                    let began = Instant::now();
                    let res = file.sync_data();
                    group.last_fsync = began.elapsed();
                    match res {
                        Ok(()) => {
                            synced = covered;
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

/// Group commit with `always`: who shared the last fsync, and how long it took.
///
/// Why wait at all: the clients one fsync releases send their next writes one after another,
/// as fast as they read their replies. Fsyncing as soon as the first of them is written splits
/// them into two groups that alternate, each waiting for the other's fsync too: on a disk whose
/// fsync takes longer than the clients take to come back, that halves throughput. So before
/// an fsync the thread waits until as many clients have arrived as the last fsync served, but
/// never longer than half an fsync: a client that does not come back costs at most that.
#[derive(Default)]
struct Group {
    /// [`Shared::arrivals`] when the last fsync began.
    at_last: u64,
    /// Arrivals the last fsync served.
    size: u64,
    last_fsync: Duration,
}

impl Group {
    /// Waits for the group (see [`Group`]) and returns the journal offset the fsync covers.
    fn gather(&mut self, sh: &Shared) -> u64 {
        let deadline = Instant::now() + (self.last_fsync / 2).min(GATHER_MAX);
        if let Ok(mut q) = sh.queue.lock() {
            while sh.arrivals.load(Relaxed) - self.at_last < self.size && !q.stop {
                let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                    break;
                };
                q = match sh.cv.wait_timeout(q, left) {
                    Ok((g, _)) => g,
                    Err(_) => break,
                };
            }
        }
        let now = sh.arrivals.load(Relaxed);
        self.size = now - self.at_last;
        self.at_last = now;
        sh.written.load(Acquire)
    }
}

/// Longest wait for a group, see [`Group`].
const GATHER_MAX: Duration = Duration::from_millis(2);

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

/// Appends one batch (`parts` in order) and returns its length; on failure truncates the file
/// back so a retry cannot leave half a frame in the middle of the log.
fn write_batch(sh: &Shared, file: &File, parts: [&[u8]; 2], good_len: u64) -> std::io::Result<u64> {
    let since = sh.fsync_since.load(Relaxed);
    if since != 0 && sh.now_ms().saturating_sub(since) > 2000 {
        sh.delayed_fsync.fetch_add(1, Relaxed);
    }
    let res = if sh.fail_writes.load(Relaxed) {
        Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
    } else {
        write_all_parts(file, parts)
    };
    if let Err(e) = res {
        let _ = file.set_len(good_len);
        return Err(e);
    }
    Ok((parts[0].len() + parts[1].len()) as u64)
}

/// `write_all` of the parts' concatenation, in one `writev` when the kernel takes it whole.
fn write_all_parts(mut file: &File, parts: [&[u8]; 2]) -> std::io::Result<()> {
    let mut done = loop {
        match file.write_vectored(&[IoSlice::new(parts[0]), IoSlice::new(parts[1])]) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => break r?,
        }
    };
    for p in parts {
        let skip = done.min(p.len());
        done -= skip;
        file.write_all(&p[skip..])?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch the event loop writes directly right after the writer starts (before its thread
    /// has run) still gets its fsync with `always`: its replies wait for exactly that.
    #[test]
    fn first_direct_write_is_fsynced() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..50 {
            let path = dir.path().join(format!("incr.{i}"));
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap();
            let w = Writer::start(file, 0, 1000, Policy::Always, None).unwrap();
            w.push(b"*1\r\n$4\r\nPING\r\n", &[], 1014);
            let mut rx = w.shared.durable.subscribe();
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            // The watch's read guard is dropped at once: the writer publishes through it.
            let done = rt.block_on(async {
                let wait = rx.wait_for(|d| *d >= 1014);
                tokio::time::timeout(Duration::from_secs(2), wait).await.is_ok_and(|r| r.is_ok())
            });
            assert!(done, "round {i}: durable stuck at {}", *w.shared.durable.borrow());
            w.stop(Duration::from_secs(1));
        }
    }
}
