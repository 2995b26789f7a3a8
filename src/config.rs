//! Server configuration: one parameter table serves the config file, `--name value` flags,
//! CONFIG GET, CONFIG SET and CONFIG REWRITE, with Redis's names, aliases, defaults, bounds,
//! units, flags and error texts.
//!
//! Every parameter Redis 7.0.15 knows is in [`PARAMS`], including those of subsystems ferrodis
//! does not act on: those are validated, stored and reported (so clients and config files
//! written for Redis keep working) and are marked `accepted and reported, not acted upon` in
//! the table, with the part of Redis they belong to. Each value is kept as its canonical text (what CONFIG GET prints); the values the
//! server reads on hot paths are mirrored into typed fields of [`Config`] after every change.

use std::fmt::Write as _;

/// How a numeric parameter is written: plain integer, memory amount (`1gb`), memory amount or
/// percentage (`10%`), or octal (`unixsocketperm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumFmt {
    Plain,
    Memory,
    MemoryPercent,
    Octal,
}

/// Parameters with their own syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Dir,
    Save,
    ClientOutputBufferLimit,
    OomScoreAdjValues,
    NotifyKeyspaceEvents,
    Bind,
    ReplicaOf,
    LatencyPercentiles,
}

/// How a parameter's value is written and validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    /// Integer within `min..=max` (i128 so that unsigned 64-bit bounds fit).
    Int {
        min: i128,
        max: i128,
        fmt: NumFmt,
    },
    Enum(&'static [&'static str]),
    /// A set of enum flags given as several words (`shutdown-on-sigterm "save now"`).
    MultiEnum(&'static [&'static str]),
    Str,
    Special(Special),
}

/// CONFIG SET refuses it ("can't set immutable config").
pub const IMMUTABLE: u32 = 1;
/// Its value is redacted from logs and SLOWLOG.
pub const SENSITIVE: u32 = 1 << 1;
/// CONFIG SET refuses it unless `enable-protected-configs` allows it.
pub const PROTECTED: u32 = 1 << 2;
/// Only an exact name (never a pattern) finds it in CONFIG GET.
pub const HIDDEN: u32 = 1 << 3;
/// Takes several words (`save 3600 1 300 100`).
pub const MULTI_ARG: u32 = 1 << 4;
/// CONFIG SET refuses it while a dataset is loading.
pub const DENY_LOADING: u32 = 1 << 5;

/// One configuration parameter.
#[derive(Debug)]
pub struct Param {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub flags: u32,
    pub kind: Kind,
    /// Default, in canonical form.
    pub default: &'static str,
}

