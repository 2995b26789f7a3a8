//! The Pub/Sub registry (Redis `pubsub.c`): who listens to which channel, pattern or shard
//! channel, and delivery of messages to the listeners' connections.
//!
//! A message for another client is encoded once and queued on that client's
//! [`ClientShared`] (its connection task writes it); only the 2-byte header differs between
//! RESP2 (`*3`) and RESP3 (`>3`), so the body is shared. Queued bytes count as the client's
//! pending output, which `client-output-buffer-limit pubsub` bounds: a subscriber that does not
//! read is disconnected instead of growing server memory.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use super::client::ClientShared;
use crate::config::ObufLimit;

/// The three subscription namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE / PUBLISH.
    Channel,
    /// PSUBSCRIBE (glob patterns matched by PUBLISH).
    Pattern,
    /// SSUBSCRIBE / SPUBLISH (shard channels; patterns never see them).
    Shard,
}

impl Kind {
    fn index(self) -> usize {
        self as usize
    }
}

/// One client's subscriptions of each kind, each name with its subscription order (mass
/// unsubscribes answer in that order).
#[derive(Debug, Default)]
struct ClientSubs {
    names: [HashMap<Vec<u8>, u64>; 3],
    next_seq: u64,
}

/// Listeners of one channel or pattern, in subscription order (the order messages go out).
type Listeners = Vec<Rc<ClientShared>>;

/// Every subscription on the server.
#[derive(Debug, Default)]
pub struct PubSub {
    channels: HashMap<Vec<u8>, Listeners>,
    shard_channels: HashMap<Vec<u8>, Listeners>,
    /// Patterns in first-subscription order; PUBLISH tries each one.
    patterns: Vec<(Vec<u8>, Listeners)>,
    clients: HashMap<u64, ClientSubs>,
}

/// Where a message goes and how to bound what it queues.
pub struct Delivery {
    pub limit: ObufLimit,
}

impl PubSub {
    /// Subscribes `client` to `name`. Returns false if it already was.
    pub fn subscribe(&mut self, kind: Kind, client: &Rc<ClientShared>, name: &[u8]) -> bool {
        let id = client.info.borrow().id;
        let subs = self.clients.entry(id).or_default();
        let set = &mut subs.names[kind.index()];
        if set.contains_key(name) {
            return false;
        }
        set.insert(name.to_vec(), subs.next_seq);
        subs.next_seq += 1;
        match kind {
            Kind::Pattern => match self.patterns.iter_mut().find(|(p, _)| p == name) {
                Some((_, l)) => l.push(client.clone()),
                None => self.patterns.push((name.to_vec(), vec![client.clone()])),
            },
            _ => self.map_mut(kind).entry(name.to_vec()).or_default().push(client.clone()),
        }
        self.sync_counts(client);
        true
    }

    /// Unsubscribes `client` from `name`. Returns false if it was not subscribed.
    pub fn unsubscribe(&mut self, kind: Kind, client: &ClientShared, name: &[u8]) -> bool {
        let id = client.info.borrow().id;
        let Some(subs) = self.clients.get_mut(&id) else {
            return false;
        };
        if subs.names[kind.index()].remove(name).is_none() {
            return false;
        }
        let drop_listener = |l: &mut Listeners| {
            if let Some(pos) = l.iter().position(|c| std::ptr::eq(&**c, client)) {
                l.remove(pos);
            }
            l.is_empty()
        };
        match kind {
            Kind::Pattern => {
                if let Some(i) = self.patterns.iter().position(|(p, _)| p == name) {
                    if drop_listener(&mut self.patterns[i].1) {
                        self.patterns.remove(i);
                    }
                }
            }
            _ => {
                let map = self.map_mut(kind);
                if map.get_mut(name).is_some_and(drop_listener) {
                    map.remove(name);
                }
            }
        }
        self.sync_counts(client);
        true
    }

    /// The names `client_id` is subscribed to, in subscription order.
    pub fn client_names(&self, kind: Kind, client_id: u64) -> Vec<Vec<u8>> {
        let Some(subs) = self.clients.get(&client_id) else {
            return Vec::new();
        };
        let mut v: Vec<(&Vec<u8>, u64)> =
            subs.names[kind.index()].iter().map(|(n, s)| (n, *s)).collect();
        v.sort_unstable_by_key(|(_, s)| *s);
        v.into_iter().map(|(n, _)| n.clone()).collect()
    }

