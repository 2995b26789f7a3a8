//! The WATCH registry: optimistic locking for MULTI/EXEC (Redis's `watched_keys`).
//!
//! Each database maps a watched key to the clients watching it; each client lists the keys it
//! watches, so UNWATCH and disconnects need not scan every key. Any modification of a watched
//! key marks its watchers *dirty* (Redis's `CLIENT_DIRTY_CAS`), and their next EXEC fails with a
//! null array. A dirty client stops watching at once: nothing can make it clean again except
//! UNWATCH, EXEC or DISCARD, so keeping its keys would only cost memory and time.
//!
//! A key that was already logically expired (but still stored) when it was watched is flagged
//! `stale`: its later deletion by expiry is no logical change, so it does not dirty the watcher.

use std::collections::{HashMap, HashSet};

/// One watcher of a key.
#[derive(Debug, Clone, Copy)]
struct Watcher {
    client: u64,
    /// The key was logically expired when WATCH ran.
    stale: bool,
}

/// Where a key stands physically in a database, as the flush/swap rules need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Absent,
    Live,
    /// Stored but logically expired.
    Stale,
}

/// Watched keys of every database, and the clients whose transactions they doom.
#[derive(Debug, Default)]
pub struct Watches {
    /// Per database: key -> its watchers, in WATCH order.
    by_key: Vec<HashMap<Vec<u8>, Vec<Watcher>>>,
    /// Per client: the (db, key) pairs it watches.
    by_client: HashMap<u64, Vec<(usize, Vec<u8>)>>,
    /// Clients whose next EXEC must fail.
    dirty: HashSet<u64>,
}

impl Watches {
    /// Starts watching `key` of `db` for `client` (a no-op if it already does, or if the client
    /// is already dirty: its EXEC fails anyway).
    pub fn watch(&mut self, client: u64, db: usize, key: &[u8], stale: bool) {
        if self.dirty.contains(&client) {
            return;
        }
        let mine = self.by_client.entry(client).or_default();
        if mine.iter().any(|(d, k)| *d == db && k == key) {
            return;
        }
        mine.push((db, key.to_vec()));
        if self.by_key.len() <= db {
            self.by_key.resize_with(db + 1, HashMap::new);
        }
        self.by_key[db]
            .entry(key.to_vec())
            .or_default()
            .push(Watcher { client, stale });
    }

    /// Stops watching every key of `client` (the dirty flag is left alone).
    pub fn unwatch_all(&mut self, client: u64) {
        let Some(keys) = self.by_client.remove(&client) else {
            return;
        };
        for (db, key) in keys {
            let Some(map) = self.by_key.get_mut(db) else {
                continue;
            };
            if let Some(ws) = map.get_mut(&key) {
                ws.retain(|w| w.client != client);
                if ws.is_empty() {
                    map.remove(&key);
                }
            }
        }
    }

    /// UNWATCH, EXEC, DISCARD, RESET and disconnect: no keys, not dirty.
    pub fn forget(&mut self, client: u64) {
        self.unwatch_all(client);
        self.dirty.remove(&client);
    }

    pub fn is_dirty(&self, client: u64) -> bool {
        self.dirty.contains(&client)
    }

    /// Marks `client` dirty and drops its watches.
    pub fn mark_dirty(&mut self, client: u64) {
        self.dirty.insert(client);
        self.unwatch_all(client);
    }

    /// Number of keys `client` watches (CLIENT LIST `watch` memory, tests).
    pub fn count(&self, client: u64) -> usize {
        self.by_client.get(&client).map_or(0, Vec::len)
    }

    /// The keys `client` watches that were live when watched, for EXEC's check that none of
    /// them has expired since (Redis 7.0 `isWatchedKeyExpired`).
    pub fn live_watched(&self, client: u64) -> Vec<(usize, &[u8])> {
        let Some(keys) = self.by_client.get(&client) else {
            return Vec::new();
        };
        keys.iter()
            .filter(|(db, k)| {
                self.watchers(*db, k)
                    .is_some_and(|ws| ws.iter().any(|w| w.client == client && !w.stale))
            })
            .map(|(db, k)| (*db, k.as_slice()))
            .collect()
    }

