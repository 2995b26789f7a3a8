//! Server-assisted client-side caching (Redis `tracking.c`): CLIENT TRACKING's state.
//!
//! **Default mode.** After a read-only command of a tracking client, the keys it read are
//! remembered in one global table (key -> client ids; databases are not told apart, as in
//! Redis). When such a key is modified, every remembered client is sent one invalidation and the
//! key leaves the table: the client must read it again to be told again.
//!
//! **BCAST mode.** Clients subscribe to key prefixes instead; every modified key matching a
//! prefix is collected and the batch of keys is sent once per event-loop turn
//! ([`ServerState::tracking_broadcast`]).
//!
//! **Delivery.** A RESP3 client gets a push frame `>2 invalidate [keys]`; with REDIRECT the
//! message goes to the target client instead, as a push (RESP3) or as a Pub/Sub message on
//! `__redis__:invalidate` (RESP2 client in Pub/Sub mode). Messages for the client running the
//! current command are held until its reply is written ([`ServerState::tracking_flush_pending`]),
//! so they follow the reply, as in Redis 7.0.
//!
//! The per-client part lives in [`ClientShared::tracking`], so CLIENT LIST can show it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::client::ClientShared;
use super::ServerState;

/// The channel RESP2 redirect targets receive invalidations on.
pub const CHANNEL: &[u8] = b"__redis__:invalidate";

/// A client's CLIENT TRACKING options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTracking {
    /// Client id invalidations are redirected to (0: none).
    pub redirect: u64,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// CLIENT CACHING YES/NO was given for the next command.
    pub caching: bool,
    /// The redirect target disconnected (`R` flag).
    pub broken_redir: bool,
    /// BCAST prefixes.
    pub prefixes: BTreeSet<Vec<u8>>,
}

/// A BCAST prefix: its clients and the keys modified since the last broadcast, each with the
/// id of the client that last modified it (for NOLOOP; 0 when no client did).
#[derive(Debug, Default)]
struct Bcast {
    clients: BTreeSet<u64>,
    keys: BTreeMap<Vec<u8>, u64>,
}

/// What an invalidation message carries.
enum Payload<'a> {
    /// One key: encoded as a one-element array.
    Key(&'a [u8]),
    /// Already encoded protocol (a BCAST array of keys, or a null after a flush).
    Proto(&'a [u8]),
}

/// Server-wide tracking state.
#[derive(Debug, Default)]
pub struct Tracking {
    /// Clients with tracking on (INFO `tracking_clients`); zero makes every hook one branch.
    pub clients: usize,
    /// Remembered keys and the clients that may cache them.
    table: HashMap<Vec<u8>, BTreeSet<u64>>,
    /// Sum of the clients over all keys (`tracking_total_items`).
    items: usize,
    prefixes: BTreeMap<Vec<u8>, Bcast>,
    /// The client whose command is running (0 outside commands).
    pub current: u64,
    /// Invalidations for `current` held until its reply is out (`None`: a flush).
    pending: Vec<Option<Vec<u8>>>,
    /// Rounds in a row `tracking-table-max-keys` could not be met (Redis's effort counter).
    over_limit_rounds: usize,
}

impl Tracking {
    /// INFO `tracking_total_keys`.
    pub fn total_keys(&self) -> usize {
        self.table.len()
    }

    /// INFO `tracking_total_items`.
    pub fn total_items(&self) -> usize {
        self.items
    }

    /// INFO `tracking_total_prefixes`.
    pub fn total_prefixes(&self) -> usize {
        self.prefixes.len()
    }
}

/// Why prefixes cannot be used together: Redis's exact errors.
pub fn prefix_collision(existing: &BTreeSet<Vec<u8>>, new: &[&[u8]]) -> Option<String> {
    let overlap = |a: &[u8], b: &[u8]| {
        let n = a.len().min(b.len());
        a[..n] == b[..n]
    };
    for (i, p) in new.iter().enumerate() {
        if let Some(old) = existing.iter().find(|o| overlap(o, p)) {
            return Some(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single \
                 client must not overlap.",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(old)
            ));
        }
        if let Some(q) = new[i + 1..].iter().find(|q| overlap(p, q)) {
            return Some(format!(
                "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a \
                 single client must not overlap.",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(q)
            ));
        }
    }
    None
}