impl Param {
    const fn new(
        name: &'static str,
        alias: Option<&'static str>,
        flags: u32,
        kind: Kind,
        default: &'static str,
    ) -> Self {
        Param {
            name,
            alias,
            flags,
            kind,
            default,
        }
    }

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

/// The parameter table, in the order of Redis's own table. Parameters without a note are acted
/// on by ferrodis today.
#[rustfmt::skip]
pub static PARAMS: &[Param] = &[
    // snapshots
    Param::new("rdbchecksum", None, IMMUTABLE, Kind::Bool, "yes"),
    Param::new("daemonize", None, IMMUTABLE, Kind::Bool, "no"),
    // accepted and reported, not acted upon (process management)
    Param::new("io-threads-do-reads", None, IMMUTABLE, Kind::Bool, "no"),
    // accepted and reported, not acted upon (process management)
    Param::new("always-show-logo", None, IMMUTABLE, Kind::Bool, "no"),
    Param::new("protected-mode", None, 0, Kind::Bool, "yes"),
    // snapshots
    Param::new("rdbcompression", None, 0, Kind::Bool, "yes"),
    Param::new("rdb-save-incremental-fsync", None, 0, Kind::Bool, "yes"),
    Param::new("aof-rewrite-incremental-fsync", None, 0, Kind::Bool, "yes"),
    // accepted and reported, not acted upon (snapshots)
    Param::new("rdb-del-sync-files", None, 0, Kind::Bool, "no"),
    // accepted and reported, not acted upon (process management)
    Param::new("activerehashing", None, 0, Kind::Bool, "yes"),
    // snapshots
    Param::new("stop-writes-on-bgsave-error", None, 0, Kind::Bool, "yes"),
    // accepted and reported, not acted upon (process management)
    Param::new("set-proc-title", None, IMMUTABLE, Kind::Bool, "yes"),
    // accepted and reported, not acted upon (process management)
    Param::new("dynamic-hz", None, 0, Kind::Bool, "yes"),
    Param::new("lazyfree-lazy-eviction", None, 0, Kind::Bool, "no"),
    Param::new("lazyfree-lazy-expire", None, 0, Kind::Bool, "no"),
    // accepted and reported, not acted upon (lazy free)
    Param::new("lazyfree-lazy-server-del", None, 0, Kind::Bool, "no"),
    Param::new("lazyfree-lazy-user-del", None, 0, Kind::Bool, "no"),
    Param::new("lazyfree-lazy-user-flush", None, 0, Kind::Bool, "no"),
    // accepted and reported, not acted upon (replication)
    Param::new("repl-disable-tcp-nodelay", None, 0, Kind::Bool, "no"),
    Param::new("repl-diskless-sync", None, 0, Kind::Bool, "yes"),
    // accepted and reported, not acted upon (aof)
    Param::new("no-appendfsync-on-rewrite", None, 0, Kind::Bool, "no"),
    // accepted and reported, not acted upon (cluster)
    Param::new("cluster-require-full-coverage", None, 0, Kind::Bool, "yes"),
    Param::new("aof-load-truncated", None, 0, Kind::Bool, "yes"),
    Param::new("aof-use-rdb-preamble", None, 0, Kind::Bool, "yes"),
    Param::new("aof-timestamp-enabled", None, 0, Kind::Bool, "no"),
    // accepted and reported, not acted upon (cluster)
    Param::new(
        "cluster-replica-no-failover",
        Some("cluster-slave-no-failover"),
        0,
        Kind::Bool,
        "no",
    ),
    // accepted and reported, not acted upon (replication)
    Param::new("replica-lazy-flush", Some("slave-lazy-flush"), 0, Kind::Bool, "no"),
    Param::new("replica-serve-stale-data", Some("slave-serve-stale-data"), 0, Kind::Bool, "yes"),
    Param::new("replica-read-only", Some("slave-read-only"), 0, Kind::Bool, "yes"),
    // accepted and reported, not acted upon (replication)
    Param::new("replica-ignore-maxmemory", Some("slave-ignore-maxmemory"), 0, Kind::Bool, "yes"),
    Param::new("jemalloc-bg-thread", None, 0, Kind::Bool, "yes"),
    // accepted and reported, not acted upon (active defrag)
    Param::new("activedefrag", None, 0, Kind::Bool, "no"),
    // accepted and reported, not acted upon (process management)
    Param::new("syslog-enabled", None, IMMUTABLE, Kind::Bool, "no"),
    // only `no`: a file or flag setting it to `yes` is refused at start-up (`apply_text_inner`)
    Param::new("cluster-enabled", None, IMMUTABLE, Kind::Bool, "no"),
    Param::new("appendonly", None, DENY_LOADING, Kind::Bool, "no"),
    // accepted and reported, not acted upon (cluster)
    Param::new("cluster-allow-reads-when-down", None, 0, Kind::Bool, "no"),
    // accepted and reported, not acted upon (cluster)
    Param::new("cluster-allow-pubsubshard-when-down", None, 0, Kind::Bool, "yes"),
    // accepted and reported, not acted upon (process management)
    Param::new("crash-log-enabled", None, 0, Kind::Bool, "yes"),
    // accepted and reported, not acted upon (process management)
    Param::new("crash-memcheck-enabled", None, 0, Kind::Bool, "yes"),
    // accepted and reported, not acted upon (process management)
    Param::new("use-exit-on-panic", None, HIDDEN, Kind::Bool, "no"),
    // accepted and reported, not acted upon (process management)
    Param::new("disable-thp", None, IMMUTABLE, Kind::Bool, "yes"),
    // accepted and reported, not acted upon (cluster)
    Param::new("cluster-allow-replica-migration", None, 0, Kind::Bool, "yes"),
    Param::new("replica-announced", None, 0, Kind::Bool, "yes"),
    // acted on by the command dispatcher (LATENCY HISTOGRAM, INFO latencystats)
    Param::new("latency-tracking", None, 0, Kind::Bool, "yes"),
    // accepted and reported, not acted upon (aof)
    Param::new("aof-disable-auto-gc", None, 0, Kind::Bool, "no"),
    // accepted and reported, not acted upon (replication)
    Param::new("replica-ignore-disk-write-errors", None, 0, Kind::Bool, "no"),
    Param::new("aclfile", None, IMMUTABLE, Kind::Str, ""),
    // accepted and reported, not acted upon (process management)
    Param::new("unixsocket", None, IMMUTABLE, Kind::Str, ""),
    Param::new("pidfile", None, IMMUTABLE, Kind::Str, ""),
    Param::new("replica-announce-ip", Some("slave-announce-ip"), 0, Kind::Str, ""),
    Param::new("masteruser", None, SENSITIVE, Kind::Str, ""),
    // accepted and reported, not acted upon (cluster)
    Param::new("cluster-announce-ip", None, 0, Kind::Str, ""),
    // accepted and reported, not acted upon (cluster)
    Param::new("cluster-config-file", None, IMMUTABLE, Kind::Str, "nodes.conf"),
    // accepted and reported, not acted upon (cluster)
    Param::new("cluster-announce-hostname", None, 0, Kind::Str, ""),
    // accepted and reported, not acted upon (process management)
    Param::new("syslog-ident", None, IMMUTABLE, Kind::Str, "redis"),
    Param::new("dbfilename", None, PROTECTED, Kind::Str, "dump.rdb"),
    Param::new("appendfilename", None, IMMUTABLE, Kind::Str, "appendonly.aof"),
    Param::new("appenddirname", None, IMMUTABLE, Kind::Str, "appendonlydir"),
    // accepted and reported, not acted upon (process management)
    Param::new("server_cpulist", None, IMMUTABLE, Kind::Str, ""),
    // accepted and reported, not acted upon (process management)
    Param::new("bio_cpulist", None, IMMUTABLE, Kind::Str, ""),
    // accepted and reported, not acted upon (aof)
    Param::new("aof_rewrite_cpulist", None, IMMUTABLE, Kind::Str, ""),
    // accepted and reported, not acted upon (snapshots)
    Param::new("bgsave_cpulist", None, IMMUTABLE, Kind::Str, ""),
    // accepted and reported, not acted upon (process management)
    Param::new("ignore-warnings", None, 0, Kind::Str, ""),
    // accepted and reported, not acted upon (process management)
    Param::new("proc-title-template", None, 0, Kind::Str, "{title} {listen-addr} {server-mode}"),
    // accepted and reported, not acted upon (process management)
    Param::new("bind-source-addr", None, 0, Kind::Str, ""),
    Param::new("logfile", None, IMMUTABLE, Kind::Str, ""),
    Param::new("masterauth", None, SENSITIVE, Kind::Str, ""),
    Param::new("requirepass", None, SENSITIVE, Kind::Str, ""),
    // accepted and reported, not acted upon (process management)
    Param::new(
        "supervised",
        None,
        IMMUTABLE,
        Kind::Enum(&["upstart", "systemd", "auto", "no"]),
        "no",
    ),
    // accepted and reported, not acted upon (process management)
    Param::new(
        "syslog-facility",
        None,
        IMMUTABLE,
        Kind::Enum(&[
            "user",
            "local0",
            "local1",
            "local2",
            "local3",
            "local4",
            "local5",
            "local6",
            "local7",
        ]),
        "local0",
    ),
    Param::new(
        "repl-diskless-load",
        None,
        DENY_LOADING,
        Kind::Enum(&["disabled", "on-empty-db", "swapdb"]),
        "disabled",
    ),
    Param::new(
        "loglevel",
        None,
        0,
        Kind::Enum(&["debug", "verbose", "notice", "warning"]),
        "notice",
    ),
    Param::new(
        "maxmemory-policy",
        None,
        0,
        Kind::Enum(&[
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ]),
        "noeviction",
    ),
    Param::new("appendfsync", None, 0, Kind::Enum(&["everysec", "always", "no"]), "everysec"),
    // accepted and reported, not acted upon (process management)
    Param::new("oom-score-adj", None, 0, Kind::Enum(&["no", "yes", "relative", "absolute"]), "no"),
    Param::new(
        "acl-pubsub-default",
        None,
        0,
        Kind::Enum(&["allchannels", "resetchannels"]),
        "resetchannels",
    ),
    // accepted and reported, not acted upon (snapshots)
    Param::new("sanitize-dump-payload", None, 0, Kind::Enum(&["no", "yes", "clients"]), "no"),
    Param::new(
        "enable-protected-configs",
        None,
        IMMUTABLE,
        Kind::Enum(&["no", "yes", "local"]),
        "no",
    ),
    Param::new("enable-debug-command", None, IMMUTABLE, Kind::Enum(&["no", "yes", "local"]), "no"),
    Param::new("enable-module-command", None, IMMUTABLE, Kind::Enum(&["no", "yes", "local"]), "no"),
    // accepted and reported, not acted upon (cluster)
    Param::new(
        "cluster-preferred-endpoint-type",
        None,
        0,
        Kind::Enum(&["ip", "hostname", "unknown-endpoint"]),
        "ip",
    ),
    // accepted and reported, not acted upon (replication)
    Param::new(
        "propagation-error-behavior",
        None,
        0,
        Kind::Enum(&["ignore", "panic", "panic-on-replicas"]),
        "ignore",
    ),
    Param::new(
        "shutdown-on-sigint",
        None,
        MULTI_ARG,
        Kind::MultiEnum(&["default", "save", "nosave", "now", "force"]),
        "default",
    ),
    Param::new(
        "shutdown-on-sigterm",
        None,
        MULTI_ARG,
        Kind::MultiEnum(&["default", "save", "nosave", "now", "force"]),
        "default",
    ),
    Param::new(
        "databases",
        None,
        IMMUTABLE,
        Kind::Int { min: 1, max: 2147483647, fmt: NumFmt::Plain },
        "16",
    ),
    Param::new("port", None, 0, Kind::Int { min: 0, max: 65535, fmt: NumFmt::Plain }, "6379"),
    // accepted and reported, not acted upon (process management)
    Param::new(
        "io-threads",
        None,
        IMMUTABLE,
        Kind::Int { min: 1, max: 128, fmt: NumFmt::Plain },
        "1",
    ),
    Param::new(
        "auto-aof-rewrite-percentage",
        None,
        0,
        Kind::Int { min: 0, max: 2147483647, fmt: NumFmt::Plain },
        "100",
    ),
    // accepted and reported, not acted upon (cluster)
    Param::new(
        "cluster-replica-validity-factor",
        Some("cluster-slave-validity-factor"),
        0,
        Kind::Int { min: 0, max: 2147483647, fmt: NumFmt::Plain },
        "10",
    ),
    Param::new(
        "list-max-listpack-size",
        Some("list-max-ziplist-size"),
        0,
        Kind::Int { min: -2147483648, max: 2147483647, fmt: NumFmt::Plain },
        "-2",
    ),
    Param::new(
        "tcp-keepalive",
        None,
        0,
        Kind::Int { min: 0, max: 2147483647, fmt: NumFmt::Plain },
        "300",
    ),
    // accepted and reported, not acted upon (cluster)
    Param::new(
        "cluster-migration-barrier",
        None,
        0,
        Kind::Int { min: 0, max: 2147483647, fmt: NumFmt::Plain },
        "1",
    ),
    // accepted and reported, not acted upon (active defrag)
    Param::new(
        "active-defrag-cycle-min",
        None,
        0,
        Kind::Int { min: 1, max: 99, fmt: NumFmt::Plain },
        "1",
    ),
    // accepted and reported, not acted upon (active defrag)
    Param::new(
        "active-defrag-cycle-max",
        None,
        0,
        Kind::Int { min: 1, max: 99, fmt: NumFmt::Plain },
        "25",
    ),
    // accepted and reported, not acted upon (active defrag)
    Param::new(
        "active-defrag-threshold-lower",
        None,
        0,
        Kind::Int { min: 0, max: 1000, fmt: NumFmt::Plain },
        "10",
    ),
    // accepted and reported, not acted upon (active defrag)
    Param::new(
        "active-defrag-threshold-upper",
        None,
        0,
        Kind::Int { min: 0, max: 1000, fmt: NumFmt::Plain },
        "100",
    ),
    Param::new(
        "lfu-log-factor",
        None,
        0,
        Kind::Int { min: 0, max: 2147483647, fmt: NumFmt::Plain },
        "10",
    ),
    Param::new(
        "lfu-decay-time",
        None,
        0,
        Kind::Int { min: 0, max: 2147483647, fmt: NumFmt::Plain },
        "1",
    ),
    Param::new(
        "replica-priority",
        Some("slave-priority"),
        0,
        Kind::Int { min: 0, max: 2147483647, fmt: NumFmt::Plain },
        "100",
    ),
    Param::new(
        "repl-diskless-sync-delay",
        None,
        0,
        Kind::Int { min: 0, max: 2147483647, fmt: NumFmt::Plain },
        "5",
    ),
    Param::new(
        "maxmemory-samples",
        None,
        0,
        Kind::Int { min: 1, max: 2147483647, fmt: NumFmt::Plain },
        "5",
    ),
    Param::new(
        "maxmemory-eviction-tenacity",
        None,
        0,
        Kind::Int { min: 0, max: 100, fmt: NumFmt::Plain },
        "10",
    ),
    Param::new("timeout", None, 0, Kind::Int { min: 0, max: 2147483647, fmt: NumFmt::Plain }, "0"),
    Param::new(
        "replica-announce-port",
        Some("slave-announce-port"),
        0,
        Kind::Int { min: 0, max: 65535, fmt: NumFmt::Plain },
        "0",
    ),
    Param::new(
        "tcp-backlog",
        None,
        IMMUTABLE,
        Kind::Int { min: 0, max: 2147483647, fmt: NumFmt::Plain },
        "511",
    ),
    // accepted and reported, not acted upon (cluster)
    Param::new(
        "cluster-port",
        None,
        IMMUTABLE,
        Kind::Int { min: 0, max: 65535, fmt: NumFmt::Plain },
        "0",
    ),
    // accepted and reported, not acted upon (cluster)
    Param::new(
        "cluster-announce-bus-port",
        None,
        0,
        Kind::Int { min: 0, max: 65535, fmt: NumFmt::Plain },
        "0",
    ),
    // accepted and reported, not acted upon (cluster)
    Param::new(
        "cluster-announce-port",
        None,
        0,
        Kind::Int { min: 0, max: 65535, fmt: NumFmt::Plain },
        "0",
    ),
    // accepted and reported, not acted upon (cluster)
    Param::new(
        "cluster-announce-tls-port",
        None,
        0,
        Kind::Int { min: 0, max: 65535, fmt: NumFmt::Plain },
        "0",
    ),
    Param::new(
        "repl-timeout",
        None,
        0,
        Kind::Int { min: 1, max: 2147483647, fmt: NumFmt::Plain },
        "60",
    ),
    Param::new(
        "repl-ping-replica-period",
        Some("repl-ping-slave-period"),
        0,
        Kind::Int { min: 1, max: 2147483647, fmt: NumFmt::Plain },
        "10",
    ),
    // accepted and reported, not acted upon (encodings)
    Param::new(
        "list-compress-depth",
        None,
        0,
        Kind::Int { min: 0, max: 2147483647, fmt: NumFmt::Plain },
        "0",
    ),
    // snapshots: microseconds per key a BGSAVE takes (a test hook, as in Redis)
    Param::new(
        "rdb-key-save-delay",
        None,
        HIDDEN,
        Kind::Int { min: -2147483648, max: 2147483647, fmt: NumFmt::Plain },
        "0",
    ),
    // snapshots: microseconds slept per loaded key (a test hook, as in Redis)
    Param::new(
        "key-load-delay",
        None,
        HIDDEN,
        Kind::Int { min: -2147483648, max: 2147483647, fmt: NumFmt::Plain },
        "0",
    ),
    // accepted and reported, not acted upon (process management)
    Param::new(
        "active-expire-effort",
        None,
        0,
        Kind::Int { min: 1, max: 10, fmt: NumFmt::Plain },
        "1",
    ),
    Param::new("hz", None, 0, Kind::Int { min: 0, max: 2147483647, fmt: NumFmt::Plain }, "10"),
    Param::new(
        "min-replicas-to-write",
        Some("min-slaves-to-write"),
        0,
        Kind::Int { min: 0, max: 2147483647, fmt: NumFmt::Plain },
        "0",
    ),
    Param::new(
        "min-replicas-max-lag",
        Some("min-slaves-max-lag"),
        0,
        Kind::Int { min: 0, max: 2147483647, fmt: NumFmt::Plain },
        "10",
    ),
    // accepted and reported, not acted upon (process management)
    Param::new(
        "watchdog-period",
        None,
        HIDDEN,
        Kind::Int { min: 0, max: 2147483647, fmt: NumFmt::Plain },
        "0",
    ),
    Param::new(
        "shutdown-timeout",
        None,
        0,
        Kind::Int { min: 0, max: 2147483647, fmt: NumFmt::Plain },
        "10",
    ),
    Param::new(
        "repl-diskless-sync-max-replicas",
        None,
        0,
        Kind::Int { min: 0, max: 2147483647, fmt: NumFmt::Plain },
        "0",
    ),
    Param::new(
        "maxclients",
        None,
        0,
        Kind::Int { min: 1, max: 4294967295, fmt: NumFmt::Plain },
        "10000",
    ),
    // accepted and reported, not acted upon (process management)
    Param::new(
        "unixsocketperm",
        None,
        IMMUTABLE,
        Kind::Int { min: 0, max: 511, fmt: NumFmt::Octal },
        "0",
    ),
    // accepted and reported, not acted upon (process management)
    Param::new(
        "socket-mark-id",
        None,
        IMMUTABLE,
        Kind::Int { min: 0, max: 4294967295, fmt: NumFmt::Plain },
        "0",
    ),
    // accepted and reported, not acted upon (active defrag)
    Param::new(
        "active-defrag-max-scan-fields",
        None,
        0,
        Kind::Int { min: 1, max: 9223372036854775807, fmt: NumFmt::Plain },
        "1000",
    ),
    // acted on by the slow log
    Param::new(
        "slowlog-max-len",
        None,
        0,
        Kind::Int { min: 0, max: 9223372036854775807, fmt: NumFmt::Plain },
        "128",
    ),
    Param::new(
        "acllog-max-len",
        None,
        0,
        Kind::Int { min: 0, max: 9223372036854775807, fmt: NumFmt::Plain },
        "128",
    ),
    // acted on by scripting (the busy-script hook)
    Param::new(
        "busy-reply-threshold",
        Some("lua-time-limit"),
        0,
        Kind::Int { min: 0, max: 9223372036854775807, fmt: NumFmt::Plain },
        "5000",
    ),
    // accepted and reported, not acted upon (cluster)
    Param::new(
        "cluster-node-timeout",
        None,
        0,
        Kind::Int { min: 0, max: 9223372036854775807, fmt: NumFmt::Plain },
        "15000",
    ),
    // acted on by the slow log
    Param::new(
        "slowlog-log-slower-than",
        None,
        0,
        Kind::Int { min: -1, max: 9223372036854775807, fmt: NumFmt::Plain },
        "10000",
    ),
    // acted on by the latency monitor
    Param::new(
        "latency-monitor-threshold",
        None,
        0,
        Kind::Int { min: 0, max: 9223372036854775807, fmt: NumFmt::Plain },
        "0",
    ),
    Param::new(
        "proto-max-bulk-len",
        None,
        0,
        Kind::Int { min: 1048576, max: 9223372036854775807, fmt: NumFmt::Memory },
        "536870912",
    ),
    Param::new(
        "stream-node-max-entries",
        None,
        0,
        Kind::Int { min: 0, max: 9223372036854775807, fmt: NumFmt::Plain },
        "100",
    ),
    Param::new(
        "repl-backlog-size",
        None,
        0,
        Kind::Int { min: 1, max: 9223372036854775807, fmt: NumFmt::Memory },
        "1048576",
    ),
    Param::new(
        "maxmemory",
        None,
        0,
        Kind::Int { min: 0, max: 18446744073709551615, fmt: NumFmt::Memory },
        "0",
    ),
    // accepted and reported, not acted upon (cluster)
    Param::new(
        "cluster-link-sendbuf-limit",
        None,
        0,
        Kind::Int { min: 0, max: 18446744073709551615, fmt: NumFmt::Memory },
        "0",
    ),
    Param::new(
        "hash-max-listpack-entries",
        Some("hash-max-ziplist-entries"),
        0,
        Kind::Int { min: 0, max: 9223372036854775807, fmt: NumFmt::Plain },
        "512",
    ),
    Param::new(
        "set-max-intset-entries",
        None,
        0,
        Kind::Int { min: 0, max: 9223372036854775807, fmt: NumFmt::Plain },
        "512",
    ),
    Param::new(
        "zset-max-listpack-entries",
        Some("zset-max-ziplist-entries"),
        0,
        Kind::Int { min: 0, max: 9223372036854775807, fmt: NumFmt::Plain },
        "128",
    ),
    // accepted and reported, not acted upon (active defrag)
    Param::new(
        "active-defrag-ignore-bytes",
        None,
        0,
        Kind::Int { min: 1, max: 9223372036854775807, fmt: NumFmt::Memory },
        "104857600",
    ),
    Param::new(
        "hash-max-listpack-value",
        Some("hash-max-ziplist-value"),
        0,
        Kind::Int { min: 0, max: 9223372036854775807, fmt: NumFmt::Memory },
        "64",
    ),
    Param::new(
        "stream-node-max-bytes",
        None,
        0,
        Kind::Int { min: 0, max: 9223372036854775807, fmt: NumFmt::Memory },
        "4096",
    ),
    Param::new(
        "zset-max-listpack-value",
        Some("zset-max-ziplist-value"),
        0,
        Kind::Int { min: 0, max: 9223372036854775807, fmt: NumFmt::Memory },
        "64",
    ),
    // acted on by HyperLogLog (sparse to dense)
    Param::new(
        "hll-sparse-max-bytes",
        None,
        0,
        Kind::Int { min: 0, max: 9223372036854775807, fmt: NumFmt::Memory },
        "3000",
    ),
    // acted on by client tracking (`server::tracking`)
    Param::new(
        "tracking-table-max-keys",
        None,
        0,
        Kind::Int { min: 0, max: 9223372036854775807, fmt: NumFmt::Plain },
        "1000000",
    ),
    Param::new(
        "client-query-buffer-limit",
        None,
        0,
        Kind::Int { min: 1048576, max: 9223372036854775807, fmt: NumFmt::Memory },
        "1073741824",
    ),
    // accepted and reported, not acted upon (eviction)
    Param::new(
        "maxmemory-clients",
        None,
        0,
        Kind::Int { min: -100, max: 9223372036854775807, fmt: NumFmt::MemoryPercent },
        "0",
    ),
    Param::new(
        "repl-backlog-ttl",
        None,
        0,
        Kind::Int { min: 0, max: 9223372036854775807, fmt: NumFmt::Plain },
        "3600",
    ),
    Param::new(
        "auto-aof-rewrite-min-size",
        None,
        0,
        Kind::Int { min: 0, max: 9223372036854775807, fmt: NumFmt::Memory },
        "67108864",
    ),
    // accepted and reported, not acted upon (snapshots)
    Param::new(
        "loading-process-events-interval-bytes",
        None,
        HIDDEN,
        Kind::Int { min: 1024, max: 2147483647, fmt: NumFmt::Plain },
        "2097152",
    ),
    // accepted and reported, not acted upon (TLS)
    Param::new("tls-port", None, 0, Kind::Int { min: 0, max: 65535, fmt: NumFmt::Plain }, "0"),
    // accepted and reported, not acted upon (TLS)
    Param::new(
        "tls-session-cache-size",
        None,
        0,
        Kind::Int { min: 0, max: 2147483647, fmt: NumFmt::Plain },
        "20480",
    ),
    // accepted and reported, not acted upon (TLS)
    Param::new(
        "tls-session-cache-timeout",
        None,
        0,
        Kind::Int { min: 0, max: 2147483647, fmt: NumFmt::Plain },
        "300",
    ),
    // accepted and reported, not acted upon (TLS)
    Param::new("tls-cluster", None, 0, Kind::Bool, "no"),
    // accepted and reported, not acted upon (TLS)
    Param::new("tls-replication", None, 0, Kind::Bool, "no"),
    // accepted and reported, not acted upon (TLS)
    Param::new("tls-auth-clients", None, 0, Kind::Enum(&["no", "yes", "optional"]), "yes"),
    // accepted and reported, not acted upon (TLS)
    Param::new("tls-prefer-server-ciphers", None, 0, Kind::Bool, "no"),
    // accepted and reported, not acted upon (TLS)
    Param::new("tls-session-caching", None, 0, Kind::Bool, "yes"),
    // accepted and reported, not acted upon (TLS)
    Param::new("tls-cert-file", None, 0, Kind::Str, ""),
    // accepted and reported, not acted upon (TLS)
    Param::new("tls-key-file", None, 0, Kind::Str, ""),
    // accepted and reported, not acted upon (TLS)
    Param::new("tls-key-file-pass", None, 0, Kind::Str, ""),
    // accepted and reported, not acted upon (TLS)
    Param::new("tls-client-cert-file", None, 0, Kind::Str, ""),
    // accepted and reported, not acted upon (TLS)
    Param::new("tls-client-key-file", None, 0, Kind::Str, ""),
    // accepted and reported, not acted upon (TLS)
    Param::new("tls-client-key-file-pass", None, 0, Kind::Str, ""),
    // accepted and reported, not acted upon (TLS)
    Param::new("tls-dh-params-file", None, 0, Kind::Str, ""),
    // accepted and reported, not acted upon (TLS)
    Param::new("tls-ca-cert-file", None, 0, Kind::Str, ""),
    // accepted and reported, not acted upon (TLS)
    Param::new("tls-ca-cert-dir", None, 0, Kind::Str, ""),
    // accepted and reported, not acted upon (TLS)
    Param::new("tls-protocols", None, 0, Kind::Str, ""),
    // accepted and reported, not acted upon (TLS)
    Param::new("tls-ciphers", None, 0, Kind::Str, ""),
    // accepted and reported, not acted upon (TLS)
    Param::new("tls-ciphersuites", None, 0, Kind::Str, ""),
    Param::new("dir", None, PROTECTED|DENY_LOADING, Kind::Special(Special::Dir), ""),
    Param::new("save", None, MULTI_ARG, Kind::Special(Special::Save), "3600 1 300 100 60 10000"),
    Param::new(
        "client-output-buffer-limit",
        None,
        MULTI_ARG,
        Kind::Special(Special::ClientOutputBufferLimit),
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    ),
    // accepted and reported, not acted upon (process management)
    Param::new(
        "oom-score-adj-values",
        None,
        MULTI_ARG,
        Kind::Special(Special::OomScoreAdjValues),
        "0 200 800",
    ),
    Param::new("notify-keyspace-events", None, 0, Kind::Special(Special::NotifyKeyspaceEvents), ""),
    Param::new("bind", None, MULTI_ARG, Kind::Special(Special::Bind), "* -::*"),
    Param::new(
        "replicaof",
        Some("slaveof"),
        IMMUTABLE|MULTI_ARG,
        Kind::Special(Special::ReplicaOf),
        "",
    ),
    // acted on by INFO latencystats
    Param::new(
        "latency-tracking-info-percentiles",
        None,
        MULTI_ARG,
        Kind::Special(Special::LatencyPercentiles),
        "50 99 99.9",
    ),
];

/// Finds a parameter's index by name or alias, case-insensitively.
pub fn find_index(name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    PARAMS
        .iter()
        .position(|p| p.name == lower || p.alias == Some(lower.as_str()))
}

/// Finds a parameter by name or alias, case-insensitively.
pub fn find_param(name: &str) -> Option<&'static Param> {
    find_index(name).map(|i| &PARAMS[i])
}

