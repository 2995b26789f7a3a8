//! Sockets, tasks and server-wide state. No command knowledge lives here.
//!
//! **Threading model.** One thread runs a Tokio current-thread runtime. Every connection is a
//! task on it, and all of them share the [`Server`] through `Rc<RefCell<_>>`: a connection
//! borrows the server only while it executes a batch of parsed commands, never across an
//! `.await`. So commands execute one at a time, in one total order, exactly as in Redis, with no
//! locks on the data path. On a two-core machine where the benchmark client takes the other
//! core, extra threads would only compete for that core.

pub mod acl;
pub mod blocking;
pub mod busypoll;
pub mod client;
pub mod connection;
pub mod cron;
pub mod fdlimit;
pub mod latency;
pub mod listener;
pub mod pubsub;
pub mod shutdown;
pub mod slowlog;
pub mod tracking;
pub mod watch;

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::commands::CommandSpec;
use crate::config::Config;
use crate::error::CmdError;
use crate::journal::{Effects, Journal};
use crate::keyspace::Keyspace;
use client::ClientShared;

/// Per-command counters for INFO commandstats.
#[derive(Debug, Default, Clone)]
pub struct CmdStats {
    pub name: String,
    pub calls: u64,
    pub usec: u64,
    pub rejected_calls: u64,
    pub failed_calls: u64,
    /// Durations (LATENCY HISTOGRAM, INFO latencystats); allocated on the first call timed.
    pub latency: Option<Box<crate::util::histogram::Histogram>>,
}

/// Server-wide counters for INFO stats.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub total_connections_received: u64,
    pub total_commands_processed: u64,
    pub rejected_connections: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    pub rejected_calls: u64,
    pub total_error_replies: u64,
    pub evicted_keys: u64,
    pub evicted_clients: u64,
    pub client_query_buffer_limit_disconnections: u64,
    pub unexpected_error_replies: u64,
    /// Instantaneous ops/sec sampling (ring of the last 16 samples, like Redis).
    pub ops_samples: [u64; 16],
    pub ops_sample_idx: usize,
    pub last_sample_commands: u64,
    pub last_sample_time: Option<Instant>,
}

/// Why the server is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    Signal,
    Command { save: Option<bool> },
}