fn encode_key_array(keys: &mut dyn Iterator<Item = &[u8]>, count: usize) -> Vec<u8> {
    let mut v = format!("*{count}\r\n").into_bytes();
    for k in keys {
        v.extend_from_slice(format!("${}\r\n", k.len()).as_bytes());
        v.extend_from_slice(k);
        v.extend_from_slice(b"\r\n");
    }
    v
}

impl ServerState {
    /// CLIENT TRACKING ON: (re)sets the client's options and subscribes its BCAST prefixes
    /// (an empty prefix when BCAST has none).
    pub fn tracking_enable(
        &mut self,
        c: &ClientShared,
        mut opts: ClientTracking,
        prefixes: &[&[u8]],
    ) {
        let mut slot = c.tracking.borrow_mut();
        if slot.is_none() {
            self.tracking.clients += 1;
        }
        // Prefixes accumulate while tracking stays on, and a pending CLIENT CACHING survives
        // re-enabling, as in Redis.
        let old = slot.take().unwrap_or_default();
        opts.prefixes = old.prefixes;
        opts.caching = old.caching;
        opts.broken_redir = false;
        if opts.bcast {
            let id = c.info.borrow().id;
            let list: Vec<&[u8]> = if prefixes.is_empty() { vec![b""] } else { prefixes.to_vec() };
            for p in list {
                self.tracking.prefixes.entry(p.to_vec()).or_default().clients.insert(id);
                opts.prefixes.insert(p.to_vec());
            }
        }
        *slot = Some(opts);
    }

    /// CLIENT TRACKING OFF, RESET, disconnection: the remembered keys of the client are left
    /// in the table and skipped lazily, as in Redis.
    pub fn tracking_disable(&mut self, c: &ClientShared) {
        let Some(t) = c.tracking.borrow_mut().take() else {
            return;
        };
        self.tracking.clients -= 1;
        let id = c.info.borrow().id;
        for p in &t.prefixes {
            if let Some(b) = self.tracking.prefixes.get_mut(p) {
                b.clients.remove(&id);
                if b.clients.is_empty() {
                    self.tracking.prefixes.remove(p);
                }
            }
        }
    }

    /// After a read-only command of a tracking client (not BCAST): remembers the keys it read,
    /// unless OPTIN without CACHING YES or OPTOUT with CACHING NO.
    pub fn tracking_remember(&mut self, c: &ClientShared, keys: &[&[u8]]) {
        let id = {
            let t = c.tracking.borrow();
            let Some(t) = t.as_ref() else { return };
            if t.bcast || (t.optin && !t.caching) || (t.optout && t.caching) {
                return;
            }
            c.info.borrow().id
        };
        for k in keys {
            let ids = self.tracking.table.entry(k.to_vec()).or_default();
            if ids.insert(id) {
                self.tracking.items += 1;
            }
        }
    }

    /// A key changed: collects it for BCAST prefixes (when `bcast`) and invalidates it for the
    /// clients that read it.
    pub fn tracking_invalidate(&mut self, key: &[u8], bcast: bool) {
        if bcast && !self.tracking.prefixes.is_empty() {
            let writer = self.tracking.current;
            for (p, b) in self.tracking.prefixes.iter_mut() {
                if key.starts_with(p) {
                    b.keys.insert(key.to_vec(), writer);
                }
            }
        }
        let Some(ids) = self.tracking.table.remove(key) else {
            return;
        };
        self.tracking.items -= ids.len();
        for id in ids {
            let Some(target) = self.clients.get(&id).cloned() else {
                continue;
            };
            let (bcast_mode, noloop) = match target.tracking.borrow().as_ref() {
                Some(t) => (t.bcast, t.noloop),
                None => continue,
            };
            if bcast_mode || (noloop && id == self.tracking.current) {
                continue;
            }
            if id == self.tracking.current {
                self.tracking.pending.push(Some(key.to_vec()));
            } else {
                self.tracking_send(&target, Payload::Key(key));
            }
        }
    }

