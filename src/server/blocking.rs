//! Clients blocked on keys (BLPOP and friends): Redis's `blocked.c`, redesigned for tasks.
//!
//! A handler cannot wait, so a blocking command that finds nothing to serve calls
//! [`Blocking::block`] and writes no reply. The connection task sees the request after the call
//! ([`Blocking::take_request`]), stops processing its input, and sleeps on its client's `wake`
//! notifier (or its timeout). Writes that may satisfy a waiter call
//! [`super::ServerState::signal_key_ready`]; after each command the ready keys are examined and the
//! *first* client waiting on each (FIFO per key) is woken. The woken task re-runs its command,
//! which either serves it (the client is then unblocked, and the keys it waited on are signalled
//! again so the next waiter gets its turn) or blocks again, keeping its place and deadline.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use crate::keyspace::stream::StreamId;
use crate::keyspace::Key;

/// What one blocked client waits for.
#[derive(Debug, Clone)]
pub struct BlockedClient {
    pub db: usize,
    pub keys: Vec<Key>,
    /// When the client gives up; `None` = forever.
    pub deadline: Option<Instant>,
    /// How long the run that blocked took, in µs: the duration the slow log and the latency
    /// histogram get if the block ends without a serving run (timeout, CLIENT UNBLOCK).
    pub first_run_us: u64,
    /// Woken by any change to its keys (deletion, overwrite, flush), not only by the writes
    /// that may serve it: XREADGROUP, which must then fail as in Redis.
    pub on_any_change: bool,
    /// What a blocked stream reader carries from one run of its command to the next.
    pub stream: StreamWait,
}

/// A blocked XREAD / XREADGROUP's state across re-runs. It lives and dies with the block, so
/// nothing outlives a client that was served, timed out or disconnected.
#[derive(Debug, Clone, Default)]
pub struct StreamWait {
    /// The IDs XREAD resolved its arguments (`$` above all) to when it blocked: a re-run after
    /// a wake-up waits for entries after the last ID *of that moment*; resolving `$` again
    /// would miss the very entry that woke it. Empty for XREADGROUP.
    pub ids: Vec<StreamId>,
    /// A fingerprint of the keys' state at the last re-run that found nothing to serve, so
    /// that a reader passes its turn on once per state (see `stream::reblock_unserved`).
    pub seen: Option<u64>,
}

/// The registry of blocked clients.
#[derive(Debug, Default)]
pub struct Blocking {
    /// (db, key) -> ids of the clients waiting on it, in the order they blocked.
    waiters: HashMap<(usize, Key), VecDeque<u64>>,
    clients: HashMap<u64, BlockedClient>,
    /// Keys signalled ready since the last [`Blocking::take_ready`].
    ready: Vec<(usize, Key)>,
    /// Set by [`Blocking::block`] during the current call.
    requested: bool,
    /// CLIENT UNBLOCK requests not yet picked up by the blocked client's connection.
    unblock_requests: HashMap<u64, UnblockMode>,
}

/// How CLIENT UNBLOCK ends a block: as if it timed out, or with an `UNBLOCKED` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnblockMode {
    Timeout,
    Error,
}

impl Blocking {
    /// Asks blocked client `id` to stop waiting (CLIENT UNBLOCK). Returns false if it is not
    /// blocked. The caller wakes the client; its connection then answers as `mode` says.
    pub fn request_unblock(&mut self, id: u64, mode: UnblockMode) -> bool {
        if !self.clients.contains_key(&id) {
            return false;
        }
        self.unblock_requests.insert(id, mode);
        true
    }

    /// Takes a pending CLIENT UNBLOCK request for `id`.
    pub fn take_unblock(&mut self, id: u64) -> Option<UnblockMode> {
        self.unblock_requests.remove(&id)
    }

    /// Number of blocked clients (INFO `blocked_clients`).
    pub fn blocked_count(&self) -> usize {
        self.clients.len()
    }

    pub fn is_blocked(&self, id: u64) -> bool {
        self.clients.contains_key(&id)
    }