/// Every configuration value: the canonical text of each parameter, plus typed copies of the
/// ones the server reads while running.
#[derive(Debug, Clone)]
pub struct Config {
    /// Canonical value of `PARAMS[i]`.
    values: Vec<String>,
    pub port: i64,
    pub bind: Vec<String>,
    pub dir: String,
    pub dbfilename: String,
    pub appendonly: bool,
    pub appendfilename: String,
    pub appenddirname: String,
    pub appendfsync: String,
    pub requirepass: String,
    /// The config file's `user <name> <rules...>` lines, checked: the name, then the rules
    /// with `(...)` selectors joined (see `server::acl`).
    pub acl_users: Vec<Vec<Vec<u8>>>,
    pub databases: i64,
    pub maxclients: i64,
    pub timeout: i64,
    pub tcp_keepalive: i64,
    pub tcp_backlog: i64,
    pub loglevel: String,
    pub logfile: String,
    pub save: Vec<(i64, i64)>,
    pub maxmemory: i64,
    pub maxmemory_policy: String,
    pub maxmemory_samples: i64,
    pub proto_max_bulk_len: i64,
    pub client_query_buffer_limit: i64,
    pub hz: i64,
    pub daemonize: bool,
    pub protected_mode: bool,
    pub enable_debug_command: String,
    pub pidfile: String,
    pub lazyfree_lazy_expire: bool,
    /// jemalloc returns freed memory to the system on a thread of its own (see
    /// `alloc::set_background_thread`).
    pub jemalloc_bg_thread: bool,
    pub lazyfree_lazy_user_del: bool,
    pub lazyfree_lazy_user_flush: bool,
    /// Compact-encoding thresholds (the collections convert past these, like Redis).
    pub list_max_listpack_size: i64,
    pub list_compress_depth: i64,
    pub hash_max_listpack_entries: i64,
    pub hash_max_listpack_value: i64,
    pub set_max_intset_entries: i64,
    pub zset_max_listpack_entries: i64,
    pub zset_max_listpack_value: i64,
    pub rdbcompression: bool,
    pub rdbchecksum: bool,
    pub rdb_save_incremental_fsync: bool,
    pub aof_rewrite_incremental_fsync: bool,
    pub stop_writes_on_bgsave_error: bool,
    pub key_load_delay: i64,
    pub rdb_key_save_delay: i64,
    /// Replication parameters checked on every write (`min-replicas-*`, `replica-*`).
    pub min_replicas_to_write: u64,
    pub min_replicas_max_lag: u64,
    pub replica_read_only: bool,
    pub replica_serve_stale_data: bool,
    /// `busy-reply-threshold` (`lua-time-limit`) in milliseconds, read by every script run.
    pub busy_reply_threshold: i64,
    /// `hll-sparse-max-bytes`: past it a sparse HyperLogLog turns dense.
    pub hll_sparse_max_bytes: i64,
    /// Slow log and latency monitor, read after every command.
    pub slowlog_log_slower_than: i64,
    pub slowlog_max_len: i64,
    pub latency_monitor_threshold: i64,
    pub latency_tracking: bool,
    /// `tracking-table-max-keys` (0: unlimited).
    pub tracking_table_max_keys: i64,
    /// `latency-tracking-info-percentiles`, for INFO latencystats.
    pub latency_percentiles: Vec<f64>,
    /// `client-output-buffer-limit`, indexed by [`ObufClass`].
    pub obuf_limits: [ObufLimit; 3],
    /// `notify-keyspace-events` as Redis's `NOTIFY_*` bit set (see [`notify`]).
    pub notify_keyspace_events: u32,
    /// Not a parameter: absolute path of the config file the server was started with (CONFIG
    /// REWRITE writes it, INFO shows it).
    pub config_file: Option<String>,
    /// Not a Redis parameter: DEBUG SET-ACTIVE-EXPIRE's switch lives in ServerState; kept for
    /// code that reads it from here.
    pub active_expire_enabled: bool,
}

