//! Primary/replica replication (Redis's `replication.c`). Wire format: `formats/replication.md`.
//!
//! **Master side** ([`master`]). The journal's tap ([`Feed`]) receives every byte of the write
//! stream as it is appended: it keeps the last `repl-backlog-size` bytes ([`backlog`]) and
//! queues the bytes on every attached replica's output (its `ClientShared::pushed`, bounded by
//! `client-output-buffer-limit replica`). The replication id is `Replication::replid` (the
//! `run_id` at start-up) and the offset is the journal offset. A client that runs
//! `SYNC`/`PSYNC` is handed over to [`master::serve_replica`], which answers `+CONTINUE` from
//! the backlog or `+FULLRESYNC` with a snapshot (our format for a ferrodis replica, a Redis
//! RDB for any other peer), then writes the stream and reads the replica's `REPLCONF ACK`s.
//!
//! **Replica side** ([`replica`]). `REPLICAOF host port` starts a task that connects, performs
//! the handshake, loads the snapshot or continues from its offset, and applies the stream
//! through `dispatch::execute` as an internal client in loading mode; it proxies the bytes it
//! applied, unchanged, to its own replicas (chained replication) through `Journal::feed_raw`.

pub mod aof_resync;
pub mod backlog;
pub mod commands;
pub mod failover;
pub mod master;
pub mod replica;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use crate::config::{ObufClass, ObufLimit};
use crate::error::CmdError;
use crate::server::client::{Client, ClientShared};
use crate::server::ServerState;
use backlog::Backlog;

/// The all-zero id Redis shows for an unset `master_replid2`.
pub const NULL_REPLID: &str = "0000000000000000000000000000000000000000";

/// Redis's refusal of writes on a read-only replica.
pub const READONLY_ERROR: &str = "READONLY You can't write against a read only replica.";

/// Redis's refusal of writes without enough good replicas.
pub const NOREPLICAS_ERROR: &str = "NOREPLICAS Not enough good replicas to write.";

/// Replication state (`ServerState::repl`).
#[derive(Debug)]
pub struct Replication {
    /// The replication id (INFO `master_replid`): `run_id` at start-up, the master's on a
    /// replica, a new one at promotion. Unlike `run_id`, it survives restarts (PSYNC2).
    pub replid: String,
    /// The backlog and attached replicas, installed as the journal's tap once a replica has
    /// connected (or this server synced with a master).
    pub feed: Option<Rc<Feed>>,
    /// The previous replication id and the first offset it no longer covers (PSYNC2).
    pub replid2: String,
    pub second_offset: i64,
    /// Set while this server is a replica.
    pub master: Option<MasterLink>,
    /// Clients that ran SYNC/PSYNC in the batch being executed, to be handed over to
    /// [`master::serve_replica`] by their connection: id -> (replid, offset) asked, or `None`
    /// for SYNC.
    pub handoffs: HashMap<u64, Option<(String, i64)>>,
    /// Clients blocked in WAIT.
    pub waiters: HashMap<u64, Waiter>,
    /// Bumped at every REPLICAOF: a replica task of an older generation stops.
    pub generation: u64,
    pub sync_full: u64,
    pub sync_partial_ok: u64,
    pub sync_partial_err: u64,
    /// Partial resyncs served from the append-only log (also counted in `sync_partial_ok`).
    pub sync_partial_aof: u64,
    /// The background save replicas are waiting for: its offset, the save count before it,
    /// its file (a replica arriving meanwhile joins it, see `master::join_bgsave`).
    pub sync_bgsave: Option<(u64, u64, std::path::PathBuf)>,
    /// Replicas waiting out `repl-diskless-sync-delay`.
    pub delaying: usize,
    /// Bumped, and `delay_over` notified, when the first of them is done waiting: the others
    /// stop waiting with it, so that all of them share its snapshot (as Redis starts one
    /// BGSAVE for every replica waiting to start one).
    pub delay_round: u64,
    pub delay_over: std::rc::Rc<tokio::sync::Notify>,
    /// Keys that this replica's own clients (`replica-read-only no`) gave a time to live, with
    /// a bit per database (the first 64): [`expire_replica_keys`] deletes them once it has
    /// passed, since a replica never expires keys by its clock and its master knows nothing
    /// of these.
    pub replica_keys_with_expire: HashMap<Vec<u8>, u64>,
    /// FAILOVER in progress, if any.
    pub failover: Option<failover::Failover>,
    /// What clients announced with REPLCONF before their SYNC / PSYNC.
    pub announced: HashMap<u64, Announced>,
    /// Wakes the replica task (REPLICAOF changed the target).
    pub wake: Rc<tokio::sync::Notify>,
}