/// Everything except the keyspace (split out so handlers can borrow both at once).
pub struct ServerState {
    pub config: Config,
    pub journal: Journal,
    /// Changes since the last successful save (`rdb_changes_since_last_save`).
    pub dirty: u64,
    pub stats: Stats,
    pub clients: BTreeMap<u64, Rc<ClientShared>>,
    pub next_client_id: u64,
    pub started: Instant,
    pub run_id: String,
    pub rng: SmallRng,
    pub shutdown: Option<Shutdown>,
    /// A shutdown waiting for replicas, and the clients blocked in SHUTDOWN.
    pub shutting: shutdown::ShutdownState,
    /// DEBUG PAUSE-CRON: the periodic task skips its work while set.
    pub cron_paused: bool,
    /// When the cron last looked at every client for idle buffers, and last reset their
    /// reply-buffer peaks (see `cron::trim_idle_clients`).
    pub clients_cron: (Option<Instant>, Option<Instant>),
    cmd_stats: Vec<Option<CmdStats>>,
    sub_stats: HashMap<String, CmdStats>,
    pub error_stats: BTreeMap<String, u64>,
    /// DEBUG SET-ACTIVE-EXPIRE.
    pub active_expire: bool,
    /// Peak of `used_memory`.
    pub peak_memory: usize,
    pub executable: String,
    pub config_file: Option<String>,
    pub lastsave: u64,
    /// Monotonic counter bumped by every key modification, for WATCH (see `touched_keys`).
    pub modification_epoch: u64,
    /// Wakes the main task when SHUTDOWN was requested.
    pub shutdown_notify: Rc<tokio::sync::Notify>,
    /// Second handles on the listening sockets, through which a busy script accepts
    /// connections while the accept loops cannot run (see `scripting::busy`).
    pub listener_dups: Vec<std::net::TcpListener>,
    /// Connections a busy script admitted; an accept loop starts serving them once it runs.
    pub admitted_while_busy: Vec<(tokio::net::TcpStream, connection::Admission)>,
    /// Wakes the accept loops when `admitted_while_busy` has connections.
    pub admitted_notify: Rc<tokio::sync::Notify>,
    /// Listeners CONFIG SET port / bind bound, waiting to replace the current ones (see
    /// `listener::relisten`), with their generation; an empty list stops listening (port 0).
    pub new_listeners: Option<(u64, Vec<std::net::TcpListener>)>,
    /// Wakes the task that swaps listeners.
    pub relisten_notify: Rc<tokio::sync::Notify>,
    /// Generation of the accept loops that should be running; older ones exit.
    pub listen_generation: tokio::sync::watch::Sender<u64>,
    /// Wall-clock time shared by every command of the batch being executed (see
    /// [`ServerState::begin_batch`]); `None` outside a batch.
    batch_now_ms: Option<u64>,
    /// Address the server listens on (for INFO and logs).
    pub tcp_port: u16,
    /// Eviction candidates kept between rounds (see `keyspace::evict`).
    pub eviction_pool: crate::keyspace::evict::EvictionPool,
    /// The `maxmemory-policy` key access tracking was last set up for.
    pub eviction_policy_seen: String,
    /// `used_memory` once the server state existed (MEMORY STATS `startup.allocated`).
    pub startup_memory: usize,
    /// Clients blocked on keys (BLPOP, BLMOVE, ...), see [`blocking`].
    pub blocking: blocking::Blocking,
    /// Clients in MONITOR mode; every executed command is echoed to them.
    pub monitors: Vec<Rc<ClientShared>>,
    /// Lua interpreters, the script cache and function libraries.
    pub scripting: crate::scripting::Scripting,
    /// Channel, pattern and shard-channel subscriptions (Pub/Sub, keyspace notifications).
    pub pubsub: pubsub::PubSub,
    /// WATCHed keys and the clients whose next EXEC they doom.
    pub watches: watch::Watches,
    /// Snapshot state: background save, save outcomes, loading.
    pub persist: crate::snapshot::engine::Persistence,
    /// The append-only log and WAITAOF waiters (see `crate::aof`).
    pub aof: crate::aof::AofState,
    /// Replication: backlog, replicas, the link to our master (see `crate::replication`).
    pub repl: crate::replication::Replication,
    /// SLOWLOG's entries.
    pub slowlog: slowlog::SlowLog,
    /// LATENCY's event series.
    pub latency: latency::LatencyMonitor,
    /// Client-side caching (CLIENT TRACKING).
    pub tracking: tracking::Tracking,
    /// Users and the ACL log (see `server::acl`).
    pub acl: acl::Acl,
}

impl ServerState {
    /// Whether a dataset is being loaded (a snapshot at start-up, or a log replayed at start-up
    /// or by DEBUG LOADAOF): Redis's `server.loading`.
    pub fn loading_dataset(&self) -> bool {
        self.aof.replaying || self.persist.loading.is_some()
    }