impl Default for Config {
    fn default() -> Self {
        let mut c = Config {
            values: PARAMS.iter().map(|p| p.default.to_string()).collect(),
            port: 0,
            bind: Vec::new(),
            dir: String::new(),
            dbfilename: String::new(),
            appendonly: false,
            appendfilename: String::new(),
            appenddirname: String::new(),
            appendfsync: String::new(),
            requirepass: String::new(),
            acl_users: Vec::new(),
            databases: 0,
            maxclients: 0,
            timeout: 0,
            tcp_keepalive: 0,
            tcp_backlog: 0,
            loglevel: String::new(),
            logfile: String::new(),
            save: Vec::new(),
            maxmemory: 0,
            maxmemory_policy: String::new(),
            maxmemory_samples: 0,
            proto_max_bulk_len: 0,
            client_query_buffer_limit: 0,
            hz: 0,
            daemonize: false,
            protected_mode: false,
            enable_debug_command: String::new(),
            pidfile: String::new(),
            lazyfree_lazy_expire: false,
            jemalloc_bg_thread: false,
            lazyfree_lazy_user_del: false,
            lazyfree_lazy_user_flush: false,
            list_max_listpack_size: 0,
            list_compress_depth: 0,
            hash_max_listpack_entries: 0,
            hash_max_listpack_value: 0,
            set_max_intset_entries: 0,
            zset_max_listpack_entries: 0,
            zset_max_listpack_value: 0,
            rdbcompression: true,
            rdb_save_incremental_fsync: true,
            aof_rewrite_incremental_fsync: true,
            rdbchecksum: true,
            stop_writes_on_bgsave_error: true,
            key_load_delay: 0,
            rdb_key_save_delay: 0,
            min_replicas_to_write: 0,
            min_replicas_max_lag: 0,
            replica_read_only: true,
            replica_serve_stale_data: true,
            busy_reply_threshold: 0,
            hll_sparse_max_bytes: 0,
            slowlog_log_slower_than: 0,
            slowlog_max_len: 0,
            latency_monitor_threshold: 0,
            latency_tracking: false,
            tracking_table_max_keys: 1_000_000,
            latency_percentiles: Vec::new(),
            obuf_limits: [ObufLimit::default(); 3],
            notify_keyspace_events: 0,
            active_expire_enabled: true,
            config_file: None,
        };
        if let Some(i) = find_index("dir") {
            c.values[i] = std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default();
        }
        c.sync_typed();
        c
    }
}