    /// Drops every subscription of a client (disconnect, RESET), without notifying it.
    pub fn remove_client(&mut self, client: &ClientShared) {
        let id = client.info.borrow().id;
        if !self.clients.contains_key(&id) {
            return;
        }
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            for name in self.client_names(kind, id) {
                self.unsubscribe(kind, client, &name);
            }
        }
        self.clients.remove(&id);
    }

    /// Copies a client's subscription counts into its CLIENT LIST fields and keeps its `P`
    /// flag (Pub/Sub mode) in step.
    fn sync_counts(&mut self, client: &ClientShared) {
        let id = client.info.borrow().id;
        let counts = self
            .clients
            .get(&id)
            .map_or([0; 3], |s| [s.names[0].len(), s.names[1].len(), s.names[2].len()]);
        if counts == [0; 3] {
            self.clients.remove(&id);
        }
        let mut info = client.info.borrow_mut();
        [info.sub, info.psub, info.ssub] = counts;
        let subscribed = counts != [0; 3];
        if subscribed != info.flags.contains('P') {
            set_pubsub_flag(&mut info.flags, subscribed);
        }
    }

    /// How many channels plus patterns a client is subscribed to (what SUBSCRIBE and
    /// PSUBSCRIBE report), or shard channels for the shard namespace.
    pub fn client_count(&self, kind: Kind, client_id: u64) -> usize {
        let Some(s) = self.clients.get(&client_id) else {
            return 0;
        };
        match kind {
            Kind::Shard => s.names[2].len(),
            _ => s.names[0].len() + s.names[1].len(),
        }
    }

    /// Subscribers of a channel, patterns aside (PUBSUB NUMSUB / SHARDNUMSUB).
    pub fn numsub(&self, kind: Kind, name: &[u8]) -> usize {
        self.map(kind).get(name).map_or(0, Vec::len)
    }

    /// Distinct patterns subscribed to by anyone (PUBSUB NUMPAT).
    pub fn numpat(&self) -> usize {
        self.patterns.len()
    }

    /// Active channels (with at least one subscriber) matching `pattern`, if given.
    pub fn active(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<&[u8]> {
        self.map(kind)
            .keys()
            .filter(|c| pattern.is_none_or(|p| crate::util::glob::matches(p, c, false)))
            .map(Vec::as_slice)
            .collect()
    }

    /// Total subscriptions (INFO's `pubsub_channels`, `pubsub_patterns`,
    /// `pubsubshard_channels`).
    pub fn totals(&self) -> (usize, usize, usize) {
        (self.channels.len(), self.patterns.len(), self.shard_channels.len())
    }

    /// Whether nobody is subscribed to anything (lets notifications skip encoding).
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Publishes `message` on `channel` (`Kind::Channel` or `Kind::Shard`) to its subscribers
    /// and, for plain channels, to the subscribers of every matching pattern. Returns the
    /// number of receivers.
    pub fn publish(&self, kind: Kind, channel: &[u8], message: &[u8], d: &Delivery) -> usize {
        let mut receivers = 0;
        if let Some(listeners) = self.map(kind).get(channel) {
            let tag: &[u8] = if kind == Kind::Shard { b"smessage" } else { b"message" };
            let body = encode(&[tag, channel, message]);
            for c in listeners {
                deliver(c, 3, &body, d);
            }
            receivers += listeners.len();
        }
        if kind == Kind::Shard {
            return receivers;
        }
        for (pattern, listeners) in &self.patterns {
            if !crate::util::glob::matches(pattern, channel, false) {
                continue;
            }
            let body = encode(&[b"pmessage", pattern, channel, message]);
            for c in listeners {
                deliver(c, 4, &body, d);
            }
            receivers += listeners.len();
        }
        receivers
    }

    fn map(&self, kind: Kind) -> &HashMap<Vec<u8>, Listeners> {
        if kind == Kind::Shard {
            &self.shard_channels
        } else {
            &self.channels
        }
    }

    fn map_mut(&mut self, kind: Kind) -> &mut HashMap<Vec<u8>, Listeners> {
        if kind == Kind::Shard {
            &mut self.shard_channels
        } else {
            &mut self.channels
        }
    }
}

/// Sets or clears the `P` client flag, keeping Redis's flag order (`O`/`S`/`M` come first).
fn set_pubsub_flag(flags: &mut String, on: bool) {
    if !on {
        flags.retain(|f| f != 'P');
        if flags.is_empty() {
            flags.push('N');
        }
        return;
    }
    let at = flags.chars().take_while(|f| matches!(f, 'O' | 'S' | 'M')).count();
    flags.insert(at, 'P');
    if flags.len() > 1 {
        flags.retain(|f| f != 'N');
    }
}