    pub fn new(config: Config) -> Self {
        let mut rng = SmallRng::from_entropy();
        let run_id: String = (0..40)
            .map(|_| {
                let v: u8 = rand::Rng::gen_range(&mut rng, 0..16);
                char::from_digit(u32::from(v), 16).unwrap_or('0')
            })
            .collect();
        let config_file = config.config_file.clone();
        let acl = acl::Acl::from_config(&config).unwrap_or_else(|e| {
            e.lines().for_each(|l| tracing::warn!("{l}"));
            std::process::exit(1)
        });
        let mut state = ServerState {
            acl,
            config,
            journal: Journal::new(),
            dirty: 0,
            stats: Stats::default(),
            clients: BTreeMap::new(),
            next_client_id: 1,
            started: Instant::now(),
            run_id,
            rng,
            shutdown: None,
            shutting: shutdown::ShutdownState::default(),
            cron_paused: false,
            clients_cron: (None, None),
            cmd_stats: Vec::new(),
            sub_stats: HashMap::new(),
            error_stats: BTreeMap::new(),
            active_expire: true,
            peak_memory: 0,
            executable: std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
            config_file,
            lastsave: crate::util::time::now_secs(),
            modification_epoch: 0,
            shutdown_notify: Rc::new(tokio::sync::Notify::new()),
            listener_dups: Vec::new(),
            admitted_while_busy: Vec::new(),
            admitted_notify: Rc::new(tokio::sync::Notify::new()),
            new_listeners: None,
            relisten_notify: Rc::new(tokio::sync::Notify::new()),
            listen_generation: tokio::sync::watch::Sender::new(0),
            batch_now_ms: None,
            tcp_port: 0,
            eviction_pool: crate::keyspace::evict::EvictionPool::new(),
            // Differs from every policy, so the first command sets tracking up.
            eviction_policy_seen: String::new(),
            startup_memory: crate::alloc::used_memory(),
            blocking: blocking::Blocking::default(),
            slowlog: slowlog::SlowLog::default(),
            latency: latency::LatencyMonitor::default(),
            tracking: tracking::Tracking::default(),
            monitors: Vec::new(),
            scripting: crate::scripting::Scripting::new(),
            pubsub: pubsub::PubSub::default(),
            watches: watch::Watches::default(),
            persist: crate::snapshot::engine::Persistence::new(),
            aof: crate::aof::AofState::default(),
            repl: crate::replication::Replication::default(),
        };
        state.repl.replid = state.run_id.clone();
        state
    }

    /// Starts a batch of commands from one read: they all see the same command time, which
    /// saves a clock read per command (the batch took one read from the socket, so its commands
    /// arrived together anyway). Also refreshes the LRU clock.
    pub fn begin_batch(&mut self) {
        let now = crate::util::time::now_ms();
        crate::keyspace::expire::set_lru_clock(now);
        self.batch_now_ms = Some(now);
    }

    /// Ends the batch; commands run outside one read the clock themselves.
    pub fn end_batch(&mut self) {
        self.batch_now_ms = None;
    }