/// Parses a memory amount with Redis's units (`1k` = 1000, `1kb` = 1024, ..., case-insensitive).
/// Negative amounts are refused, as in Redis's `memtoull`.
pub fn parse_memory(v: &str) -> Option<i64> {
    parse_memory_u64(v).and_then(|n| i64::try_from(n).ok())
}

fn parse_memory_u64(v: &str) -> Option<u64> {
    let digits_end = v
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(digits_end);
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1_000_000,
        "mb" => 1024 * 1024,
        "g" => 1_000_000_000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if num.is_empty() {
        return if unit.is_empty() { None } else { Some(0) };
    }
    num.parse::<u64>().ok()?.checked_mul(mul)
}

fn parse_bool(v: &str) -> Result<&'static str, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Ok("yes"),
        "no" => Ok("no"),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

/// Validates an integer parameter and returns its canonical text.
fn canon_int(v: &str, min: i128, max: i128, fmt: NumFmt) -> Result<String, String> {
    let plain = || crate::util::num::parse_i64(v.as_bytes()).map(i128::from);
    let (n, percent) = match fmt {
        NumFmt::Plain => (plain(), false),
        NumFmt::Memory => (parse_memory_u64(v).map(i128::from), false),
        NumFmt::MemoryPercent => match parse_memory_u64(v) {
            Some(n) => (Some(i128::from(n)), false),
            None => {
                let p = v
                    .strip_suffix('%')
                    .filter(|s| !s.is_empty())
                    .and_then(|s| crate::util::num::parse_i64(s.as_bytes()))
                    .filter(|n| *n >= 0);
                (p.map(i128::from), true)
            }
        },
        NumFmt::Octal => (i64::from_str_radix(v, 8).ok().map(i128::from), false),
    };
    let Some(n) = n else {
        return Err(match fmt {
            NumFmt::Plain => "argument couldn't be parsed into an integer",
            NumFmt::Memory => "argument must be a memory value",
            NumFmt::MemoryPercent => "argument must be a memory or percent value",
            NumFmt::Octal => "argument couldn't be parsed as an octal number",
        }
        .into());
    };
    if percent {
        // Percentages are bounded by the (negative) lower bound, as Redis stores them negated.
        if -n < min {
            return Err(format!(
                "percentage argument must be less or equal to {}",
                -min
            ));
        }
        return Ok(format!("{n}%"));
    }
    if n < min || n > max {
        if fmt == NumFmt::Octal {
            return Err(format!(
                "argument must be between {min:o} and {max:o} inclusive"
            ));
        }
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(if fmt == NumFmt::Octal {
        format!("{n:o}")
    } else {
        n.to_string()
    })
}

fn enum_error(allowed: &[&str]) -> String {
    format!(
        "argument(s) must be one of the following: {}",
        allowed.join(", ")
    )
}

fn canon_enum(name: &str, v: &str, allowed: &[&str]) -> Result<String, String> {
    let lower = v.to_ascii_lowercase();
    if !allowed.contains(&lower.as_str()) {
        return Err(enum_error(allowed));
    }
    // `relative` is the same setting as `yes`; Redis reports the first name of a value.
    if name == "oom-score-adj" && lower == "relative" {
        return Ok("yes".into());
    }
    Ok(lower)
}

/// `shutdown-on-sig*`: a set of flags, printed in table order, `default` when empty.
fn canon_multi_enum(v: &str, allowed: &[&str]) -> Result<String, String> {
    let mut set = vec![false; allowed.len()];
    let words: Vec<String> = v.split_whitespace().map(str::to_ascii_lowercase).collect();
    if words.is_empty() {
        return Err(enum_error(allowed));
    }
    for w in &words {
        let i = allowed
            .iter()
            .position(|a| *a == w)
            .ok_or_else(|| enum_error(allowed))?;
        set[i] = true;
    }
    let has = |n: &str| allowed.iter().position(|a| *a == n).is_some_and(|i| set[i]);
    if has("save") && has("nosave") {
        return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
    }
    let names: Vec<&str> = allowed
        .iter()
        .zip(&set)
        .filter(|(a, s)| **s && **a != "default")
        .map(|(a, _)| *a)
        .collect();
    Ok(if names.is_empty() {
        "default".into()
    } else {
        names.join(" ")
    })
}

fn canon_str(name: &str, v: &str) -> Result<String, String> {
    match name {
        "dbfilename" if v.contains('/') => {
            Err("dbfilename can't be a path, just a filename".into())
        }
        "appendfilename" if v.is_empty() => Err("appendfilename can't be empty".into()),
        "appendfilename" if v.contains('/') => {
            Err("appendfilename can't be a path, just a filename".into())
        }
        "appenddirname" if v.is_empty() => Err("appenddirname can't be empty".into()),
        "appenddirname" if v.contains('/') => {
            Err("appenddirname can't be a path, just a dirname".into())
        }
        _ => Ok(v.to_string()),
    }
}

fn parse_save(v: &str) -> Result<Vec<(i64, i64)>, String> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    if parts.len() % 2 != 0 {
        return Err("Invalid save parameters".into());
    }
    let mut out = Vec::new();
    for pair in parts.chunks(2) {
        let secs = crate::util::num::parse_i64(pair[0].as_bytes());
        let changes = crate::util::num::parse_i64(pair[1].as_bytes());
        match (secs, changes) {
            (Some(s), Some(c)) if s >= 1 && c >= 0 => out.push((s, c)),
            _ => return Err("Invalid save parameters".into()),
        }
    }
    Ok(out)
}

fn save_to_string(points: &[(i64, i64)]) -> String {
    let parts: Vec<String> = points.iter().map(|(s, c)| format!("{s} {c}")).collect();
    parts.join(" ")
}

/// Client output buffer limits: `class hard soft seconds` groups merged into the current ones.
fn canon_obuf(current: &str, v: &str) -> Result<String, String> {
    const CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];
    let words: Vec<&str> = v.split_whitespace().collect();
    if words.is_empty() || words.len() % 4 != 0 {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let cur: Vec<&str> = current.split_whitespace().collect();
    let mut limits: Vec<[String; 3]> = cur
        .chunks(4)
        .map(|c| [c[1].to_string(), c[2].to_string(), c[3].to_string()])
        .collect();
    for g in words.chunks(4) {
        let class = match g[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        };
        let hard = parse_memory_u64(g[1]);
        let soft = parse_memory_u64(g[2]);
        let secs = crate::util::num::parse_i64(g[3].as_bytes()).filter(|n| *n >= 0);
        let (Some(h), Some(s), Some(t)) = (hard, soft, secs) else {
            return Err(
                "Error in hard, soft or soft_seconds setting in buffer limit configuration.".into(),
            );
        };
        limits[class] = [h.to_string(), s.to_string(), t.to_string()];
    }
    let mut out = String::new();
    for (i, l) in limits.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{} {} {} {}", CLASSES[i], l[0], l[1], l[2]);
    }
    Ok(out)
}

fn canon_oom_values(v: &str) -> Result<String, String> {
    let words: Vec<&str> = v.split_whitespace().collect();
    if words.len() != 3 {
        return Err("wrong number of arguments".into());
    }
    let mut out = Vec::new();
    for w in words {
        match crate::util::num::parse_i64(w.as_bytes()) {
            Some(n) if (-2000..=2000).contains(&n) => out.push(n.to_string()),
            _ => {
                return Err(
                    "Invalid oom-score-adj-values, elements must be between -2000 and 2000.".into(),
                )
            }
        }
    }
    Ok(out.join(" "))
}

fn canon_notify(v: &str) -> Result<String, String> {
    notify::parse(v)
        .map(notify::to_string)
        .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into())
}

/// Keyspace notification classes: Redis's `NOTIFY_*` bits and their letters.
pub mod notify {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const KEYEVENT: u32 = 1 << 1;
    pub const GENERIC: u32 = 1 << 2;
    pub const STRING: u32 = 1 << 3;
    pub const LIST: u32 = 1 << 4;
    pub const SET: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const ZSET: u32 = 1 << 7;
    pub const EXPIRED: u32 = 1 << 8;
    pub const EVICTED: u32 = 1 << 9;
    pub const STREAM: u32 = 1 << 10;
    pub const KEY_MISS: u32 = 1 << 11;
    pub const MODULE: u32 = 1 << 13;
    pub const NEW: u32 = 1 << 14;
    /// What `A` stands for: every class except key-miss and new-key events.
    pub const ALL: u32 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