impl Default for Replication {
    fn default() -> Self {
        Replication {
            replid: NULL_REPLID.to_string(),
            feed: None,
            replid2: NULL_REPLID.to_string(),
            second_offset: -1,
            master: None,
            handoffs: HashMap::new(),
            waiters: HashMap::new(),
            generation: 0,
            sync_full: 0,
            sync_partial_ok: 0,
            sync_partial_err: 0,
            sync_partial_aof: 0,
            failover: None,
            replica_keys_with_expire: HashMap::new(),
            sync_bgsave: None,
            delaying: 0,
            delay_round: 0,
            delay_over: Default::default(),
            announced: HashMap::new(),
            wake: Rc::new(tokio::sync::Notify::new()),
        }
    }
}

impl Replication {
    /// Whether client `id` just ran SYNC/PSYNC (its connection stops reading commands).
    /// Cheap when nobody did: this runs after every command.
    #[inline]
    pub fn is_handoff(&self, id: u64) -> bool {
        !self.handoffs.is_empty() && self.handoffs.contains_key(&id)
    }

    /// CONFIG RESETSTAT: the sync counters of INFO stats.
    pub fn reset_stats(&mut self) {
        self.sync_full = 0;
        self.sync_partial_ok = 0;
        self.sync_partial_err = 0;
        self.sync_partial_aof = 0;
    }
}

/// What a client announced with REPLCONF before its SYNC / PSYNC.
#[derive(Debug, Clone, Default)]
pub struct Announced {
    /// `listening-port` (0 if not given).
    pub port: u16,
    /// `ip-address`.
    pub ip: Option<String>,
    /// `capa eof`: it reads a disk-less payload (`$EOF:<mark>`).
    pub eof: bool,
    /// `capa ferrodis`: a ferrodis replica, which loads our snapshot format; every other
    /// peer gets a Redis RDB file.
    pub ferrodis: bool,
    /// `rdb-only 1`: it wants the payload and no stream after it (`redis-cli --rdb`).
    pub rdb_only: bool,
    /// `rdb-filter-only`: the parts of the RDB it wants (`None`: all of it).
    pub filter: Option<crate::snapshot::rdb_file::RdbParts>,
}

/// A client waiting in WAIT for `numreplicas` acknowledgements of `offset`.
#[derive(Debug, Clone)]
pub struct Waiter {
    pub offset: u64,
    pub numreplicas: usize,
    /// `None`: wait forever (timeout 0).
    pub deadline: Option<Instant>,
}

/// The replica side's view of its master (INFO, ROLE).
#[derive(Debug)]
pub struct MasterLink {
    pub host: String,
    pub port: u16,
    pub state: LinkState,
    /// Last time anything arrived from the master.
    pub last_io: Option<Instant>,
    /// When the link went down (`master_link_down_since_seconds`), `None` if never up.
    pub down_since: Option<Instant>,
    /// Id of the internal client applying the master's stream (exempt from read-only).
    pub client_id: u64,
    /// Database the master's stream last selected, kept across a partial resync.
    pub db: usize,
    /// Whether the offset is meaningful (this replica ever synced with a master).
    pub synced: bool,
    /// The snapshot being received in a full sync (INFO's `master_sync_*` fields).
    pub transfer: Option<Transfer>,
}