    fn watchers(&self, db: usize, key: &[u8]) -> Option<&Vec<Watcher>> {
        self.by_key.get(db)?.get(key)
    }

    /// A write changed `key` of `db`: every watcher becomes dirty.
    #[inline]
    pub fn touch(&mut self, db: usize, key: &[u8]) {
        let Some(ws) = self.by_key.get(db).and_then(|m| m.get(key)) else {
            return;
        };
        let ids: Vec<u64> = ws.iter().map(|w| w.client).collect();
        for id in ids {
            self.mark_dirty(id);
        }
    }

    /// `key` of `db` was deleted because it expired. For a watcher that saw it already expired
    /// nothing changed logically (it just stops being stale); every other watcher is dirty.
    pub fn expired(&mut self, db: usize, key: &[u8]) {
        let Some(ws) = self.by_key.get_mut(db).and_then(|m| m.get_mut(key)) else {
            return;
        };
        let mut doomed = Vec::new();
        for w in ws.iter_mut() {
            if w.stale {
                w.stale = false;
            } else {
                doomed.push(w.client);
            }
        }
        for id in doomed {
            self.mark_dirty(id);
        }
    }

    /// FLUSHDB / FLUSHALL (`replaced` = None) or SWAPDB (`replaced` = the other database) is
    /// about to change database `db` wholesale. A watched key dirties its watchers when it
    /// exists on either side; stale keys follow Redis's rules (deleting or keeping a stale key
    /// changes nothing, a missing key replaced by a stale one becomes a stale watch).
    /// `presence(db, key)` reports where a key stands before the change.
    pub fn touch_db(
        &mut self,
        db: usize,
        replaced: Option<usize>,
        presence: impl Fn(usize, &[u8]) -> Presence,
    ) {
        let Some(map) = self.by_key.get_mut(db) else {
            return;
        };
        let mut doomed = Vec::new();
        for (key, ws) in map.iter_mut() {
            let here = presence(db, key);
            let there = replaced.map_or(Presence::Absent, |r| presence(r, key));
            if here == Presence::Absent && there == Presence::Absent {
                continue;
            }
            for w in ws.iter_mut() {
                if w.stale {
                    if there == Presence::Absent {
                        w.stale = false;
                        continue;
                    }
                    if there == Presence::Stale {
                        continue;
                    }
                } else if here == Presence::Absent && there == Presence::Stale {
                    w.stale = true;
                    continue;
                }
                doomed.push(w.client);
            }
        }
        for id in doomed {
            self.mark_dirty(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_dirties_watchers_and_drops_their_keys() {
        let mut w = Watches::default();
        w.watch(1, 0, b"a", false);
        w.watch(1, 0, b"b", false);
        w.watch(2, 0, b"a", false);
        w.watch(3, 1, b"a", false);
        w.touch(0, b"a");
        assert!(w.is_dirty(1) && w.is_dirty(2) && !w.is_dirty(3));
        assert_eq!(w.count(1), 0);
        w.watch(1, 0, b"c", false);
        assert_eq!(w.count(1), 0, "a dirty client watches nothing");
        w.forget(1);
        assert!(!w.is_dirty(1));
        w.touch(0, b"b");
        assert!(!w.is_dirty(1));
    }

    #[test]
    fn stale_watch_survives_expiry_and_flush() {
        let mut w = Watches::default();
        w.watch(1, 0, b"x", true);
        assert!(w.live_watched(1).is_empty());
        w.expired(0, b"x");
        assert!(!w.is_dirty(1));
        assert_eq!(w.live_watched(1), vec![(0, &b"x"[..])]);
        w.watch(2, 0, b"y", true);
        w.touch_db(0, None, |_, _| Presence::Stale);
        assert!(!w.is_dirty(2));
        w.watch(3, 0, b"z", false);
        w.touch_db(0, Some(1), |db, _| {
            if db == 0 {
                Presence::Absent
            } else {
                Presence::Live
            }
        });
        assert!(w.is_dirty(3));
    }
}