    /// The bit of one class letter (`K`, `E`, `g`, `$`, ...), `A` included.
    pub fn bit(c: char) -> Option<u32> {
        Some(match c {
            'A' => ALL,
            'g' => GENERIC,
            '$' => STRING,
            'l' => LIST,
            's' => SET,
            'h' => HASH,
            'z' => ZSET,
            'x' => EXPIRED,
            'e' => EVICTED,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            't' => STREAM,
            'm' => KEY_MISS,
            'd' => MODULE,
            'n' => NEW,
            _ => return None,
        })
    }

    /// Parses a flag string; `None` if it has a letter that is no class.
    pub fn parse(v: &str) -> Option<u32> {
        v.chars().try_fold(0, |acc, c| bit(c).map(|b| acc | b))
    }

    /// The canonical text CONFIG GET shows. Like Redis, `A` replaces the classes it covers and
    /// then hides `n` too (Redis prints `n` only in the per-class branch).
    pub fn to_string(flags: u32) -> String {
        const CLASSES: [(u32, char); 11] = [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ];
        let mut out = String::new();
        if flags & ALL == ALL {
            out.push('A');
        } else {
            out.extend(CLASSES.iter().filter(|(b, _)| flags & b != 0).map(|(_, c)| *c));
        }
        for (b, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
            if flags & b != 0 {
                out.push(c);
            }
        }
        out
    }
}

/// Client classes of `client-output-buffer-limit`, in the order the parameter lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObufClass {
    Normal = 0,
    Replica = 1,
    Pubsub = 2,
}

/// One class's output buffer limits; 0 disables a limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObufLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_secs: u64,
}

/// Reads the canonical `client-output-buffer-limit` text (`normal h s t slave h s t pubsub ...`).
fn parse_obuf_limits(text: &str) -> [ObufLimit; 3] {
    let mut out = [ObufLimit::default(); 3];
    let words: Vec<&str> = text.split_whitespace().collect();
    for (i, g) in words.chunks(4).enumerate().take(3) {
        let n = |j: usize| g.get(j).and_then(|w| w.parse::<u64>().ok()).unwrap_or(0);
        out[i] = ObufLimit { hard: n(1), soft: n(2), soft_secs: n(3) };
    }
    out
}

fn canon_bind(v: &str) -> Result<String, String> {
    let addrs: Vec<&str> = v.split_whitespace().collect();
    if addrs.len() > 16 {
        return Err("Too many bind addresses specified.".into());
    }
    Ok(addrs.join(" "))
}

fn canon_replicaof(v: &str) -> Result<String, String> {
    let words: Vec<&str> = v.split_whitespace().collect();
    if words.is_empty() {
        return Ok(String::new());
    }
    if words.len() != 2 {
        return Err("wrong number of arguments".into());
    }
    if words[0].eq_ignore_ascii_case("no") && words[1].eq_ignore_ascii_case("one") {
        return Ok(String::new());
    }
    match crate::util::num::parse_i64(words[1].as_bytes()) {
        Some(p) if (0..=65535).contains(&p) => Ok(format!("{} {p}", words[0])),
        _ => Err("Invalid master port".into()),
    }
}

fn canon_percentiles(v: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for w in v.split_whitespace() {
        let f = crate::util::num::parse_f64(w.as_bytes())
            .ok_or("Invalid latency-tracking-info-percentiles parameters")?;
        if !(0.0..=100.0).contains(&f) {
            return Err(
                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                    .into(),
            );
        }
        out.push(f.to_string());
    }
    Ok(out.join(" "))
}

/// `dir`: changes the working directory, as Redis does, and reports the resulting path.
fn canon_dir(v: &str) -> Result<String, String> {
    std::env::set_current_dir(v).map_err(|e| io_reason(&e))?;
    std::env::current_dir()
        .map(|d| d.display().to_string())
        .map_err(|e| io_reason(&e))
}

/// The `strerror` text of an I/O error, without Rust's " (os error N)" suffix.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl Config {
    /// The canonical value of a parameter (what CONFIG GET prints).
    pub fn get(&self, param: &Param) -> &str {
        let i = PARAMS
            .iter()
            .position(|p| std::ptr::eq(p, param))
            .unwrap_or(0);
        &self.values[i]
    }

    /// The canonical value of the parameter at `PARAMS[i]`.
    pub fn get_index(&self, i: usize) -> &str {
        &self.values[i]
    }

    /// The value of a parameter by name (`None` if there is no such parameter).
    pub fn get_by_name(&self, name: &str) -> Option<&str> {
        find_index(name).map(|i| self.values[i].as_str())
    }

    /// Validates `value` for `PARAMS[i]` and stores it. The error is Redis's reason text (without
    /// the "CONFIG SET failed" prefix). Mutability flags are the caller's business.
    pub fn set_index(&mut self, i: usize, value: &str) -> Result<(), String> {
        let p = &PARAMS[i];
        let canon = match p.kind {
            Kind::Bool => parse_bool(value)?.to_string(),
            Kind::Int { min, max, fmt } => canon_int(value, min, max, fmt)?,
            Kind::Enum(allowed) => canon_enum(p.name, value, allowed)?,
            Kind::MultiEnum(allowed) => canon_multi_enum(value, allowed)?,
            Kind::Str => canon_str(p.name, value)?,
            Kind::Special(s) => self.canon_special(i, s, value)?,
        };
        self.values[i] = canon;
        self.sync_typed();
        if matches!(p.kind, Kind::Special(Special::NotifyKeyspaceEvents)) {
            // The text hides `n` under `A` (as CONFIG GET does in Redis); the bit stays set.
            self.notify_keyspace_events = notify::parse(value).unwrap_or(0);
        }
        Ok(())
    }

    /// Sets a parameter by name or alias.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let i = find_index(name).ok_or_else(|| format!("Unknown parameter '{name}'"))?;
        self.set_index(i, value)
    }

    fn canon_special(&self, i: usize, s: Special, v: &str) -> Result<String, String> {
        match s {
            Special::Dir => canon_dir(v),
            Special::Save => parse_save(v).map(|p| save_to_string(&p)),
            Special::ClientOutputBufferLimit => canon_obuf(&self.values[i], v),
            Special::OomScoreAdjValues => canon_oom_values(v),
            Special::NotifyKeyspaceEvents => canon_notify(v),
            Special::Bind => canon_bind(v),
            Special::ReplicaOf => canon_replicaof(v),
            Special::LatencyPercentiles => canon_percentiles(v),
        }
    }

    fn text(&self, name: &str) -> String {
        self.get_by_name(name).unwrap_or_default().to_string()
    }

    fn int(&self, name: &str) -> i64 {
        let v = self.text(name);
        crate::util::num::parse_i64(v.as_bytes()).unwrap_or(0)
    }

    fn flag(&self, name: &str) -> bool {
        self.text(name) == "yes"
    }

    /// Refreshes the typed copies from the canonical values.
    fn sync_typed(&mut self) {
        self.port = self.int("port");
        self.bind = self
            .text("bind")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        self.dir = self.text("dir");
        self.dbfilename = self.text("dbfilename");
        self.appendonly = self.flag("appendonly");
        self.appendfilename = self.text("appendfilename");
        self.appenddirname = self.text("appenddirname");
        self.appendfsync = self.text("appendfsync");
        self.requirepass = self.text("requirepass");
        self.databases = self.int("databases");
        self.maxclients = self.int("maxclients");
        self.timeout = self.int("timeout");
        self.tcp_keepalive = self.int("tcp-keepalive");
        self.tcp_backlog = self.int("tcp-backlog");
        self.loglevel = self.text("loglevel");
        self.logfile = self.text("logfile");
        self.save = parse_save(&self.text("save")).unwrap_or_default();
        // maxmemory is unsigned in Redis; clamp what does not fit an i64.
        self.maxmemory = self
            .text("maxmemory")
            .parse::<u64>()
            .map_or(0, |n| n.min(i64::MAX as u64) as i64);
        self.maxmemory_policy = self.text("maxmemory-policy");
        self.maxmemory_samples = self.int("maxmemory-samples");
        self.proto_max_bulk_len = self.int("proto-max-bulk-len");
        self.client_query_buffer_limit = self.int("client-query-buffer-limit");
        self.hz = self.int("hz");
        self.daemonize = self.flag("daemonize");
        self.protected_mode = self.flag("protected-mode");
        self.enable_debug_command = self.text("enable-debug-command");
        self.pidfile = self.text("pidfile");
        self.lazyfree_lazy_expire = self.flag("lazyfree-lazy-expire");
        self.jemalloc_bg_thread = self.flag("jemalloc-bg-thread");
        self.lazyfree_lazy_user_del = self.flag("lazyfree-lazy-user-del");
        self.lazyfree_lazy_user_flush = self.flag("lazyfree-lazy-user-flush");
        self.list_max_listpack_size = self.int("list-max-listpack-size");
        self.list_compress_depth = self.int("list-compress-depth");
        self.hash_max_listpack_entries = self.int("hash-max-listpack-entries");
        self.hash_max_listpack_value = self.int("hash-max-listpack-value");
        self.set_max_intset_entries = self.int("set-max-intset-entries");
        self.zset_max_listpack_entries = self.int("zset-max-listpack-entries");
        self.zset_max_listpack_value = self.int("zset-max-listpack-value");
        self.rdbcompression = self.flag("rdbcompression");
        self.rdb_save_incremental_fsync = self.flag("rdb-save-incremental-fsync");
        self.aof_rewrite_incremental_fsync = self.flag("aof-rewrite-incremental-fsync");
        self.rdbchecksum = self.flag("rdbchecksum");
        self.stop_writes_on_bgsave_error = self.flag("stop-writes-on-bgsave-error");
        self.key_load_delay = self.int("key-load-delay");
        self.rdb_key_save_delay = self.int("rdb-key-save-delay");
        self.min_replicas_to_write = self.int("min-replicas-to-write").max(0) as u64;
        self.min_replicas_max_lag = self.int("min-replicas-max-lag").max(0) as u64;
        self.replica_read_only = self.flag("replica-read-only");
        self.replica_serve_stale_data = self.flag("replica-serve-stale-data");
        self.busy_reply_threshold = self.int("busy-reply-threshold");
        self.hll_sparse_max_bytes = self.int("hll-sparse-max-bytes");
        self.slowlog_log_slower_than = self.int("slowlog-log-slower-than");
        self.slowlog_max_len = self.int("slowlog-max-len");
        self.latency_monitor_threshold = self.int("latency-monitor-threshold");
        self.latency_tracking = self.flag("latency-tracking");
        self.tracking_table_max_keys = self.int("tracking-table-max-keys");
        self.latency_percentiles = self
            .text("latency-tracking-info-percentiles")
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        self.obuf_limits = parse_obuf_limits(&self.text("client-output-buffer-limit"));
        let parsed = notify::parse(&self.text("notify-keyspace-events")).unwrap_or(0);
        // `A` hides `n` in the text, so a set `n` bit survives while the text still says `A`.
        let kept = if parsed & notify::ALL == notify::ALL { notify::NEW } else { 0 };
        self.notify_keyspace_events = parsed | (self.notify_keyspace_events & kept);
    }

    /// The names and values CONFIG GET reports for the given patterns: an exact name (or alias)
    /// matches even hidden parameters, a glob matches every visible name and alias.
    pub fn matching(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let seen = |out: &Vec<(String, String)>, n: &str| {
            out.iter().any(|(o, _)| o.eq_ignore_ascii_case(n))
        };
        for pat in patterns {
            let is_glob = pat.iter().any(|b| matches!(b, b'[' | b'*' | b'?'));
            if !is_glob {
                // Like Redis, an exact name is echoed back as the client spelled it.
                let given = String::from_utf8_lossy(pat).into_owned();
                let Some(i) = find_index(&given.to_ascii_lowercase()) else { continue };
                if !seen(&out, &given) {
                    out.push((given, self.values[i].clone()));
                }
                continue;
            }
            for (i, p) in PARAMS.iter().enumerate() {
                if p.has(HIDDEN) {
                    continue;
                }
                for n in std::iter::once(p.name).chain(p.alias) {
                    if !seen(&out, n) && crate::util::glob::matches(pat, n.as_bytes(), true) {
                        out.push((n.to_string(), self.values[i].clone()));
                    }
                }
            }
        }
        out
    }
}