/// Progress of a full sync's snapshot transfer.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    /// Announced length; -1 for a disk-less transfer, which ends at a marker instead.
    pub size: i64,
    /// Bytes received after the `$` line.
    pub read: u64,
    pub last_io: Instant,
}

/// Redis's `repl_state`, as ROLE names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Connect,
    Connecting,
    Handshake,
    Sync,
    Connected,
}

impl LinkState {
    pub fn name(self) -> &'static str {
        match self {
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Handshake => "handshake",
            LinkState::Sync => "sync",
            LinkState::Connected => "connected",
        }
    }
}

/// The journal's tap: backlog plus the replicas the stream is written to.
#[derive(Debug)]
pub struct Feed {
    pub backlog: RefCell<Backlog>,
    pub replicas: RefCell<Vec<Rc<ReplicaInfo>>>,
    limit: Cell<ObufLimit>,
}

/// One attached replica, as the master sees it.
#[derive(Debug)]
pub struct ReplicaInfo {
    pub shared: Rc<ClientShared>,
    pub ip: String,
    pub listening_port: Cell<u16>,
    /// False until the snapshot is sent (`wait_bgsave` / `send_bulk`), then `online`.
    pub online: Cell<bool>,
    pub state_name: Cell<&'static str>,
    pub ack_offset: Cell<u64>,
    pub ack_time: Cell<Instant>,
    /// `REPLCONF ACK`s received.
    pub acks: Cell<u64>,
    /// Since when a chunk of a disk-less payload has been waiting to be written to this
    /// replica (none between chunks): a replica that stops reading would otherwise hold the
    /// snapshot, and every other replica of it, forever. `repl-timeout` drops it, as Redis
    /// drops a replica whose last partial write of the RDB pipe is that old.
    pub sync_write_since: Cell<Option<Instant>>,
    /// `REPLCONF rdb-only 1`: gets the payload only, never the stream.
    pub rdb_only: bool,
    /// Synced with the old `SYNC` (`redis-cli --replica`): it is not expected to send
    /// `REPLCONF ACK`s, so `repl-timeout` does not drop it (as Redis's `CLIENT_PRE_PSYNC`).
    pub pre_psync: bool,
}

impl crate::journal::Tap for Feed {
    fn feed(&self, bytes: &[u8]) {
        self.backlog.borrow_mut().push(bytes);
        let limit = self.limit.get();
        for r in self.replicas.borrow().iter() {
            if r.shared.killed.get() || r.rdb_only {
                continue;
            }
            r.shared.push(bytes);
            if crate::server::pubsub::over_limit(&r.shared, limit) {
                tracing::warn!(
                    "Client id={} addr={} scheduled to be closed ASAP for overcoming of output \
                     buffer limits.",
                    r.shared.info.borrow().id,
                    r.shared.info.borrow().addr
                );
                r.shared.kill();
            }
        }
    }
}

impl Feed {
    /// Replicas whose acknowledged offset is at least `offset`.
    pub fn acked(&self, offset: u64) -> usize {
        self.replicas
            .borrow()
            .iter()
            .filter(|r| r.online.get() && r.ack_offset.get() >= offset)
            .count()
    }
}

/// The configured backlog size.
fn backlog_size(srv: &ServerState) -> usize {
    config_u64(srv, "repl-backlog-size").max(16 * 1024) as usize
}