/// Bulk strings, concatenated: the body of a message frame (its header is per client).
fn encode(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 16).sum());
    for p in parts {
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(p.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Queues one frame of `len` elements for `c`, framed for its protocol, then enforces its
/// output buffer limit.
fn deliver(c: &ClientShared, len: u8, body: &[u8], d: &Delivery) {
    if c.killed.get() {
        return;
    }
    let resp3 = c.info.borrow().resp == 3;
    let header = [if resp3 { b'>' } else { b'*' }, b'0' + len, b'\r', b'\n'];
    c.push_parts(&[&header, body]);
    if over_limit(c, d.limit) {
        close_for_limit(c);
    }
}

/// Redis's `checkClientOutputBufferLimits`: over the hard limit, or over the soft limit for
/// longer than its seconds. Starts or resets the soft-limit timer as a side effect.
pub fn over_limit(c: &ClientShared, limit: ObufLimit) -> bool {
    let pending = c.pending_output() as u64;
    if limit.hard > 0 && pending >= limit.hard {
        return true;
    }
    if limit.soft == 0 || pending < limit.soft {
        c.soft_limit_since.set(None);
        return false;
    }
    match c.soft_limit_since.get() {
        None => {
            c.soft_limit_since.set(Some(Instant::now()));
            false
        }
        Some(t) => t.elapsed().as_secs() > limit.soft_secs,
    }
}

/// Disconnects a client over its output buffer limit, like Redis (which logs it as a warning).
fn close_for_limit(c: &ClientShared) {
    let (id, addr) = {
        let i = c.info.borrow();
        (i.id, i.addr)
    };
    tracing::warn!(
        "Client id={id} addr={addr} scheduled to be closed ASAP for overcoming of output \
         buffer limits."
    );
    c.kill();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::client::ClientInfo;

    fn client(id: u64) -> Rc<ClientShared> {
        let a = "127.0.0.1:1".parse().unwrap();
        Rc::new(ClientShared::new(ClientInfo::new(id, a, a, 0)))
    }

    const NO_LIMIT: Delivery = Delivery { limit: ObufLimit { hard: 0, soft: 0, soft_secs: 0 } };

    #[test]
    fn subscribe_publish_unsubscribe() {
        let mut ps = PubSub::default();
        let (a, b) = (client(1), client(2));
        assert!(ps.subscribe(Kind::Channel, &a, b"ch"));
        assert!(!ps.subscribe(Kind::Channel, &a, b"ch"));
        assert!(ps.subscribe(Kind::Pattern, &b, b"c*"));
        assert_eq!(a.info.borrow().flags, "P");
        assert_eq!(ps.publish(Kind::Channel, b"ch", b"hi", &NO_LIMIT), 2);
        assert_eq!(&a.take_pushed()[..], b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
        assert_eq!(
            &b.take_pushed()[..],
            b"*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$2\r\nhi\r\n"
        );
        assert_eq!(ps.publish(Kind::Shard, b"ch", b"hi", &NO_LIMIT), 0);
        assert!(ps.unsubscribe(Kind::Channel, &a, b"ch"));
        assert_eq!(a.info.borrow().flags, "N");
        assert_eq!(ps.numsub(Kind::Channel, b"ch"), 0);
        ps.remove_client(&b);
        assert_eq!(ps.numpat(), 0);
        assert!(ps.is_empty());
    }

    #[test]
    fn hard_limit_disconnects() {
        let mut ps = PubSub::default();
        let a = client(1);
        ps.subscribe(Kind::Channel, &a, b"ch");
        let d = Delivery { limit: ObufLimit { hard: 100, soft: 0, soft_secs: 0 } };
        ps.publish(Kind::Channel, b"ch", &[b'x'; 60], &d);
        assert!(!a.killed.get());
        ps.publish(Kind::Channel, b"ch", &[b'x'; 60], &d);
        assert!(a.killed.get());
        assert_eq!(a.pending_output(), 0);
    }

    #[test]
    fn client_names_keep_subscription_order() {
        let mut ps = PubSub::default();
        let a = client(1);
        for n in [&b"z"[..], b"a", b"m"] {
            ps.subscribe(Kind::Channel, &a, n);
        }
        let names = ps.client_names(Kind::Channel, 1);
        assert_eq!(names, vec![b"z".to_vec(), b"a".to_vec(), b"m".to_vec()]);
        assert_eq!(ps.client_count(Kind::Pattern, 1), 3);
    }
}