    /// The blocked state of a client, if blocked.
    pub fn get(&self, id: u64) -> Option<&BlockedClient> {
        self.clients.get(&id)
    }

    /// Blocks client `id` on `keys` of `db`. A client already blocked (its command is being
    /// re-run after a wake-up) keeps its queue positions and its original deadline.
    pub fn block(&mut self, id: u64, db: usize, keys: &[&[u8]], deadline: Option<Instant>) {
        self.requested = true;
        if self.clients.contains_key(&id) {
            return;
        }
        let mut owned: Vec<Key> = Vec::with_capacity(keys.len());
        for k in keys {
            let k: Key = k.to_vec().into();
            if owned.contains(&k) {
                continue;
            }
            self.waiters.entry((db, k.clone())).or_default().push_back(id);
            owned.push(k);
        }
        let client = BlockedClient {
            db,
            keys: owned,
            deadline,
            first_run_us: 0,
            on_any_change: false,
            stream: StreamWait::default(),
        };
        self.clients.insert(id, client);
    }

    /// Moves blocked client `id` to the back of each of its keys' queues, keeping everything
    /// else it carries (deadline, first run, stream state), and signals the keys so that the
    /// waiter now in front gets its turn. For a woken client that turned out not to be served.
    pub fn requeue(&mut self, id: u64) {
        self.requested = true;
        let Some(bc) = self.clients.get(&id) else {
            return;
        };
        for k in &bc.keys {
            let slot = (bc.db, k.clone());
            if let Some(q) = self.waiters.get_mut(&slot) {
                q.retain(|&c| c != id);
                let first = q.front().copied();
                q.push_back(id);
                if first.is_some() {
                    self.ready.push(slot);
                }
            }
        }
    }

    /// The stream-reader state of blocked client `id`.
    pub fn stream_wait(&mut self, id: u64) -> Option<&mut StreamWait> {
        self.clients.get_mut(&id).map(|b| &mut b.stream)
    }

    /// Whether the command running now asked to block (its statistics and slow-log entry then
    /// wait for the run that serves it).
    pub fn requested(&self) -> bool {
        self.requested
    }

    /// Records how long the run that blocked `id` took (see [`BlockedClient::first_run_us`]);
    /// later runs that block again keep the first one's.
    pub fn note_first_run(&mut self, id: u64, us: u64) {
        if let Some(b) = self.clients.get_mut(&id) {
            if b.first_run_us == 0 {
                b.first_run_us = us.max(1);
            }
        }
    }

    /// Clears the block request flag before a call.
    pub fn reset_request(&mut self) {
        self.requested = false;
    }

    /// Whether the last call asked to block.
    pub fn take_request(&mut self) -> bool {
        std::mem::take(&mut self.requested)
    }

    /// Removes a client from every queue (served, timed out, or disconnected). The keys it
    /// waited on are signalled so that the next waiter in line re-checks them.
    pub fn unblock(&mut self, id: u64) {
        let Some(bc) = self.clients.remove(&id) else {
            return;
        };
        for k in bc.keys {
            let slot = (bc.db, k);
            if let Some(q) = self.waiters.get_mut(&slot) {
                q.retain(|&c| c != id);
                if q.is_empty() {
                    self.waiters.remove(&slot);
                } else {
                    self.ready.push(slot);
                }
            }
        }
    }

    /// Records that `key` may now serve waiters (only if someone waits on it).
    pub fn signal(&mut self, db: usize, key: &[u8]) {
        if self.waiters.is_empty() {
            return;
        }
        let slot = (db, Key::from(key.to_vec()));
        if self.waiters.contains_key(&slot) {
            self.ready.push(slot);
        }
    }

    /// Marks blocked client `id` as woken by any change to its keys (see
    /// [`BlockedClient::on_any_change`]).
    pub fn wake_on_any_change(&mut self, id: u64) {
        if let Some(b) = self.clients.get_mut(&id) {
            b.on_any_change = true;
        }
    }