/// A numeric parameter by name (0 if unset or not a number).
pub fn config_u64(srv: &ServerState, name: &str) -> u64 {
    srv.config.get_by_name(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}


/// The feed, created (and installed as the journal's tap) on first use: Redis creates the
/// backlog when the first replica connects, and keeps it.
pub fn ensure_feed(srv: &mut ServerState) -> Rc<Feed> {
    let limit = srv.config.obuf_limits[ObufClass::Replica as usize];
    if let Some(f) = &srv.repl.feed {
        f.limit.set(limit);
        f.backlog.borrow_mut().resize(backlog_size(srv));
        return f.clone();
    }
    let feed = Rc::new(Feed {
        backlog: RefCell::new(Backlog::new(backlog_size(srv), srv.journal.offset())),
        replicas: RefCell::new(Vec::new()),
        limit: Cell::new(limit),
    });
    srv.journal.set_tap(Some(feed.clone()));
    srv.repl.feed = Some(feed.clone());
    feed
}

/// Starts a fresh backlog at the current offset (a replica after a full sync).
pub fn reset_backlog(srv: &mut ServerState) {
    let feed = ensure_feed(srv);
    *feed.backlog.borrow_mut() = Backlog::new(backlog_size(srv), srv.journal.offset());
}

impl ServerState {
    /// Whether this server replicates from a master.
    pub fn is_replica(&self) -> bool {
        self.repl.master.is_some()
    }
}

/// Whether `client` is the internal client applying the master's stream.
pub fn is_master_client(srv: &ServerState, client: &Client) -> bool {
    srv.repl.master.as_ref().is_some_and(|m| m.client_id == client.id)
}

/// Replicas with an acknowledgement younger than `min-replicas-max-lag` seconds.
pub fn good_replicas(srv: &ServerState) -> usize {
    let max_lag = srv.config.min_replicas_max_lag;
    let Some(feed) = &srv.repl.feed else { return 0 };
    let n = feed
        .replicas
        .borrow()
        .iter()
        .filter(|r| r.online.get() && r.ack_time.get().elapsed().as_secs() <= max_lag)
        .count();
    n
}

/// The refusals replication imposes on a command before it runs (Redis's `processCommand`):
/// `-NOREPLICAS` without enough good replicas, `-READONLY` on a read-only replica,
/// `-MASTERDOWN` on a replica that must not serve stale data.
pub fn refusal(
    srv: &ServerState,
    client: &Client,
    spec: &crate::commands::CommandSpec,
) -> Option<CmdError> {
    use crate::commands::multi::{denies_stale, is_write};
    if is_master_client(srv, client) {
        return None;
    }
    // EXEC counts as what it queued: the state may have changed since queueing.
    let write = is_write(client, spec);
    if write && !srv.is_replica() {
        let min = srv.config.min_replicas_to_write;
        if min > 0 && srv.config.min_replicas_max_lag > 0 {
            if (good_replicas(srv) as u64) < min {
                return Some(CmdError::Msg(NOREPLICAS_ERROR.into()));
            }
        }
    }
    let m = srv.repl.master.as_ref()?;
    if write && srv.config.replica_read_only {
        return Some(CmdError::Msg(READONLY_ERROR.into()));
    }
    let stale_ok = srv.config.replica_serve_stale_data;
    if m.state != LinkState::Connected && !stale_ok && denies_stale(client, spec) {
        return Some(CmdError::Msg(
            "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
                .into(),
        ));
    }
    None
}

/// Why a write inside a script must fail now (Redis's `scriptCall` checks for replication),
/// in the form `scripting::run::refuse` returns: `-READONLY ...` or `-NOREPLICAS ...`.
pub fn script_write_refusal(srv: &ServerState, client: &Client) -> Option<&'static str> {
    if is_master_client(srv, client) {
        return None;
    }
    if srv.is_replica() && srv.config.replica_read_only {
        return Some("-READONLY You can't write against a read only replica.");
    }
    let min = srv.config.min_replicas_to_write;
    let lag = srv.config.min_replicas_max_lag;
    if !srv.is_replica() && min > 0 && lag > 0 && (good_replicas(srv) as u64) < min {
        return Some("-NOREPLICAS Not enough good replicas to write.");
    }
    None
}