/// Where an included or main config file's lines came from, for error messages.
fn fatal(lineno: usize, line: &str, err: &str) -> String {
    format!(
        "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\n\
         Reading the configuration file, at line {lineno}\n>>> '{line}'\n{err}"
    )
}

impl Config {
    /// Applies the text of a redis.conf-style file (also used for command-line overrides,
    /// which Redis turns into config lines). Unknown directives are errors, as in Redis.
    pub fn apply_text(&mut self, text: &str) -> Result<(), String> {
        let mut save_seen = false;
        self.apply_text_inner(text, &mut save_seen, 0)
    }

    fn apply_text_inner(
        &mut self,
        text: &str,
        save_seen: &mut bool,
        depth: u32,
    ) -> Result<(), String> {
        for (idx, raw) in text.split('\n').enumerate() {
            let line = raw.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let args = crate::protocol::inline::split_args(line.as_bytes())
                .ok_or_else(|| fatal(idx + 1, line, "Unbalanced quotes in configuration line"))?;
            if args.is_empty() {
                continue;
            }
            let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
            let values: Vec<String> = args[1..]
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if name == "user" && args.len() >= 2 {
                let line = crate::server::acl::check_user_line(&args, &self.acl_users)
                    .map_err(|e| fatal(idx + 1, line, &e))?;
                self.acl_users.push(line);
                continue;
            }
            if name == "include" && values.len() == 1 {
                if depth > 16 {
                    return Err(fatal(idx + 1, line, "include nesting is too deep"));
                }
                let inc = std::fs::read_to_string(&values[0]).map_err(|e| {
                    format!(
                        "Fatal error, can't open config file '{}': {}",
                        values[0],
                        io_reason(&e)
                    )
                })?;
                self.apply_text_inner(&inc, save_seen, depth + 1)?;
                continue;
            }
            let Some(i) = find_index(&name) else {
                return Err(fatal(
                    idx + 1,
                    line,
                    "Bad directive or wrong number of arguments",
                ));
            };
            let p = &PARAMS[i];
            if !p.has(MULTI_ARG) && values.len() != 1 {
                return Err(fatal(idx + 1, line, "wrong number of arguments"));
            }
            let mut value = values.join(" ");
            // Several `save` lines accumulate; the first one replaces the defaults.
            if p.name == "save" && *save_seen && !value.is_empty() {
                value = format!("{} {}", self.values[i], value);
            }
            if p.name == "save" {
                *save_seen = true;
            }
            self.set_index(i, value.trim())
                .map_err(|e| fatal(idx + 1, line, &e))?;
            // Accepting the directive and then serving as a standalone server would mislead
            // cluster clients, which would read `cluster_enabled:0` only after connecting.
            if p.name == "cluster-enabled" && self.values[i].eq_ignore_ascii_case("yes") {
                return Err(fatal(
                    idx + 1,
                    line,
                    "ferrodis does not implement Redis Cluster: only 'cluster-enabled no' is \
                     supported",
                ));
            }
        }
        Ok(())
    }

    /// Builds a config from redis-server's command line: an optional config file path, then
    /// `--name value...` overrides.
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        Self::from_args_with_file(args).map(|(mut c, file)| {
            c.config_file = file;
            c
        })
    }

    /// Like [`from_args`](Self::from_args), also returning the absolute path of the config file
    /// (CONFIG REWRITE needs it).
    pub fn from_args_with_file(args: &[String]) -> Result<(Config, Option<String>), String> {
        let mut cfg = Config::default();
        let mut i = 0;
        let mut file = None;
        let mut text = String::new();
        if let Some(first) = args.first() {
            if !first.starts_with("--") {
                text = std::fs::read_to_string(first).map_err(|e| {
                    format!(
                        "Fatal error, can't open config file '{first}': {}",
                        io_reason(&e)
                    )
                })?;
                let abs = std::fs::canonicalize(first)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| first.clone());
                file = Some(abs);
                i = 1;
            }
        }
        let mut lines = String::new();
        while i < args.len() {
            let a = &args[i];
            if let Some(name) = a.strip_prefix("--") {
                if !lines.is_empty() {
                    lines.push('\n');
                }
                lines.push_str(name);
            } else {
                lines.push(' ');
                lines.push_str(&quote_arg(a));
            }
            i += 1;
        }
        text.push('\n');
        text.push_str(&lines);
        cfg.apply_text(&text)?;
        Ok((cfg, file))
    }
}