    /// Command time in Unix milliseconds.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        self.batch_now_ms.unwrap_or_else(crate::util::time::now_ms)
    }

    /// True when clients must AUTH before running commands.
    pub fn auth_required(&self) -> bool {
        self.acl.auth_required()
    }

    /// Statistics slot for a command (subcommands are kept by full name).
    pub fn cmd_stats_mut(&mut self, id: usize, spec: &'static CommandSpec) -> &mut CmdStats {
        if spec.parent.is_some() {
            let name = spec.full_name();
            return self
                .sub_stats
                .entry(name.clone())
                .or_insert_with(|| CmdStats { name, ..CmdStats::default() });
        }
        if self.cmd_stats.len() <= id {
            self.cmd_stats.resize(id + 1, None);
        }
        self.cmd_stats[id].get_or_insert_with(|| CmdStats {
            name: spec.name.to_string(),
            ..CmdStats::default()
        })
    }

    /// The statistics of one command, if it ran since the last reset.
    pub fn cmd_stats_of(&self, spec: &'static CommandSpec) -> Option<&CmdStats> {
        if spec.parent.is_some() {
            return self.sub_stats.get(&spec.full_name());
        }
        let (id, _) = crate::commands::registry().lookup(spec.name.as_bytes())?;
        self.cmd_stats.get(id)?.as_ref()
    }

    /// All non-empty command statistics, sorted by name.
    pub fn all_cmd_stats(&self) -> Vec<CmdStats> {
        let mut v: Vec<CmdStats> = self.cmd_stats.iter().flatten().cloned().collect();
        v.extend(self.sub_stats.values().cloned());
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn reset_stats(&mut self) {
        self.cmd_stats.clear();
        self.sub_stats.clear();
        self.error_stats.clear();
        let samples = self.stats.ops_samples;
        self.stats = Stats { ops_samples: samples, ..Stats::default() };
        self.repl.reset_stats();
    }

    /// Counts an error reply under its code (INFO errorstats).
    pub fn count_error(&mut self, e: &CmdError) {
        self.stats.total_error_replies += 1;
        *self.error_stats.entry(e.code()).or_insert(0) += 1;
    }

    /// A key was modified: its watchers' transactions fail (WATCH), and the modification
    /// epoch moves on.
    #[inline]
    pub fn touched_keys(&mut self, db: usize, key: &[u8]) {
        self.modification_epoch += 1;
        self.watches.touch(db, key);
        self.blocking.signal_changed(db, key);
        if self.tracking.clients > 0 {
            self.tracking_invalidate(key, true);
        }
    }

    /// Marks `key` of `db` as possibly able to serve clients blocked on it (a list push, an
    /// LMOVE target; later zset adds). Waiters are woken once the current command completes.
    pub fn signal_key_ready(&mut self, db: usize, key: &[u8]) {
        self.blocking.signal(db, key);
    }

    /// Wakes the first client blocked on each key signalled ready; each re-runs its command.
    pub fn wake_ready_clients(&mut self) {
        if !self.blocking.has_ready() {
            return;
        }
        for id in self.blocking.take_ready() {
            if let Some(c) = self.clients.get(&id) {
                c.wake.notify_one();
            }
        }
    }

    /// Emits a keyspace notification (Redis `notifyKeyspaceEvent`): `event` on
    /// `__keyspace@<db>__:<key>` and `key` on `__keyevent@<db>__:<event>`, as enabled by
    /// `notify-keyspace-events`. With notifications off this costs one branch.
    #[inline]
    pub fn notify_keyspace_event(&mut self, class: char, event: &str, db: usize, key: &[u8]) {
        if self.config.notify_keyspace_events != 0 {
            self.publish_keyspace_event(class, event, db, key);
        }
    }

    #[inline(never)]
    fn publish_keyspace_event(&mut self, class: char, event: &str, db: usize, key: &[u8]) {
        use crate::config::notify;
        let flags = self.config.notify_keyspace_events;
        let enabled = notify::bit(class).is_some_and(|b| flags & b != 0);
        if !enabled || self.pubsub.is_empty() {
            return;
        }
        let d = self.delivery();
        let mut chan = Vec::with_capacity(24 + key.len().max(event.len()));
        if flags & notify::KEYSPACE != 0 {
            chan.extend_from_slice(format!("__keyspace@{db}__:").as_bytes());
            chan.extend_from_slice(key);
            self.pubsub.publish(pubsub::Kind::Channel, &chan, event.as_bytes(), &d);
        }
        if flags & notify::KEYEVENT != 0 {
            chan.clear();
            chan.extend_from_slice(format!("__keyevent@{db}__:{event}").as_bytes());
            self.pubsub.publish(pubsub::Kind::Channel, &chan, key, &d);
        }
    }

    /// How messages are delivered now (the `pubsub` output buffer limits).
    pub fn delivery(&self) -> pubsub::Delivery {
        let limit = self.config.obuf_limits[crate::config::ObufClass::Pubsub as usize];
        pubsub::Delivery { limit }
    }

    /// Starts a new generation of listeners: accept loops of older ones exit from now on.
    pub fn next_listen_generation(&mut self) -> u64 {
        let generation = *self.listen_generation.borrow() + 1;
        self.listen_generation.send_replace(generation);
        generation
    }

    /// Hands listeners bound by CONFIG SET to the accept machinery (see `listener::relisten`).
    pub fn replace_listeners(&mut self, listeners: Vec<std::net::TcpListener>) {
        let generation = self.next_listen_generation();
        self.new_listeners = Some((generation, listeners));
        self.relisten_notify.notify_one();
    }

    /// Called for every key removed by expiry, before its DEL is propagated.
    pub fn on_key_expired(&mut self, db: usize, key: &[u8]) {
        self.modification_epoch += 1;
        self.watches.expired(db, key);
        if self.tracking.clients > 0 {
            self.tracking_invalidate(key, true);
        }
        self.notify_keyspace_event('x', "expired", db, key);
    }
}

/// The whole server: keyspace plus state, plus scratch space reused by every call.
pub struct Server {
    pub ks: Keyspace,
    pub state: ServerState,
    pub effects: Effects,
}

impl Server {
    pub fn new(config: Config) -> Self {
        let mut ks = Keyspace::new(config.databases as usize);
        ks.lazy_expire = config.lazyfree_lazy_expire;
        Server { ks, state: ServerState::new(config), effects: Effects::default() }
    }
}

pub use listener::run;