/// Wakes the WAIT clients whose condition now holds (an ACK arrived).
pub fn wake_waiters(srv: &ServerState) {
    let Some(feed) = &srv.repl.feed else { return };
    for (id, w) in &srv.repl.waiters {
        if feed.acked(w.offset) >= w.numreplicas {
            if let Some(c) = srv.clients.get(id) {
                c.wake.notify_one();
            }
        }
    }
}

/// Asks every replica for an acknowledgement (`REPLCONF GETACK *` in the stream), as WAIT
/// does.
pub fn request_acks(srv: &mut ServerState) {
    if srv.repl.feed.as_ref().is_some_and(|f| !f.replicas.borrow().is_empty()) {
        let mut cmd = Vec::new();
        crate::journal::encode_command(&mut cmd, &[&b"REPLCONF"[..], b"GETACK", b"*"]);
        srv.journal.feed_raw(&cmd);
    }
}

/// INFO's `# Replication` section, with Redis's fields in Redis's order.
pub fn info_section(srv: &ServerState, s: &mut String) {
    use std::fmt::Write;
    s.push_str("# Replication\r\n");
    let mut f = |k: &str, v: &dyn std::fmt::Display| {
        let _ = write!(s, "{k}:{v}\r\n");
    };
    let offset = srv.journal.offset();
    match &srv.repl.master {
        None => f("role", &"master"),
        Some(m) => {
            f("role", &"slave");
            f("master_host", &m.host);
            f("master_port", &m.port);
            let up = m.state == LinkState::Connected;
            f("master_link_status", &if up { "up" } else { "down" });
            let io = m.last_io.map_or(-1, |t| t.elapsed().as_secs() as i64);
            f("master_last_io_seconds_ago", &io);
            f("master_sync_in_progress", &u8::from(m.state == LinkState::Sync));
            let ro = if m.synced { offset } else { 1 };
            f("slave_read_repl_offset", &ro);
            f("slave_repl_offset", &ro);
            if let Some(t) = m.transfer.filter(|_| m.state == LinkState::Sync) {
                let read = t.read as i64;
                let perc = if t.size != 0 { read as f64 / t.size as f64 * 100.0 } else { 0.0 };
                f("master_sync_total_bytes", &t.size);
                f("master_sync_read_bytes", &read);
                f("master_sync_left_bytes", &(t.size - read));
                f("master_sync_perc", &format_args!("{perc:.2}"));
                f("master_sync_last_io_seconds_ago", &t.last_io.elapsed().as_secs());
            }
            if !up {
                let since = m.down_since.map_or(-1, |t| t.elapsed().as_secs() as i64);
                f("master_link_down_since_seconds", &since);
            }
            f("slave_priority", &srv.config.get_by_name("replica-priority").unwrap_or("100"));
            let ro_flag = srv.config.get_by_name("replica-read-only") == Some("yes");
            f("slave_read_only", &u8::from(ro_flag));
            let announced = srv.config.get_by_name("replica-announced") != Some("no");
            f("replica_announced", &u8::from(announced));
        }
    }
    let replicas: Vec<Rc<ReplicaInfo>> =
        srv.repl.feed.as_ref().map(|f| f.replicas.borrow().clone()).unwrap_or_default();
    f("connected_slaves", &replicas.len());
    for (i, r) in replicas.iter().enumerate() {
        let line = format!(
            "ip={},port={},state={},offset={},lag={}",
            r.ip,
            r.listening_port.get(),
            r.state_name.get(),
            r.ack_offset.get(),
            r.ack_time.get().elapsed().as_secs()
        );
        f(&format!("slave{i}"), &line);
    }
    f("master_failover_state", &failover::state_name(srv));
    f("master_replid", &srv.repl.replid);
    f("master_replid2", &srv.repl.replid2);
    f("master_repl_offset", &offset);
    f("second_repl_offset", &srv.repl.second_offset);
    match &srv.repl.feed {
        Some(feed) => {
            let b = feed.backlog.borrow();
            f("repl_backlog_active", &1);
            f("repl_backlog_size", &b.size());
            f("repl_backlog_first_byte_offset", &b.first_byte_offset());
            f("repl_backlog_histlen", &b.histlen());
        }
        None => {
            f("repl_backlog_active", &0);
            f("repl_backlog_size", &backlog_size(srv));
            f("repl_backlog_first_byte_offset", &0);
            f("repl_backlog_histlen", &0);
        }
    }
}