    /// FLUSHDB / FLUSHALL: every tracking client is told that all keys are invalid (a null),
    /// and the table is emptied.
    pub fn tracking_on_flush(&mut self) {
        if self.tracking.clients > 0 {
            let all: Vec<_> = self.clients.values().cloned().collect();
            for c in all {
                if c.tracking.borrow().is_none() {
                    continue;
                }
                if c.info.borrow().id == self.tracking.current {
                    self.tracking.pending.push(None);
                } else {
                    let null: &[u8] = if c.info.borrow().resp == 3 { b"_\r\n" } else { b"$-1\r\n" };
                    self.tracking_send(&c, Payload::Proto(null));
                }
            }
        }
        self.tracking.table = HashMap::new();
        self.tracking.items = 0;
    }

    /// Sends the invalidations held for the current client: after its command (they follow its
    /// reply), or after evictions made before the command runs (they precede it).
    #[inline]
    pub fn tracking_flush_pending(&mut self) {
        if !self.tracking.pending.is_empty() {
            self.send_pending();
        }
    }

    #[inline(never)]
    fn send_pending(&mut self) {
        let id = self.tracking.current;
        let pending = std::mem::take(&mut self.tracking.pending);
        let Some(c) = self.clients.get(&id).cloned() else {
            return;
        };
        for p in pending {
            match p {
                Some(k) => self.tracking_send(&c, Payload::Key(&k)),
                None => {
                    let null: &[u8] = if c.info.borrow().resp == 3 { b"_\r\n" } else { b"$-1\r\n" };
                    self.tracking_send(&c, Payload::Proto(null));
                }
            }
        }
    }

    /// Sends the keys collected for each BCAST prefix to its clients (Redis does it before
    /// sleeping, once per event-loop turn).
    pub fn tracking_broadcast(&mut self) {
        if self.tracking.clients == 0 {
            return;
        }
        let mut sends: Vec<(u64, Vec<u8>)> = Vec::new();
        for b in self.tracking.prefixes.values_mut() {
            if b.keys.is_empty() {
                continue;
            }
            let keys = std::mem::take(&mut b.keys);
            let all = encode_key_array(&mut keys.keys().map(Vec::as_slice), keys.len());
            for &id in &b.clients {
                let noloop = self
                    .clients
                    .get(&id)
                    .is_some_and(|c| c.tracking.borrow().as_ref().is_some_and(|t| t.noloop));
                if !noloop {
                    sends.push((id, all.clone()));
                    continue;
                }
                let mine: Vec<&[u8]> =
                    keys.iter().filter(|(_, w)| **w != id).map(|(k, _)| k.as_slice()).collect();
                if !mine.is_empty() {
                    sends.push((id, encode_key_array(&mut mine.iter().copied(), mine.len())));
                }
            }
        }
        for (id, proto) in sends {
            if let Some(c) = self.clients.get(&id).cloned() {
                self.tracking_send(&c, Payload::Proto(&proto));
            }
        }
    }

    /// Keeps the table within `tracking-table-max-keys` by invalidating keys (their clients
    /// are told, as if the keys had changed), with Redis's growing effort per round.
    pub fn tracking_limit(&mut self) {
        let max = self.config.tracking_table_max_keys as usize;
        if max == 0 || self.tracking.table.len() <= max {
            self.tracking.over_limit_rounds = 0;
            return;
        }
        let mut effort = 100 * (self.tracking.over_limit_rounds + 1);
        while effort > 0 {
            effort -= 1;
            let Some(k) = self.tracking.table.keys().next().cloned() else {
                break;
            };
            self.tracking_invalidate(&k, false);
            if self.tracking.table.len() <= max {
                self.tracking.over_limit_rounds = 0;
                return;
            }
        }
        self.tracking.over_limit_rounds += 1;
    }