/// Quotes an argument so `split_args` gives it back unchanged (empty strings included).
fn quote_arg(a: &str) -> String {
    let mut s = String::from("\"");
    for c in a.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            _ => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Marks the start of lines CONFIG REWRITE appended.
const REWRITE_SIGNATURE: &str = "# Generated by CONFIG REWRITE";

/// `1gb`, `64mb`, `3kb` or plain bytes: how CONFIG REWRITE writes memory amounts.
fn format_memory(n: u64) -> String {
    const GB: u64 = 1 << 30;
    const MB: u64 = 1 << 20;
    const KB: u64 = 1 << 10;
    match n {
        0 => "0".into(),
        n if n % GB == 0 => format!("{}gb", n / GB),
        n if n % MB == 0 => format!("{}mb", n / MB),
        n if n % KB == 0 => format!("{}kb", n / KB),
        n => n.to_string(),
    }
}

/// Quotes a value the way Redis's `sdscatrepr` does (always quoted, non-printables escaped).
fn repr(v: &str) -> String {
    let mut s = String::from("\"");
    for b in v.bytes() {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x07 => s.push_str("\\a"),
            0x08 => s.push_str("\\b"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s.push('"');
    s
}

/// The lines one parameter contributes to a rewritten file, and whether they must be written
/// even when the old file did not mention the parameter (value differs from the default).
/// `None` means "remove it from the file".
fn rewrite_lines(p: &Param, value: &str) -> Option<(Vec<String>, bool)> {
    let name = p.name;
    let force = value != p.default;
    let one = |v: String| Some((vec![format!("{name} {v}")], force));
    match p.kind {
        Kind::Bool | Kind::Enum(_) | Kind::MultiEnum(_) => one(value.to_string()),
        Kind::Int {
            fmt: NumFmt::Memory | NumFmt::MemoryPercent,
            ..
        } => match value.parse::<u64>() {
            Ok(n) => one(format_memory(n)),
            Err(_) => one(value.to_string()),
        },
        Kind::Int { .. } => one(value.to_string()),
        Kind::Str => one(repr(value)),
        Kind::Special(Special::Save) => {
            let points = parse_save(value).unwrap_or_default();
            if points.is_empty() {
                return Some((vec![format!("{name} \"\"")], true));
            }
            Some((
                points
                    .iter()
                    .map(|(s, c)| format!("{name} {s} {c}"))
                    .collect(),
                true,
            ))
        }
        Kind::Special(Special::Dir) => Some((vec![format!("{name} {}", repr(value))], true)),
        Kind::Special(Special::ReplicaOf) if value.is_empty() => None,
        Kind::Special(Special::ClientOutputBufferLimit) => {
            let words: Vec<&str> = value.split_whitespace().collect();
            let defaults: Vec<&str> = p.default.split_whitespace().collect();
            let mut lines = Vec::new();
            let mut any = false;
            for (g, d) in words.chunks(4).zip(defaults.chunks(4)) {
                any |= g != d;
                let class = if g[0] == "slave" { "replica" } else { g[0] };
                let mem = |s: &str| s.parse::<u64>().map(format_memory).unwrap_or_default();
                lines.push(format!(
                    "{name} {class} {} {} {}",
                    mem(g[1]),
                    mem(g[2]),
                    g[3]
                ));
            }
            Some((lines, any))
        }
        Kind::Special(Special::NotifyKeyspaceEvents) => {
            Some((vec![format!("{name} {}", repr(value))], !value.is_empty()))
        }
        Kind::Special(_) => one(value.to_string()),
    }
}

impl Config {
    /// CONFIG REWRITE: rewrites `path` so that it holds the current configuration, keeping
    /// comments, blank lines and lines it does not understand where they were. Each parameter
    /// reuses the lines that set it before; new non-default parameters are appended after
    /// [`REWRITE_SIGNATURE`].
    pub fn rewrite_file(&self, path: &str) -> std::io::Result<()> {
        self.rewrite_file_with_users(path, None)
    }

    /// Like [`rewrite_file`](Self::rewrite_file), also replacing the `user` lines by `users`
    /// (Redis writes the ACL users there unless an `aclfile` holds them; then `users` is
    /// empty and the old lines go).
    pub fn rewrite_file_with_users(
        &self,
        path: &str,
        users: Option<&[String]>,
    ) -> std::io::Result<()> {
        let old = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let new = self.rewritten_with_users(&old, users);
        let tmp = format!("{path}.tmp-{}", std::process::id());
        std::fs::write(&tmp, new)?;
        std::fs::rename(&tmp, path)
    }

    /// The rewritten text of a config file whose current content is `old`.
    pub fn rewritten(&self, old: &str) -> String {
        self.rewritten_with_users(old, None)
    }

    /// The rewritten text, with the `user` lines replaced by `users` when given.
    pub fn rewritten_with_users(&self, old: &str, users: Option<&[String]>) -> String {
        let mut lines: Vec<Option<String>> = Vec::new();
        let mut user_lines = Vec::new();
        // Parameter index -> old line numbers that set it, in order.
        let mut uses: Vec<Vec<usize>> = vec![Vec::new(); PARAMS.len()];
        let mut needs_signature = true;
        for raw in old.lines() {
            let line = raw.trim();
            let n = lines.len();
            lines.push(Some(line.to_string()));
            if line.is_empty() || line.starts_with('#') {
                if line == REWRITE_SIGNATURE {
                    needs_signature = false;
                }
                continue;
            }
            let Some(args) = crate::protocol::inline::split_args(line.as_bytes()) else {
                continue;
            };
            let Some(first) = args.first() else { continue };
            if first.eq_ignore_ascii_case(b"user") {
                user_lines.push(n);
            }
            if let Some(i) = find_index(&String::from_utf8_lossy(first)) {
                uses[i].push(n);
            }
        }
        for (i, p) in PARAMS.iter().enumerate() {
            let mut old_lines = std::mem::take(&mut uses[i]).into_iter();
            if let Some((new_lines, force)) = rewrite_lines(p, &self.values[i]) {
                for l in new_lines {
                    if let Some(n) = old_lines.next() {
                        lines[n] = Some(l);
                    } else if force {
                        if needs_signature {
                            lines.push(Some(REWRITE_SIGNATURE.to_string()));
                            needs_signature = false;
                        }
                        lines.push(Some(l));
                    }
                }
            }
            // Lines that set this parameter but were not reused are dropped.
            for n in old_lines {
                lines[n] = None;
            }
        }
        if let Some(users) = users {
            let mut old_lines = user_lines.into_iter();
            for l in users {
                if let Some(n) = old_lines.next() {
                    lines[n] = Some(l.clone());
                } else {
                    if needs_signature {
                        lines.push(Some(REWRITE_SIGNATURE.to_string()));
                        needs_signature = false;
                    }
                    lines.push(Some(l.clone()));
                }
            }
            for n in old_lines {
                lines[n] = None;
            }
        }
        let mut out = String::new();
        for l in lines.into_iter().flatten() {
            out.push_str(&l);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_line_overrides_defaults() {
        let a = args(&[
            "--port",
            "7001",
            "--save",
            "",
            "--maxmemory",
            "1gb",
            "--bind",
            "127.0.0.1",
            "::1",
        ]);
        let c = Config::from_args(&a).unwrap();
        assert_eq!(c.port, 7001);
        assert!(c.save.is_empty());
        assert_eq!(c.maxmemory, 1024 * 1024 * 1024);
        assert_eq!(c.bind, vec!["127.0.0.1", "::1"]);
        assert_eq!(c.databases, 16);
        assert_eq!(c.get_by_name("maxmemory"), Some("1073741824"));
    }

    #[test]
    fn memory_units_match_redis() {
        assert_eq!(parse_memory("100mb"), Some(100 * 1024 * 1024));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1GB"), Some(1 << 30));
        assert_eq!(parse_memory("x"), None);
        assert_eq!(parse_memory("-1"), None);
    }

    #[test]
    fn defaults_are_valid_and_canonical() {
        let c = Config::default();
        for (i, p) in PARAMS.iter().enumerate() {
            if p.name == "dir" {
                continue;
            }
            let mut c2 = c.clone();
            c2.set_index(i, p.default)
                .unwrap_or_else(|e| panic!("{}: {e}", p.name));
            assert_eq!(c2.get_index(i), p.default, "{}", p.name);
        }
        assert_eq!(c.hz, 10);
        assert_eq!(c.maxclients, 10000);
        assert_eq!(c.proto_max_bulk_len, 512 * 1024 * 1024);
    }

    #[test]
    fn errors_use_redis_wording() {
        let mut c = Config::default();
        assert_eq!(
            c.set("hz", "abc").unwrap_err(),
            "argument couldn't be parsed into an integer"
        );
        assert_eq!(
            c.set("hz", "-1").unwrap_err(),
            "argument must be between 0 and 2147483647 inclusive"
        );
        assert_eq!(
            c.set("maxmemory", "1xb").unwrap_err(),
            "argument must be a memory value"
        );
        assert_eq!(
            c.set("appendonly", "maybe").unwrap_err(),
            "argument must be 'yes' or 'no'"
        );
        assert_eq!(
            c.set("loglevel", "foo").unwrap_err(),
            "argument(s) must be one of the following: debug, verbose, notice, warning"
        );
        assert_eq!(
            c.set("save", "1 2 3").unwrap_err(),
            "Invalid save parameters"
        );
    }

    #[test]
    fn special_values_are_canonicalised() {
        let mut c = Config::default();
        c.set("notify-keyspace-events", "KEA").unwrap();
        assert_eq!(c.get_by_name("notify-keyspace-events"), Some("AKE"));
        assert_eq!(c.notify_keyspace_events, notify::ALL | notify::KEYSPACE | notify::KEYEVENT);
        c.set("notify-keyspace-events", "Kn").unwrap();
        assert_eq!(c.get_by_name("notify-keyspace-events"), Some("nK"));
        c.set("notify-keyspace-events", "An").unwrap();
        assert_eq!(c.get_by_name("notify-keyspace-events"), Some("A"));
        c.set("maxmemory-clients", "10%").unwrap();
        assert_eq!(c.get_by_name("maxmemory-clients"), Some("10%"));
        c.set("shutdown-on-sigint", "now save").unwrap();
        assert_eq!(c.get_by_name("shutdown-on-sigint"), Some("save now"));
        c.set("hash-max-ziplist-entries", "100").unwrap();
        assert_eq!(c.get_by_name("hash-max-listpack-entries"), Some("100"));
        c.set("client-output-buffer-limit", "pubsub 1mb 2mb 3")
            .unwrap();
        assert_eq!(
            c.get_by_name("client-output-buffer-limit"),
            Some("normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 2097152 3")
        );
    }

    #[test]
    fn config_file_lines_and_save_accumulation() {
        let mut c = Config::default();
        c.apply_text("# comment\nsave 900 1\nsave 300 10\n  hz 20 \n")
            .unwrap();
        assert_eq!(c.save, vec![(900, 1), (300, 10)]);
        assert_eq!(c.hz, 20);
        let e = c.apply_text("nosuch 1").unwrap_err();
        assert!(
            e.contains("Bad directive or wrong number of arguments"),
            "{e}"
        );
        let e = c.apply_text("hz 1 2").unwrap_err();
        assert!(e.contains("wrong number of arguments"), "{e}");
    }

    #[test]
    fn rewrite_keeps_comments_and_unknown_lines() {
        let mut c = Config::default();
        c.set("hz", "50").unwrap();
        c.set("maxmemory", "2gb").unwrap();
        let old = "# my comment\nhz 10\nmystery-line 1\nhz 11\n";
        let new = c.rewritten(old);
        assert!(
            new.starts_with("# my comment\nhz 50\nmystery-line 1\n"),
            "{new}"
        );
        assert!(new.contains("# Generated by CONFIG REWRITE\n"));
        assert!(new.contains("\nmaxmemory 2gb\n"));
        assert!(!new.contains("hz 11"));
        // Rewriting the rewritten file changes nothing.
        assert_eq!(c.rewritten(&new), new);
    }
}