/// A fresh random replication id.
pub fn new_replid(srv: &mut ServerState) -> String {
    (0..40)
        .map(|_| {
            let v: u8 = rand::Rng::gen_range(&mut srv.rng, 0..16);
            char::from_digit(u32::from(v), 16).unwrap_or('0')
        })
        .collect()
}

/// Redis's `shiftReplicationId`: the current id becomes the second one, valid up to the
/// current offset, and a new id starts (a replica promoted to master).
pub fn shift_replid(srv: &mut ServerState) {
    srv.repl.replid2 = srv.repl.replid.clone();
    srv.repl.second_offset = srv.journal.offset() as i64 + 1;
    srv.repl.replid = new_replid(srv);
}

/// Disconnects every attached replica (this server's history changes under them).
pub fn drop_replicas(srv: &ServerState) {
    if let Some(feed) = &srv.repl.feed {
        for r in feed.replicas.borrow().iter() {
            r.shared.kill();
        }
    }
}

/// Pseudo aux fields through which a loaded snapshot's replication id and offset reach
/// [`restore_from_snapshot`] (they live in the snapshot header, see `formats/snapshot.md`).
const AUX_REPL_ID: &str = "repl-id";
const AUX_REPL_OFFSET: &str = "repl-offset";
/// Aux field of a replica's snapshot: the database its master's stream last selected.
const AUX_STREAM_DB: &str = "repl-stream-db";

/// The aux fields replication adds to a snapshot: a replica records its master's stream
/// database, so that after a restart it can continue the stream (PSYNC2).
pub fn snapshot_aux(srv: &ServerState) -> Vec<(String, Vec<u8>)> {
    match &srv.repl.master {
        Some(m) if m.synced => vec![(AUX_STREAM_DB.into(), m.db.to_string().into_bytes())],
        _ => Vec::new(),
    }
}

/// The header's replication id and offset, handed over with the aux fields of a load.
pub fn header_aux(meta: &crate::snapshot::file::Meta) -> Vec<(String, Vec<u8>)> {
    vec![
        (AUX_REPL_ID.into(), meta.repl_id.clone().into_bytes()),
        (AUX_REPL_OFFSET.into(), meta.repl_offset.to_string().into_bytes()),
    ]
}

/// After the start-up load: the snapshot's replication id and offset become ours, so that a
/// restarted master can serve its replicas a partial resync from a new backlog, and a
/// restarted replica can ask its master to continue where the snapshot ends (PSYNC2).
pub fn restore_from_snapshot(srv: &mut ServerState, aux: &[(String, Vec<u8>)]) {
    let get = |k: &str| {
        aux.iter().find(|(n, _)| n == k).and_then(|(_, v)| String::from_utf8(v.clone()).ok())
    };
    let id = get(AUX_REPL_ID).filter(|id| id.len() == 40);
    let offset = get(AUX_REPL_OFFSET).and_then(|o| o.parse::<u64>().ok());
    let (Some(id), Some(offset)) = (id, offset) else { return };
    srv.repl.replid = id;
    srv.journal.set_offset(offset);
    let stream_db = get(AUX_STREAM_DB).and_then(|d| d.parse::<usize>().ok());
    match srv.repl.master.as_mut() {
        Some(m) => {
            // Without the field the snapshot is a master's (its own, or one received in a
            // full sync, whose stream starts with a SELECT anyway).
            m.synced = true;
            m.db = stream_db.unwrap_or(0);
        }
        None => {
            // A restarted master answers to a new id, keeping the saved one as its second
            // id so that its replicas continue with a partial resync.
            shift_replid(srv);
            reset_backlog(srv);
        }
    }
}