    /// A key was modified in any way: readies it if a client that wants to hear of every
    /// change waits on it. Called for every modified key, so it returns at once when nobody
    /// is blocked.
    #[inline]
    pub fn signal_changed(&mut self, db: usize, key: &[u8]) {
        if self.waiters.is_empty() {
            return;
        }
        let slot = (db, Key::from(key.to_vec()));
        let wanted = self.waiters.get(&slot).is_some_and(|q| {
            q.iter().any(|id| self.clients.get(id).is_some_and(|b| b.on_any_change))
        });
        if wanted {
            self.ready.push(slot);
        }
    }

    /// Whether some key was signalled since the last [`Blocking::take_ready`].
    #[inline]
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The first waiter of each signalled key, deduplicated, in signal order.
    pub fn take_ready(&mut self) -> Vec<u64> {
        let mut heads: Vec<u64> = Vec::new();
        for slot in std::mem::take(&mut self.ready) {
            if let Some(&id) = self.waiters.get(&slot).and_then(VecDeque::front) {
                if !heads.contains(&id) {
                    heads.push(id);
                }
            }
        }
        heads
    }

    /// The keys of `db` that at least one client waits on (SWAPDB re-checks them all, since
    /// a whole database changed under its waiters).
    pub fn keys_waited_in(&self, db: usize) -> Vec<Key> {
        self.waiters.keys().filter(|(d, _)| *d == db).map(|(_, k)| k.clone()).collect()
    }

    /// How many clients wait on `key` of `db`.
    pub fn waiting_on(&self, db: usize, key: &[u8]) -> usize {
        self.waiters
            .get(&(db, Key::from(key.to_vec())))
            .map_or(0, VecDeque::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_per_key_and_requeue_on_unblock() {
        let mut b = Blocking::default();
        b.block(1, 0, &[b"k", b"k"], None);
        b.block(2, 0, &[b"k", b"j"], None);
        assert!(b.take_request());
        assert_eq!(b.blocked_count(), 2);
        assert_eq!(b.waiting_on(0, b"k"), 2);
        b.signal(0, b"k");
        b.signal(0, b"j");
        assert_eq!(b.take_ready(), vec![1, 2]);
        // Re-blocking keeps the position.
        b.block(1, 0, &[b"k"], None);
        b.signal(0, b"k");
        assert_eq!(b.take_ready(), vec![1]);
        b.unblock(1);
        assert_eq!(b.take_ready(), vec![2]);
        b.unblock(2);
        assert_eq!(b.blocked_count(), 0);
        assert_eq!(b.waiting_on(0, b"j"), 0);
        b.signal(0, b"k");
        assert!(!b.has_ready());
    }

    /// A reader passing its turn goes behind the others and keeps what it carries.
    #[test]
    fn requeue_moves_to_the_back_and_keeps_state() {
        let mut b = Blocking::default();
        b.block(1, 0, &[b"s"], None);
        b.block(2, 0, &[b"s"], None);
        b.note_first_run(1, 40);
        b.wake_on_any_change(1);
        b.stream_wait(1).unwrap().seen = Some(7);
        b.reset_request();
        b.requeue(1);
        assert!(b.take_request());
        assert_eq!(b.take_ready(), vec![2], "the next waiter gets its turn");
        let c = b.get(1).unwrap();
        assert_eq!((c.first_run_us, c.on_any_change, c.stream.seen), (40, true, Some(7)));
        b.unblock(2);
        assert_eq!(b.take_ready(), vec![1]);
        // Alone in its queue: nobody else to hand the turn to.
        b.requeue(1);
        assert!(!b.has_ready());
    }

    #[test]
    fn keys_waited_in_one_db() {
        let mut b = Blocking::default();
        b.block(1, 0, &[b"a", b"b"], None);
        b.block(2, 3, &[b"c"], None);
        b.block(3, 0, &[b"a"], None);
        let mut keys = b.keys_waited_in(0);
        keys.sort();
        assert_eq!(keys, vec![Key::from(b"a".to_vec()), Key::from(b"b".to_vec())]);
        assert_eq!(b.keys_waited_in(3), vec![Key::from(b"c".to_vec())]);
        assert!(b.keys_waited_in(1).is_empty());
        b.unblock(2);
        assert!(b.keys_waited_in(3).is_empty());
    }
}