    /// Delivers one invalidation for tracking client `c`, following its redirection.
    fn tracking_send(&mut self, c: &ClientShared, payload: Payload<'_>) {
        let redirect = c.tracking.borrow().as_ref().map_or(0, |t| t.redirect);
        let target = if redirect != 0 {
            let Some(r) = self.clients.get(&redirect).cloned() else {
                if let Some(t) = c.tracking.borrow_mut().as_mut() {
                    t.broken_redir = true;
                }
                if c.info.borrow().resp == 3 {
                    let msg = format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{redirect}\r\n");
                    c.push(msg.as_bytes());
                }
                return;
            };
            Some(r)
        } else {
            None
        };
        let to: &ClientShared = target.as_deref().unwrap_or(c);
        let header: &[u8] = if to.info.borrow().resp == 3 {
            b">2\r\n$10\r\ninvalidate\r\n"
        } else if target.is_some() && to.subscribed() {
            b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
        } else {
            return;
        };
        match payload {
            Payload::Key(k) => {
                let len = format!("*1\r\n${}\r\n", k.len());
                to.push_parts(&[header, len.as_bytes(), k, b"\r\n"]);
            }
            Payload::Proto(p) => to.push_parts(&[header, p]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collisions_match_redis_wording() {
        let none = BTreeSet::new();
        let e = prefix_collision(&none, &[b"foo", b"fo"]).unwrap();
        assert!(e.contains("Prefix 'foo' overlaps with another provided prefix 'fo'"));
        let mut old = BTreeSet::new();
        old.insert(b"ab".to_vec());
        let e = prefix_collision(&old, &[b"a"]).unwrap();
        assert!(e.contains("Prefix 'a' overlaps with an existing prefix 'ab'"));
        assert!(prefix_collision(&old, &[b"b", b"c"]).is_none());
    }

    fn client(state: &mut ServerState, id: u64) -> std::rc::Rc<ClientShared> {
        use super::super::client::ClientInfo;
        let a: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
        let c = std::rc::Rc::new(ClientShared::new(ClientInfo::new(id, a, a, 0)));
        c.info.borrow_mut().resp = 3;
        state.clients.insert(id, c.clone());
        c
    }

    #[test]
    fn table_counts_follow_reads_and_writes() {
        let mut st = ServerState::new(crate::config::Config::default());
        let (a, b) = (client(&mut st, 1), client(&mut st, 2));
        st.tracking_enable(&a, ClientTracking::default(), &[]);
        st.tracking_enable(&b, ClientTracking::default(), &[]);
        st.tracking_remember(&a, &[b"k", b"j"]);
        st.tracking_remember(&b, &[b"k"]);
        assert_eq!((st.tracking.total_keys(), st.tracking.total_items()), (2, 3));
        st.tracking.current = 2;
        st.tracking_invalidate(b"k", true);
        assert_eq!((st.tracking.total_keys(), st.tracking.total_items()), (1, 1));
        // The writer's own invalidation waits for its reply; the other client has it now.
        assert_eq!(a.take_pushed(), b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n");
        assert!(b.take_pushed().is_empty());
        st.tracking_flush_pending();
        assert_eq!(b.take_pushed(), b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n");
        st.tracking_disable(&a);
        st.tracking_disable(&b);
        assert_eq!(st.tracking.clients, 0);
    }

    #[test]
    fn key_arrays_are_resp() {
        let keys: Vec<&[u8]> = vec![b"a", b"bc"];
        let v = encode_key_array(&mut keys.iter().copied(), 2);
        assert_eq!(v, b"*2\r\n$1\r\na\r\n$2\r\nbc\r\n");
    }
}