/// The SYNC/PSYNC request of client `id`, if it just made one: its connection then serves
/// it as a replica ([`master::serve_replica`]).
pub fn take_handoff(
    server: &Rc<RefCell<crate::server::Server>>,
    id: u64,
) -> Option<Option<(String, i64)>> {
    let mut srv = server.borrow_mut();
    let handoffs = &mut srv.state.repl.handoffs;
    if handoffs.is_empty() {
        return None;
    }
    handoffs.remove(&id)
}

/// Forgets what a disconnected client left here (its REPLCONF announcements, its WAIT).
pub fn forget_client(srv: &mut ServerState, id: u64) {
    srv.repl.announced.remove(&id);
    srv.repl.waiters.remove(&id);
    srv.repl.handoffs.remove(&id);
}

/// Starts the replication tasks: the replica link (idle until REPLICAOF, or started now by the
/// `replicaof` configuration) and the master's periodic duties.
pub fn start(server: &Rc<RefCell<crate::server::Server>>) {
    {
        let mut srv = server.borrow_mut();
        let target = srv.state.config.get_by_name("replicaof").map(str::to_string);
        let parsed = target.as_deref().and_then(|t| {
            let mut parts = t.split_whitespace();
            Some((parts.next()?.to_string(), parts.next()?.parse::<u16>().ok()?))
        });
        if let Some((host, port)) = parsed {
            let crate::server::Server { ks, state, .. } = &mut *srv;
            replica::set_master(ks, state, host, port);
            // A server starting as a replica has no history of its own to offer: `PSYNC ? -1`.
            if let Some(m) = state.repl.master.as_mut() {
                m.synced = false;
            }
        }
    }
    tokio::task::spawn_local(replica::run(server.clone()));
    tokio::task::spawn_local(master::cron(server.clone()));
    tokio::task::spawn_local(failover::cron(server.clone()));
}

/// After a write by one of this replica's own clients: remembers the written keys that now
/// have a time to live (Redis's `rememberSlaveKeyWithExpire`).
pub fn remember_replica_expires(
    ks: &crate::keyspace::Keyspace,
    state: &mut ServerState,
    db: usize,
    keys: &[&[u8]],
) {
    if db >= 64 {
        return;
    }
    let tracked = &mut state.repl.replica_keys_with_expire;
    for &key in keys {
        if ks.dbs.get(db).is_some_and(|d| d.expire_of(key).is_some()) {
            match tracked.get_mut(key) {
                Some(dbs) => *dbs |= 1 << db,
                None => {
                    tracked.insert(key.to_vec(), 1 << db);
                }
            }
        }
    }
}

/// Redis's `expireSlaveKeys`, from the cron of a replica: deletes the remembered keys whose
/// time to live has passed, as expired keys (notified, counted, and logged like the active
/// expire cycle's); forgets those that no longer have one. Stops after about a millisecond,
/// leaving the rest for the next run.
pub fn expire_replica_keys(srv: &mut crate::server::Server) {
    let crate::server::Server { ks, state, effects } = srv;
    let now = crate::util::time::now_ms();
    let started = std::time::Instant::now();
    let mut tracked = std::mem::take(&mut state.repl.replica_keys_with_expire);
    tracked.retain(|key, dbs| {
        if started.elapsed() > std::time::Duration::from_millis(1) {
            return true;
        }
        let mut keep = 0u64;
        for db in (0..ks.dbs.len().min(64)).filter(|db| *dbs & (1 << db) != 0) {
            match ks.dbs[db].expire_of(key) {
                Some(at) if at <= now => ks.delete_expired(db, key),
                Some(_) => keep |= 1 << db,
                None => {}
            }
        }
        *dbs = keep;
        keep != 0
    });
    state.repl.replica_keys_with_expire = tracked;
    crate::dispatch::propagate_expired(ks, state, effects);
}
