//! Server commands: CONFIG, INFO, DBSIZE, TIME, SHUTDOWN, DEBUG.

use std::fmt::Write as _;

use super::args::{self, is};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::config::{self, Config, DENY_LOADING, IMMUTABLE, PARAMS, PROTECTED, SENSITIVE};
use crate::keyspace::{Entry, Keyspace, Value};
use crate::protocol::Resp;
use crate::server::ServerState;

const CONFIG_FLAGS: u32 = ADMIN | NOSCRIPT | LOADING | STALE;

const CONFIG_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::sub("config", "get", -3, CONFIG_FLAGS, 0, 0, 0, config_get),
    CommandSpec::sub("config", "set", -4, CONFIG_FLAGS, 0, 0, 0, config_set),
    CommandSpec::sub(
        "config",
        "resetstat",
        2,
        CONFIG_FLAGS,
        0,
        0,
        0,
        config_resetstat,
    ),
    CommandSpec::sub(
        "config",
        "rewrite",
        2,
        CONFIG_FLAGS,
        0,
        0,
        0,
        config_rewrite,
    ),
    CommandSpec::sub("config", "help", 2, LOADING | STALE, 0, 0, 0, config_help),
];

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::container("config", -2, 0, CONFIG_SUBCOMMANDS),
    CommandSpec::new("info", -1, LOADING | STALE, 0, 0, 0, info),
    CommandSpec::new("dbsize", 1, READONLY | FAST, 0, 0, 0, dbsize),
    CommandSpec::new("time", 1, LOADING | STALE | FAST, 0, 0, 0, time),
    CommandSpec::new("monitor", 1, ADMIN | NOSCRIPT | LOADING | STALE, 0, 0, 0, monitor),
    CommandSpec::new(
        "shutdown",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY,
        0,
        0,
        0,
        shutdown,
    ),
    CommandSpec::new(
        "debug",
        -2,
        // `flags::PROTECTED`, not `config::PROTECTED` (a parameter flag of the same name).
        ADMIN | NOSCRIPT | LOADING | STALE | super::flags::PROTECTED,
        0,
        0,
        0,
        debug,
    ),
];

/// ```text
/// DBSIZE
/// ```
fn dbsize(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    let n = ctx.ks.dbs[ctx.db].len();
    ctx.out.integer(n as i64);
    Ok(())
}

/// ```text
/// TIME
/// ```
/// Unix time as two bulk strings: seconds and microseconds.
fn time(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    let us = crate::util::time::now_us();
    ctx.out.array(2);
    ctx.out.bulk_int((us / 1_000_000) as i64);
    ctx.out.bulk_int((us % 1_000_000) as i64);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// CONFIG
// ---------------------------------------------------------------------------------------------

/// ```text
/// CONFIG GET parameter [parameter ...]
/// ```
/// Each argument is an exact name (or alias) or a glob; the reply is a map of every match.
fn config_get(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let matches = ctx.srv.config.matching(&argv[2..]);
    ctx.out.map(matches.len());
    for (name, value) in matches {
        ctx.out.bulk_str(&name);
        ctx.out.bulk_str(&value);
    }
    Ok(())
}

fn set_failed(name: &str, reason: &str) -> CmdError {
    CmdError::err(format!(
        "CONFIG SET failed (possibly related to argument '{name}') - {reason}"
    ))
}

/// ```text
/// CONFIG SET parameter value [parameter value ...]
/// ```
/// All-or-nothing: every name is checked first (unknown, immutable, protected, duplicate), then
/// the values are applied to a copy of the configuration that replaces the live one only if
/// every value was accepted.
fn config_set(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if argv.len() % 2 != 0 {
        return Err(CmdError::Syntax);
    }
    let pairs: Vec<(String, String)> = argv[2..]
        .chunks(2)
        .map(|p| (args::text(p[0]), args::text(p[1])))
        .collect();
    let mut indexes: Vec<usize> = Vec::with_capacity(pairs.len());
    let loading = ctx.srv.persist.loading.is_some() || ctx.srv.persist.async_loading;
    for (n, (name, _)) in pairs.iter().enumerate() {
        let Some(i) = config::find_index(name) else {
            return Err(CmdError::err(format!(
                "Unknown option or number of arguments for CONFIG SET - '{name}'"
            )));
        };
        let p = &PARAMS[i];
        if p.has(IMMUTABLE) {
            return Err(set_failed(name, "can't set immutable config"));
        }
        if p.has(PROTECTED) && !protected_allowed(ctx, "enable-protected-configs") {
            return Err(set_failed(name, "can't set protected config"));
        }
        // A parameter the load in progress depends on (`appendonly`, `dir`,
        // `repl-diskless-load`) waits for the load to end.
        if loading && p.has(DENY_LOADING) {
            return Err(CmdError::Msg(super::persistence::LOADING_ERROR.into()));
        }
        // The same name twice, not a parameter and its alias: Redis keeps an alias as a
        // parameter of its own for this check, so `hash-max-ziplist-entries 5
        // hash-max-listpack-entries 6` sets both, in order.
        if pairs[..n].iter().any(|(earlier, _)| earlier.eq_ignore_ascii_case(name)) {
            return Err(set_failed(name, "duplicate parameter"));
        }
        indexes.push(i);
    }
    let mut next: Config = ctx.srv.config.clone();
    for (i, (_, value)) in indexes.iter().zip(&pairs) {
        next.set_index(*i, value)
            .map_err(|e| set_failed(PARAMS[*i].name, &e))?;
    }
    if next.maxclients > ctx.srv.config.maxclients {
        crate::server::fdlimit::check_config(next.maxclients)
            .map_err(|reason| set_failed("maxclients", &reason))?;
    }
    apply_checks(ctx.srv, &next)?;
    let loglevel_changed = next.loglevel != ctx.srv.config.loglevel;
    let aof_switched = next.appendonly != ctx.srv.config.appendonly;
    let bg_thread = (next.jemalloc_bg_thread != ctx.srv.config.jemalloc_bg_thread)
        .then_some(next.jemalloc_bg_thread);
    ctx.srv.config = next;
    if let Some(on) = bg_thread {
        crate::alloc::set_background_thread(on);
    }
    ctx.ks.lazy_expire = ctx.srv.config.lazyfree_lazy_expire;
    if indexes.iter().any(|i| PARAMS[*i].name == "requirepass") {
        // Redis's apply step: the default user's password follows `requirepass`.
        let pass = ctx.srv.config.requirepass.clone();
        ctx.srv.acl.set_default_password(&pass);
    }
    if aof_switched {
        let on = ctx.srv.config.appendonly;
        if let Err(e) = crate::aof::rewrite::set_appendonly(ctx.ks, ctx.srv, on) {
            tracing::warn!("{e}");
            ctx.srv.config.appendonly = !on;
            return Err(set_failed("appendonly", "Unable to turn on AOF. Check server logs."));
        }
    }
    if loglevel_changed {
        crate::log::set_level(&ctx.srv.config.loglevel);
    }
    for i in &indexes {
        if !PARAMS[*i].has(SENSITIVE) {
            tracing::debug!("CONFIG SET {} applied", PARAMS[*i].name);
        }
    }
    ctx.out.ok();
    Ok(())
}

/// Redis's "apply" step for the parameters with effects outside the configuration: a new
/// `port` or `bind` is bound right here, so that a failure refuses the whole CONFIG SET with
/// the old addresses still listening; on success the accept loops switch once this command
/// returns. Like Redis, a new port is bound before the old one is closed, while a new bind list
/// needs the old sockets closed first (they may hold the same addresses) and restores them if
/// the new list cannot be bound.
fn apply_checks(srv: &mut ServerState, next: &Config) -> CmdResult {
    use crate::server::listener;
    if next.port == srv.config.port && next.bind == srv.config.bind {
        return Ok(());
    }
    let (param, why) = if next.bind == srv.config.bind {
        ("port", "Unable to listen on this port. Check server logs.")
    } else {
        ("bind", "Failed to bind to specified addresses.")
    };
    if param == "bind" {
        listener::close_listeners(&srv.listener_dups);
    }
    match listener::bind_all(next) {
        Ok(listeners) => {
            if param == "port" {
                listener::close_listeners(&srv.listener_dups);
            }
            srv.replace_listeners(listeners);
            srv.tcp_port = next.port.max(0) as u16;
            Ok(())
        }
        Err(e) => {
            tracing::warn!("{e}");
            tracing::warn!(
                "Failed applying new configuration. Possibly related to new {param} setting. \
                 Restoring previous settings."
            );
            if param == "bind" {
                match listener::bind_all(&srv.config) {
                    Ok(old) => srv.replace_listeners(old),
                    Err(e) => tracing::warn!("Failed to restore the old listeners: {e}"),
                }
            }
            Err(set_failed(param, why))
        }
    }
}

/// Whether a protected action (`enable-debug-command`, `enable-protected-configs`) is allowed
/// for this client: `yes` always, `local` from a loopback address only.
/// Whether an option with `no`/`yes`/`local` values (`enable-protected-configs`) allows this
/// client: `yes` allows everyone, `local` only loopback clients.
fn protected_allowed(ctx: &Ctx<'_>, param: &str) -> bool {
    match ctx.srv.config.get_by_name(param) {
        Some("yes") => true,
        Some("local") => ctx.client.shared.info.borrow().addr.ip().is_loopback(),
        _ => false,
    }
}

/// The error a PROTECTED command (DEBUG) gets when its enabling option does not allow this
/// client, or `None` if it may run. `yes` allows everyone, `local` only loopback clients.
pub(crate) fn protected_refusal(
    state: &crate::server::ServerState,
    client: &crate::server::client::Client,
    name: &str,
) -> Option<CmdError> {
    let (cmd, param) = match name {
        "debug" => ("DEBUG", "enable-debug-command"),
        "module" => ("MODULE", "enable-module-command"),
        _ => return None,
    };
    let allowed = match state.config.get_by_name(param) {
        Some("yes") => true,
        Some("local") => client.shared.info.borrow().addr.ip().is_loopback(),
        _ => false,
    };
    (!allowed).then(|| {
        CmdError::Msg(
            format!(
                "ERR {cmd} command not allowed. If the {param} option is set to \"local\", you \
                 can run it from a local connection, otherwise you need to set this option in the \
                 configuration file, and then restart the server."
            )
            .into(),
        )
    })
}

/// ```text
/// CONFIG RESETSTAT
/// ```
fn config_resetstat(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    ctx.srv.reset_stats();
    ctx.ks.stats = Default::default();
    crate::keyspace::lazyfree::reset_stats();
    ctx.srv.peak_memory = crate::alloc::used_memory();
    ctx.out.ok();
    Ok(())
}

/// ```text
/// CONFIG REWRITE
/// ```
fn config_rewrite(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    let Some(path) = ctx.srv.config_file.clone() else {
        return Err(CmdError::raw(
            "ERR The server is running without a config file",
        ));
    };
    let users = crate::server::acl::config_lines(&ctx.srv.acl, &ctx.srv.config);
    match ctx.srv.config.rewrite_file_with_users(&path, Some(&users)) {
        Ok(()) => {
            tracing::info!("CONFIG REWRITE executed with success.");
            ctx.out.ok();
            Ok(())
        }
        Err(e) => {
            tracing::warn!("CONFIG REWRITE failed: {e}");
            Err(CmdError::err(format!("Rewriting config file: {e}")))
        }
    }
}

/// ```text
/// CONFIG HELP
/// ```
fn config_help(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    super::command::reply_help(
        ctx.out,
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// INFO
// ---------------------------------------------------------------------------------------------

/// Sections in output order; the flag says whether `INFO` / `INFO default` includes it.
const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("module_list", true),
    ("commandstats", false),
    ("errorstats", true),
    ("latencystats", false),
    ("cluster", true),
    ("keyspace", true),
];

/// ```text
/// INFO [section [section ...]]
/// ```
/// Sections: the names in [`SECTIONS`] plus `default`, `all` and `everything`; `modules` is an
/// alias of `module_list` (there are no module-provided sections). Replied as a verbatim string.
fn info(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let wanted = requested_sections(&argv[1..]);
    let text = info_text(ctx, &wanted);
    ctx.out.verbatim("txt", text.as_bytes());
    Ok(())
}

fn requested_sections(argv: &[&[u8]]) -> Vec<&'static str> {
    let defaults = || SECTIONS.iter().filter(|s| s.1).map(|s| s.0);
    if argv.is_empty() {
        return defaults().collect();
    }
    let mut out: Vec<&'static str> = Vec::new();
    for a in argv {
        let a = args::text(a).to_ascii_lowercase();
        match a.as_str() {
            "default" => out.extend(defaults()),
            "all" | "everything" => out.extend(SECTIONS.iter().map(|s| s.0)),
            "modules" => out.push("module_list"),
            s => out.extend(SECTIONS.iter().map(|s| s.0).filter(|n| *n == s)),
        }
    }
    out
}

/// The INFO text for the wanted sections, in Redis's section order.
pub fn info_text(ctx: &mut Ctx<'_>, wanted: &[&str]) -> String {
    let mut s = String::new();
    for (name, _) in SECTIONS {
        if !wanted.contains(name) {
            continue;
        }
        if !s.is_empty() {
            s.push_str("\r\n");
        }
        match *name {
            "server" => info_server(ctx.srv, &mut s),
            "clients" => info_clients(ctx.srv, &mut s),
            "memory" => info_memory(ctx.ks, ctx.srv, &mut s),
            "persistence" => info_persistence(ctx.srv, &mut s),
            "stats" => info_stats(ctx, &mut s),
            "replication" => info_replication(ctx.srv, &mut s),
            "cpu" => info_cpu(&mut s),
            "module_list" => s.push_str("# Modules\r\n"),
            "commandstats" => info_commandstats(ctx.srv, &mut s),
            "errorstats" => info_errorstats(ctx.srv, &mut s),
            "latencystats" => info_latencystats(ctx.srv, &mut s),
            "cluster" => s.push_str("# Cluster\r\ncluster_enabled:0\r\n"),
            "keyspace" => info_keyspace(ctx, &mut s),
            _ => {}
        }
    }
    s
}

/// Appends `name:value\r\n` lines.
macro_rules! fields {
    ($s:expr, $( $name:literal => $val:expr ),* $(,)?) => {
        $( let _ = write!($s, concat!($name, ":{}\r\n"), $val); )*
    };
}

/// Redis's `bytesToHuman`: `512B`, `1.04K`, `3.20M`, `1.00G`...
pub fn bytes_human(n: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (1 << 50, "P"),
        (1 << 40, "T"),
        (1 << 30, "G"),
        (1 << 20, "M"),
        (1 << 10, "K"),
    ];
    for (size, unit) in UNITS {
        if n >= size {
            return format!("{:.2}{unit}", n as f64 / size as f64);
        }
    }
    format!("{n}B")
}

fn os_name() -> String {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .ok()
    };
    let release = read("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{} {} {}",
        std::env::consts::OS.replace("linux", "Linux"),
        release,
        std::env::consts::ARCH
    )
}

fn info_server(srv: &ServerState, s: &mut String) {
    let uptime = srv.started.elapsed().as_secs();
    let hz = srv.config.hz.clamp(1, 500);
    s.push_str("# Server\r\n");
    fields!(s,
        "redis_version" => crate::server::listener::REDIS_VERSION,
        "ferrodis_version" => env!("CARGO_PKG_VERSION"),
        "redis_git_sha1" => "00000000",
        "redis_git_dirty" => 0,
        "redis_build_id" => "0",
        "redis_mode" => "standalone",
        "os" => os_name(),
        "arch_bits" => 64,
        "monotonic_clock" => "POSIX clock_gettime",
        "multiplexing_api" => "epoll",
        "atomicvar_api" => "c11-builtin",
        "gcc_version" => "0.0.0",
        "process_id" => std::process::id(),
        "process_supervised" => "no",
        "run_id" => &srv.run_id,
        "tcp_port" => srv.tcp_port,
        "server_time_usec" => crate::util::time::now_us(),
        "uptime_in_seconds" => uptime,
        "uptime_in_days" => uptime / 86400,
        "hz" => hz,
        "configured_hz" => srv.config.hz,
        "lru_clock" => crate::keyspace::expire::lru_clock(),
        "executable" => &srv.executable,
        "config_file" => srv.config_file.as_deref().unwrap_or(""),
        "io_threads_active" => 0,
    );
    if let Some(ms) = crate::server::shutdown::remaining_ms(srv) {
        fields!(s, "shutdown_in_milliseconds" => ms);
    }
}

fn info_clients(srv: &ServerState, s: &mut String) {
    let (mut max_in, mut max_out) = (0usize, 0usize);
    for c in srv.clients.values() {
        let i = c.info.borrow();
        max_in = max_in.max(i.qbuf);
        max_out = max_out.max(i.obl);
    }
    // Like Redis, replicas are not counted as clients.
    let replicas = srv.repl.feed.as_ref().map_or(0, |f| f.replicas.borrow().len());
    s.push_str("# Clients\r\n");
    fields!(s,
        "connected_clients" => srv.clients.len().saturating_sub(replicas),
        "cluster_connections" => 0,
        "maxclients" => srv.config.maxclients,
        "client_recent_max_input_buffer" => max_in,
        "client_recent_max_output_buffer" => max_out,
        "blocked_clients" => srv.blocking.blocked_count() + crate::server::client::pause::held(),
        "tracking_clients" => srv.tracking.clients,
        "clients_in_timeout_table" => 0,
    );
}

fn total_system_memory() -> u64 {
    let Ok(m) = std::fs::read_to_string("/proc/meminfo") else {
        return 0;
    };
    m.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// INFO's replication memory: the backlog, and the stream still queued for the replicas
/// (`mem_replication_backlog`, `mem_clients_slaves`; their sum is
/// `mem_total_replication_buffers`). Redis shares one buffer between them; here each
/// replica's queue is its own.
pub(crate) fn replication_buffers(srv: &ServerState) -> (usize, usize) {
    let Some(feed) = &srv.repl.feed else { return (0, 0) };
    let backlog = feed.backlog.borrow().histlen();
    let queued: usize = feed
        .replicas
        .borrow()
        .iter()
        .map(|r| r.shared.pushed.borrow().len() + r.shared.inflight.get())
        .sum();
    (backlog, queued)
}

fn info_memory(ks: &Keyspace, srv: &mut ServerState, s: &mut String) {
    let mh = super::memory::Overhead::measure(ks, srv);
    let (used, peak, rss) = (mh.total as u64, mh.peak as u64, mh.rss as u64);
    let sysmem = total_system_memory();
    let (repl_backlog, repl_queued) = (mh.repl_backlog, mh.clients_slaves);
    let ratio = if used > 0 {
        rss as f64 / used as f64
    } else {
        0.0
    };
    let dataset = mh.dataset() as u64;
    let [(frag, frag_bytes), (arss, arss_bytes), (rss_over, rss_over_bytes)] = mh.gaps();
    let maxmem = srv.config.maxmemory.max(0) as u64;
    s.push_str("# Memory\r\n");
    fields!(s,
        "used_memory" => used,
        "used_memory_human" => bytes_human(used),
        "used_memory_rss" => rss,
        "used_memory_rss_human" => bytes_human(rss),
        "used_memory_peak" => peak,
        "used_memory_peak_human" => bytes_human(peak),
        "used_memory_peak_perc" => format!("{:.2}%", used as f64 * 100.0 / peak.max(1) as f64),
        "used_memory_overhead" => mh.overhead_total,
        "used_memory_startup" => mh.startup,
        "used_memory_dataset" => dataset,
        "used_memory_dataset_perc" => format!("{:.2}%", dataset as f64 * 100.0 / mh.net() as f64),
        "allocator_allocated" => mh.alloc.allocated,
        "allocator_active" => mh.alloc.active,
        "allocator_resident" => mh.alloc.resident,
        "total_system_memory" => sysmem,
        "total_system_memory_human" => bytes_human(sysmem),
    );
    info_memory_scripts(srv, s);
    fields!(s,
        "maxmemory" => maxmem,
        "maxmemory_human" => bytes_human(maxmem),
        "maxmemory_policy" => &srv.config.maxmemory_policy,
        "allocator_frag_ratio" => format!("{frag:.2}"),
        "allocator_frag_bytes" => frag_bytes,
        "allocator_rss_ratio" => format!("{arss:.2}"),
        "allocator_rss_bytes" => arss_bytes,
        "rss_overhead_ratio" => format!("{rss_over:.2}"),
        "rss_overhead_bytes" => rss_over_bytes,
        "mem_fragmentation_ratio" => format!("{ratio:.2}"),
        "mem_fragmentation_bytes" => rss as i64 - used as i64,
        "mem_not_counted_for_evict" => 0,
        "mem_replication_backlog" => repl_backlog,
        "mem_total_replication_buffers" => repl_backlog + repl_queued,
        "mem_clients_slaves" => repl_queued,
        "mem_clients_normal" => mh.clients_normal,
        "mem_cluster_links" => 0,
        "mem_aof_buffer" => 0,
        "mem_allocator" => allocator_name(),
        "active_defrag_running" => 0,
        "lazyfree_pending_objects" => crate::keyspace::lazyfree::pending(),
        "lazyfreed_objects" => crate::keyspace::lazyfree::freed(),
    );
}

/// INFO `mem_allocator`: `jemalloc-5.3.0`, like a Redis built with its bundled jemalloc.
pub(crate) fn allocator_name() -> String {
    crate::alloc::jemalloc_version().map_or_else(|| "jemalloc".into(), |v| format!("jemalloc-{v}"))
}

/// The scripting part of INFO memory: both Lua interpreters, the EVAL cache, the libraries.
fn info_memory_scripts(srv: &ServerState, s: &mut String) {
    let sc = &srv.scripting;
    let (vm_eval, vm_func) = (sc.eval_memory() as u64, sc.functions_vm_memory() as u64);
    let (cache, funcs) = (sc.cache_memory() as u64, sc.functions_memory() as u64);
    fields!(s,
        "used_memory_lua" => vm_eval,
        "used_memory_vm_eval" => vm_eval,
        "used_memory_lua_human" => bytes_human(vm_eval),
        "used_memory_scripts_eval" => cache,
        "number_of_cached_scripts" => sc.scripts.len(),
        "number_of_functions" => sc.libs.functions.len(),
        "number_of_libraries" => sc.libs.libs.len(),
        "used_memory_vm_functions" => vm_func,
        "used_memory_vm_total" => vm_eval + vm_func,
        "used_memory_vm_total_human" => bytes_human(vm_eval + vm_func),
        "used_memory_functions" => funcs,
        "used_memory_scripts" => cache + funcs,
        "used_memory_scripts_human" => bytes_human(cache + funcs),
    );
}

/// Persistence (Redis's field names). There is no fork, so the copy-on-write fields stay 0;
/// `current_save_keys_total` is the key count at the snapshot point.
fn info_persistence(srv: &ServerState, s: &mut String) {
    let p = &srv.persist;
    let bg = p.bgsave.as_ref().filter(|b| b.is_bgsave());
    let aof = crate::aof::info(srv);
    s.push_str("# Persistence\r\n");
    fields!(s,
        "loading" => u8::from(p.loading.is_some()),
        "async_loading" => u8::from(p.async_loading),
        "current_cow_peak" => 0,
        "current_cow_size" => 0,
        "current_cow_size_age" => 0,
        "current_fork_perc" => "0.00",
        "current_save_keys_processed" => 0,
        "current_save_keys_total" => bg.map_or(0, |b| b.keys_total),
        "rdb_changes_since_last_save" => srv.dirty,
        "rdb_bgsave_in_progress" => u8::from(bg.is_some()),
        "rdb_last_save_time" => srv.lastsave,
        "rdb_last_bgsave_status" => if p.last_bgsave_ok { "ok" } else { "err" },
        "rdb_last_bgsave_time_sec" => p.last_bgsave_secs,
        "rdb_current_bgsave_time_sec" => bg.map_or(-1, |b| b.elapsed_secs() as i64),
        "rdb_saves" => p.saves,
        "rdb_last_cow_size" => 0,
        "rdb_last_load_keys_expired" => p.last_load_keys_expired,
        "rdb_last_load_keys_loaded" => p.last_load_keys_loaded,
        "aof_enabled" => u8::from(aof.enabled),
        "aof_rewrite_in_progress" => u8::from(aof.rewrite_in_progress),
        "aof_rewrite_scheduled" => u8::from(aof.rewrite_scheduled),
        "aof_last_rewrite_time_sec" => aof.last_rewrite_secs,
        "aof_current_rewrite_time_sec" => aof.current_rewrite_secs,
        "aof_last_bgrewrite_status" => if aof.last_rewrite_ok { "ok" } else { "err" },
        "aof_rewrites" => aof.rewrites,
        "aof_rewrites_consecutive_failures" => aof.rewrite_failures,
        "aof_last_write_status" => if aof.last_write_ok { "ok" } else { "err" },
        "aof_last_cow_size" => 0,
        "module_fork_in_progress" => 0,
        "module_fork_last_cow_size" => 0,
    );
    if aof.enabled {
        fields!(s,
            "aof_current_size" => aof.current_size,
            "aof_base_size" => aof.base_size,
            "aof_pending_rewrite" => 0,
            "aof_buffer_length" => aof.buffer_length,
            "aof_pending_bio_fsync" => u8::from(aof.pending_bio_fsync),
            "aof_delayed_fsync" => aof.delayed_fsync,
        );
    }
    if let Some(l) = &p.loading {
        let loaded = l.loaded_bytes.load(std::sync::atomic::Ordering::Relaxed);
        let perc = if l.total_bytes == 0 { 0.0 } else { loaded as f64 * 100.0 / l.total_bytes as f64 };
        let elapsed = l.started.elapsed().as_secs();
        let remaining = l.total_bytes.saturating_sub(loaded).max(1);
        let eta = if elapsed == 0 { 1 } else { elapsed * remaining / (loaded + 1) };
        fields!(s,
            "loading_start_time" => l.start_secs,
            "loading_total_bytes" => l.total_bytes,
            "loading_rdb_used_mem" => l.used_memory.load(std::sync::atomic::Ordering::Relaxed),
            "loading_loaded_bytes" => loaded,
            "loading_loaded_perc" => format!("{perc:.2}"),
            "loading_eta_seconds" => eta,
        );
    }
}

fn info_stats(ctx: &mut Ctx<'_>, s: &mut String) {
    let st = &ctx.srv.stats;
    let ks = &ctx.ks.stats;
    let (channels, patterns, shard_channels) = ctx.srv.pubsub.totals();
    let samples = st.ops_samples.iter().filter(|v| **v > 0).count().max(1) as u64;
    let ops = st.ops_samples.iter().sum::<u64>() / samples;
    s.push_str("# Stats\r\n");
    fields!(s,
        "total_connections_received" => st.total_connections_received,
        "total_commands_processed" => st.total_commands_processed,
        "instantaneous_ops_per_sec" => ops,
        "total_net_input_bytes" => st.net_input_bytes,
        "total_net_output_bytes" => st.net_output_bytes,
        "total_net_repl_input_bytes" => 0,
        "total_net_repl_output_bytes" => 0,
        "rejected_connections" => st.rejected_connections,
        "sync_full" => ctx.srv.repl.sync_full,
        "sync_partial_ok" => ctx.srv.repl.sync_partial_ok,
        "sync_partial_err" => ctx.srv.repl.sync_partial_err,
        "sync_partial_aof" => ctx.srv.repl.sync_partial_aof,
        "expired_keys" => ks.expired_keys,
        "expired_stale_perc" => format!("{:.2}", ks.expired_stale_perc),
        "expired_time_cap_reached_count" => ks.expired_time_cap_reached_count,
        "expire_cycle_cpu_milliseconds" => ks.expire_cycle_cpu_milliseconds,
        "evicted_keys" => st.evicted_keys,
        "evicted_clients" => st.evicted_clients,
        "keyspace_hits" => ks.keyspace_hits,
        "keyspace_misses" => ks.keyspace_misses,
        "pubsub_channels" => channels,
        "pubsub_patterns" => patterns,
        "pubsubshard_channels" => shard_channels,
        "latest_fork_usec" => 0,
        "total_forks" => 0,
        "migrate_cached_sockets" => crate::commands::migrate::cached_sockets(),
        "tracking_total_keys" => ctx.srv.tracking.total_keys(),
        "tracking_total_items" => ctx.srv.tracking.total_items(),
        "tracking_total_prefixes" => ctx.srv.tracking.total_prefixes(),
        "unexpected_error_replies" => st.unexpected_error_replies,
        "total_error_replies" => st.total_error_replies,
        "client_query_buffer_limit_disconnections" => st.client_query_buffer_limit_disconnections,
    );
}

fn info_replication(srv: &ServerState, s: &mut String) {
    crate::replication::info_section(srv, s);
}

fn info_cpu(s: &mut String) {
    let u = crate::alloc::rusage();
    s.push_str("# CPU\r\n");
    fields!(s,
        "used_cpu_sys" => format!("{:.6}", u.sys),
        "used_cpu_user" => format!("{:.6}", u.user),
        "used_cpu_sys_children" => format!("{:.6}", u.sys_children),
        "used_cpu_user_children" => format!("{:.6}", u.user_children),
        "used_cpu_sys_main_thread" => format!("{:.6}", u.sys),
        "used_cpu_user_main_thread" => format!("{:.6}", u.user),
    );
}

fn info_commandstats(srv: &ServerState, s: &mut String) {
    s.push_str("# Commandstats\r\n");
    for c in srv.all_cmd_stats() {
        if c.calls == 0 && c.rejected_calls == 0 && c.failed_calls == 0 {
            continue;
        }
        let per_call = if c.calls > 0 {
            c.usec as f64 / c.calls as f64
        } else {
            0.0
        };
        let _ = write!(
            s,
            "cmdstat_{}:calls={},usec={},usec_per_call={:.2},rejected_calls={},failed_calls={}\r\n",
            c.name, c.calls, c.usec, per_call, c.rejected_calls, c.failed_calls
        );
    }
}

/// `latency_percentiles_usec_<command>:p50=...,p99=...` for each command timed since the
/// last reset, at the `latency-tracking-info-percentiles`.
fn info_latencystats(srv: &ServerState, s: &mut String) {
    s.push_str("# Latencystats\r\n");
    if !srv.config.latency_tracking {
        return;
    }
    for c in srv.all_cmd_stats() {
        let Some(h) = c.latency.as_deref() else {
            continue;
        };
        let _ = write!(s, "latency_percentiles_usec_{}:", c.name);
        for (i, &p) in srv.config.latency_percentiles.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let label = format!("{p:.6}");
            let label = label.trim_end_matches('0').trim_end_matches('.');
            let _ = write!(s, "p{label}={:.3}", h.value_at_percentile(p) as f64 / 1000.0);
        }
        s.push_str("\r\n");
    }
}

fn info_errorstats(srv: &ServerState, s: &mut String) {
    s.push_str("# Errorstats\r\n");
    for (code, count) in &srv.error_stats {
        let _ = write!(s, "errorstat_{code}:count={count}\r\n");
    }
}

fn info_keyspace(ctx: &mut Ctx<'_>, s: &mut String) {
    s.push_str("# Keyspace\r\n");
    for (i, db) in ctx.ks.dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        let _ = write!(
            s,
            "db{i}:keys={},expires={},avg_ttl={}\r\n",
            db.len(),
            db.expires.len(),
            db.avg_ttl
        );
    }
}

// ---------------------------------------------------------------------------------------------
// SHUTDOWN
// ---------------------------------------------------------------------------------------------

/// ```text
/// SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]
/// ```
/// Saves a snapshot first when asked to, or when save points are configured and NOSAVE was
/// not given; a failed save keeps the server running unless FORCE. Unless NOW, the client
/// blocks while lagging replicas catch up (up to `shutdown-timeout`, writes paused); see
/// [`crate::server::shutdown`]. Nothing is replied on success: the server exits.
fn shutdown(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    use crate::server::shutdown::{self as sd, Flags, Outcome};
    let id = ctx.client.id;
    if ctx.srv.blocking.is_blocked(id) {
        // Woken while blocked: the shutdown failed or was aborted (success exits instead).
        if sd::take_failed(ctx.srv, id) {
            return Err(CmdError::err(SHUTDOWN_FAILED));
        }
        ctx.srv.blocking.block(id, ctx.db, &[], None);
        return Ok(());
    }
    let (mut flags, mut abort) = (Flags::default(), false);
    for a in &argv[1..] {
        if is(a, "nosave") {
            flags.nosave = true;
        } else if is(a, "save") {
            flags.save = true;
        } else if is(a, "now") {
            flags.now = true;
        } else if is(a, "force") {
            flags.force = true;
        } else if is(a, "abort") {
            abort = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if (abort && flags != Flags::default()) || (flags.save && flags.nosave) {
        return Err(CmdError::Syntax);
    }
    if abort {
        if !sd::abort(ctx.srv) {
            return Err(CmdError::err("No shutdown in progress."));
        }
        ctx.out.ok();
        return Ok(());
    }
    if !flags.now && !ctx.may_block() {
        return Err(CmdError::err(
            "SHUTDOWN without NOW or ABORT isn't allowed for DENY BLOCKING client",
        ));
    }
    match sd::prepare(ctx.ks, ctx.srv, flags) {
        Outcome::Exit => {
            ctx.client.close_after_reply = true;
            Ok(())
        }
        Outcome::Waiting => {
            sd::block(ctx.srv, id);
            ctx.srv.blocking.block(id, ctx.db, &[], None);
            Ok(())
        }
        Outcome::Failed => Err(CmdError::err(SHUTDOWN_FAILED)),
    }
}

/// What a SHUTDOWN that could not complete answers.
const SHUTDOWN_FAILED: &str = "Errors trying to SHUTDOWN. Check logs.";

/// Saves a snapshot and loads it back (Redis's test of the whole persistence path).
///
/// ```text
/// DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]
/// ```
/// NOSAVE loads the existing file; NOFLUSH keeps the current data, so loading a key or library
/// that exists fails unless MERGE lets the file's version replace it.
fn debug_reload(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    use crate::snapshot::engine;
    let (mut merge, mut flush, mut save) = (false, true, true);
    for opt in &argv[2..] {
        if is(opt, "merge") {
            merge = true;
        } else if is(opt, "noflush") {
            flush = false;
        } else if is(opt, "nosave") {
            save = false;
        } else {
            return Err(CmdError::err(
                "DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.",
            ));
        }
    }
    if save && engine::save(ctx.ks, ctx.srv).is_err() {
        return Err(CmdError::Msg("ERR".into()));
    }
    if flush {
        // Like FLUSHALL, for client-side caching (Redis's emptyData).
        ctx.srv.tracking_on_flush();
        for db in &mut ctx.ks.dbs {
            db.clear();
        }
        ctx.srv.scripting.libs = Default::default();
    }
    let path = engine::snapshot_path(ctx.srv);
    let limits = engine::encoding_limits(ctx.srv);
    let opts = engine::LoadOptions { skip_expired: true, merge, ..Default::default() };
    let loaded = engine::load_file(&path, ctx.ks, limits, opts).and_then(|(stats, aux)| {
        engine::restore_functions(ctx.srv, &aux, merge)?;
        Ok(stats)
    });
    match loaded {
        Ok(stats) => {
            ctx.srv.persist.last_load_keys_loaded = stats.keys_loaded;
            ctx.srv.persist.last_load_keys_expired = stats.keys_expired;
            tracing::warn!("DB reloaded by DEBUG RELOAD");
            ctx.out.ok();
            Ok(())
        }
        Err(e) => {
            tracing::warn!("Error loading the snapshot: {e}");
            Err(CmdError::err("Error trying to load the RDB dump"))
        }
    }
}

/// Streams every command other clients execute to this connection, as status lines.
///
/// ```text
/// MONITOR
/// ```
fn monitor(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    let me = ctx.client.shared.clone();
    if !ctx.srv.monitors.iter().any(|m| std::rc::Rc::ptr_eq(m, &me)) {
        let mut info = me.info.borrow_mut();
        info.flags = format!("{}O", info.flags.trim_end_matches('N'));
        drop(info);
        ctx.srv.monitors.push(me);
    }
    ctx.out.ok();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// DEBUG
// ---------------------------------------------------------------------------------------------

/// ```text
/// DEBUG subcommand [arg ...]
/// ```
/// The dispatcher refuses it (as a rejected call, like Redis) unless `enable-debug-command`
/// allows this client; see [`protected_refusal`].
fn debug(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let sub = args::text(argv[1]).to_ascii_lowercase();
    let n = argv.len();
    match (sub.as_str(), n) {
        ("help", 2) => debug_help(ctx),
        ("sleep", 3) => debug_sleep(ctx, argv[2]),
        ("aof-flush-sleep", 3) => {
            ctx.srv.aof.flush_sleep_us = atoi(argv[2]).max(0) as u64;
            ctx.out.ok();
            Ok(())
        }
        ("aof-fail-writes", 3) if crate::aof::debug_fail_writes(ctx.srv, atoi(argv[2]) != 0) => {
            ctx.out.ok();
            Ok(())
        }
        ("set-active-expire", 3) => {
            ctx.srv.active_expire = atoi(argv[2]) != 0;
            ctx.out.ok();
            Ok(())
        }
        ("pause-cron", 3) => {
            ctx.srv.cron_paused = atoi(argv[2]) != 0;
            ctx.out.ok();
            Ok(())
        }
        ("set-disable-deny-scripts", 3) => {
            ctx.srv.scripting.disable_deny_scripts = atoi(argv[2]) != 0;
            ctx.out.ok();
            Ok(())
        }
        ("object", 3) => debug_object(ctx, argv[2]),
        ("populate", 3..=5) => debug_populate(ctx, argv),
        ("reload", _) => debug_reload(ctx, argv),
        ("loadaof", 2) => match crate::aof::rewrite::debug_loadaof(ctx.ks, ctx.srv) {
            Ok(()) => {
                ctx.out.ok();
                Ok(())
            }
            // Redis exits: a log that does not load must not be served as if it had.
            Err(e) => {
                tracing::warn!("{e}");
                std::process::exit(1);
            }
        },
        ("digest", 2) => {
            let d = dataset_digest(ctx);
            ctx.out.simple(&hex(&d));
            Ok(())
        }
        ("digest-value", _) => debug_digest_value(ctx, &argv[2..]),
        ("log", 3) => {
            tracing::warn!("DEBUG LOG: {}", args::text(argv[2]));
            ctx.out.ok();
            Ok(())
        }
        ("protocol", 3) => debug_protocol(ctx, argv[2]),
        ("quicklist-packed-threshold", 3) => debug_packed_threshold(ctx, argv[2]),
        ("stringmatch-len", 2) => {
            stringmatch_fuzz();
            ctx.out
                .simple("Apparently Redis did not crash: test passed");
            Ok(())
        }
        ("change-repl-id", 2) => {
            tracing::warn!("Changing replication IDs after receiving DEBUG change-repl-id");
            ctx.srv.repl.replid = random_hex40(ctx.srv);
            ctx.out.ok();
            Ok(())
        }
        _ => Err(CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            args::text(argv[1])
        ))),
    }
}

/// C `atoi`: leading integer digits, 0 if none.
fn atoi(a: &[u8]) -> i64 {
    let s = args::text(a);
    let t = s.trim_start();
    let (sign, digits) = match t.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, t.strip_prefix('+').unwrap_or(t)),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse::<i64>().map_or(0, |v| sign * v)
}

fn debug_help(ctx: &mut Ctx<'_>) -> CmdResult {
    super::command::reply_help(
        ctx.out,
        "DEBUG",
        &[
            "AOF-FLUSH-SLEEP <microsec>",
            "    Server will sleep before flushing the AOF, this is used for testing.",
            "CHANGE-REPL-ID",
            "    Change the replication IDs of the instance.",
            "    Dangerous: should be used only for testing the replication subsystem.",
            "DIGEST",
            "    Output a hex signature representing the current DB content.",
            "DIGEST-VALUE <key> [<key> ...]",
            "    Output a hex signature of the values of all the specified keys.",
            "LOG <message>",
            "    Write <message> to the server log.",
            "OBJECT <key>",
            "    Show low level info about `key` and associated value.",
            "POPULATE <count> [<prefix>] [<size>]",
            "    Create <count> string keys named key:<num>. If <prefix> is specified then",
            "    it is used instead of the 'key' prefix. These are not propagated to",
            "    replicas.",
            "PROTOCOL <type>",
            "    Reply with a test value of the specified type. <type> can be: string,",
            "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
            "    true, false.",
            "PAUSE-CRON <0|1>",
            "    Stop periodic cron job processing.",
            "QUICKLIST-PACKED-THRESHOLD <size>",
            "    Sets the threshold for elements to be inserted as plain vs packed nodes",
            "    Default value is 1GB, allows values up to 4GB. Setting to 0 restores to default.",
            "SET-ACTIVE-EXPIRE <0|1>",
            "    Setting it to 0 disables expiring keys in background when they are not",
            "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
            "    default.",
            "SLEEP <seconds>",
            "    Stop the server for <seconds>. Decimals allowed.",
            "STRINGMATCH-LEN",
            "    Run a fuzz tester against the stringmatchlen() function.",
        ],
    );
    Ok(())
}

/// Sets the size from which list elements are stored as plain chunks of their own (see
/// [`crate::keyspace::list::set_packed_threshold`]); tests lower it to exercise plain chunks
/// with small values. An empty size or `0` restores the 1 GB default, as Redis's `memtoull`
/// reads an empty string as 0.
///
/// ```text
/// DEBUG QUICKLIST-PACKED-THRESHOLD <size>
/// ```
fn debug_packed_threshold(ctx: &mut Ctx<'_>, arg: &[u8]) -> CmdResult {
    let size = match std::str::from_utf8(arg) {
        Ok("") => Some(0),
        Ok(s) => crate::config::parse_memory(s),
        Err(_) => None,
    };
    let ok = size
        .and_then(|n| u64::try_from(n).ok())
        .is_some_and(crate::keyspace::list::set_packed_threshold);
    if !ok {
        return Err(CmdError::err(
            "argument must be a memory value bigger than 1 and smaller than 4gb",
        ));
    }
    ctx.out.ok();
    Ok(())
}

/// DEBUG SLEEP blocks the whole server on purpose (tests use it to simulate a busy server).
fn debug_sleep(ctx: &mut Ctx<'_>, arg: &[u8]) -> CmdResult {
    let secs = crate::util::num::parse_f64(arg).unwrap_or(0.0);
    if secs.is_finite() && secs > 0.0 {
        std::thread::sleep(std::time::Duration::from_secs_f64(secs.min(1e6)));
    }
    ctx.out.ok();
    Ok(())
}

/// Length of a string as Redis's RDB would serialise it (uncompressed): integers in 1, 2 or 4
/// bytes plus a type byte, otherwise a length prefix plus the bytes.
fn rdb_string_len(v: &crate::keyspace::RString) -> usize {
    if let Some(n) = v.as_i64() {
        if v.encoding() == "int" || v.len() <= 11 {
            if (-(1 << 7)..(1 << 7)).contains(&n) {
                return 2;
            } else if (-(1 << 15)..(1 << 15)).contains(&n) {
                return 3;
            } else if (-(1 << 31)..(1 << 31)).contains(&n) {
                return 5;
            }
        }
    }
    let len = v.len();
    let prefix = if len < 1 << 6 {
        1
    } else if len < 1 << 14 {
        2
    } else if len <= u32::MAX as usize {
        5
    } else {
        9
    };
    prefix + len
}

/// ```text
/// DEBUG OBJECT key
/// ```
fn debug_object(ctx: &mut Ctx<'_>, key: &[u8]) -> CmdResult {
    // Like Redis's, this looks at the table directly: a logically expired key not yet deleted
    // is still shown, and looking does not delete it.
    let Some(e) = ctx.ks.dbs[ctx.db].peek(key) else {
        return Err(CmdError::NoSuchKey);
    };
    let addr = e as *const Entry as usize;
    let lru = ctx.ks.dbs[ctx.db].lru_of(key).unwrap_or(0);
    let serialized = match &e.value {
        Value::Str(v) => rdb_string_len(v),
        Value::List(v) => v.serialized_len(),
        Value::Hash(v) => v.serialized_len(),
        Value::Set(v) => v.serialized_len(),
        Value::ZSet(v) => v.serialized_len(),
        Value::Stream(v) => v.serialized_len(),
    };
    let line = format!(
        "Value at:{addr:#x} refcount:1 encoding:{} serializedlength:{} lru:{} \
         lru_seconds_idle:{}",
        e.value.encoding(),
        serialized,
        lru,
        crate::keyspace::expire::idle_ms(lru) / 1000
    );
    ctx.out.simple(&line);
    Ok(())
}

/// ```text
/// DEBUG POPULATE count [prefix] [size]
/// ```
/// Creates `prefix:N` = `value:N` (padded with zero bytes or cut to `size`) for N in
/// `0..count`, skipping keys that exist. Not propagated, like in Redis.
fn debug_populate(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let positive = |a: &[u8]| -> Result<u64, CmdError> {
        let n = args::int(a)?;
        u64::try_from(n).map_err(|_| CmdError::raw("ERR value is out of range, must be positive"))
    };
    let count = positive(argv[2])?;
    let size = if argv.len() == 5 {
        positive(argv[4])? as usize
    } else {
        0
    };
    if size as i64 > ctx.srv.config.proto_max_bulk_len {
        return Err(CmdError::StringTooLong);
    }
    let prefix = if argv.len() >= 4 {
        argv[3]
    } else {
        b"key".as_slice()
    };
    let db = ctx.db;
    for j in 0..count {
        let mut key = prefix.to_vec();
        key.push(b':');
        key.extend_from_slice(itoa::Buffer::new().format(j).as_bytes());
        if ctx.ks.exists(db, &key, ctx.now) {
            continue;
        }
        let mut val = format!("value:{j}").into_bytes();
        if size > 0 {
            val.resize(size, 0);
        }
        ctx.ks.dbs[db].set(&key, Value::from_bytes(&val));
        ctx.signal_modified_key(db, &key);
        ctx.notify('n', "new", db, &key);
    }
    ctx.propagate_nothing();
    ctx.out.ok();
    Ok(())
}

fn hex(d: &[u8; 20]) -> String {
    d.iter().fold(String::with_capacity(40), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn random_hex40(srv: &mut ServerState) -> String {
    (0..40)
        .map(|_| {
            let v: u32 = rand::Rng::gen_range(&mut srv.rng, 0..16);
            char::from_digit(v, 16).unwrap_or('0')
        })
        .collect()
}

/// SHA1 of a value: its type name, then its content.
fn value_digest(v: &Value) -> [u8; 20] {
    let mut h = sha1_smol::Sha1::new();
    h.update(v.type_name().as_bytes());
    v.digest_into(&mut h);
    h.digest().bytes()
}

/// DEBUG DIGEST: for every live key, SHA1(db, key, value digest, expiry), XORed together so the
/// result does not depend on iteration order. All zeros when the dataset is empty.
fn dataset_digest(ctx: &mut Ctx<'_>) -> [u8; 20] {
    let mut acc = [0u8; 20];
    for (dbi, db) in ctx.ks.dbs.iter().enumerate() {
        for (k, e) in db.main.iter() {
            let expire_at = db.expire_of(k).unwrap_or(crate::keyspace::NO_EXPIRE);
            if expire_at != crate::keyspace::NO_EXPIRE && expire_at <= ctx.now {
                continue;
            }
            let mut h = sha1_smol::Sha1::new();
            h.update(&(dbi as u64).to_le_bytes());
            h.update(&(k.len() as u64).to_le_bytes());
            h.update(k);
            h.update(&value_digest(&e.value));
            h.update(&expire_at.to_le_bytes());
            for (a, b) in acc.iter_mut().zip(h.digest().bytes()) {
                *a ^= b;
            }
        }
    }
    acc
}

/// ```text
/// DEBUG DIGEST-VALUE [key ...]
/// ```
/// One status reply per key: the digest of its value, zeros for a missing key.
fn debug_digest_value(ctx: &mut Ctx<'_>, keys: &[&[u8]]) -> CmdResult {
    ctx.out.array(keys.len());
    for k in keys {
        let d = match ctx.ks.dbs[ctx.db].peek_live(k, ctx.now) {
            Some(e) => value_digest(&e.value),
            _ => [0u8; 20],
        };
        ctx.out.simple(&hex(&d));
    }
    Ok(())
}

/// ```text
/// DEBUG PROTOCOL string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false
/// ```
/// One sample reply of each RESP type, for client tests.
fn debug_protocol(ctx: &mut Ctx<'_>, kind: &[u8]) -> CmdResult {
    let out = &mut *ctx.out;
    let v3 = out.resp == Resp::V3;
    match args::text(kind).to_ascii_lowercase().as_str() {
        "string" => out.bulk(b"Hello World"),
        "integer" => out.integer(12345),
        "double" => out.double(3.141),
        "bignum" => {
            let n = b"1234567999999999999999999999999999999";
            if v3 {
                out.raw(b"(");
                out.raw(n);
                out.raw(b"\r\n");
            } else {
                out.bulk(n);
            }
        }
        "null" => out.null(),
        "array" | "set" => {
            if is(kind, "set") {
                out.set(3);
            } else {
                out.array(3);
            }
            for j in 0..3 {
                out.integer(j);
            }
        }
        "map" => {
            out.map(3);
            for j in 0..3 {
                out.integer(j);
                out.boolean(j == 1);
            }
        }
        "attrib" => {
            if v3 {
                out.raw(b"|1\r\n");
                out.bulk(b"key-popularity");
                out.array(2);
                out.bulk(b"key:123");
                out.integer(90);
            }
            out.bulk(b"Some real reply following the attribute");
        }
        "push" => {
            if !v3 {
                return Err(CmdError::err("RESP2 is not supported by this command"));
            }
            out.push(2);
            out.bulk(b"server-cpu-usage");
            out.integer(42);
            out.bulk(b"Some real reply following the push reply");
        }
        "true" => out.boolean(true),
        "false" => out.boolean(false),
        "verbatim" => out.verbatim("txt", b"This is a verbatim\nstring"),
        _ => {
            return Err(CmdError::err(
                "Wrong protocol type name. Please use one of the following: \
                 string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
            ))
        }
    }
    Ok(())
}

/// DEBUG STRINGMATCH-LEN: runs the glob matcher over random patterns and strings; the point is
/// that it terminates without crashing.
fn stringmatch_fuzz() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::SmallRng::from_entropy();
    for _ in 0..100_000 {
        let plen = rng.gen_range(0..32);
        let slen = rng.gen_range(0..32);
        let pat: Vec<u8> = (0..plen).map(|_| rng.gen()).collect();
        let s: Vec<u8> = (0..slen).map(|_| rng.gen()).collect();
        let _ = crate::util::glob::matches(&pat, &s, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_match_redis() {
        assert_eq!(bytes_human(0), "0B");
        assert_eq!(bytes_human(200), "200B");
        assert_eq!(bytes_human(1089192), "1.04M");
        assert_eq!(bytes_human(32768), "32.00K");
        assert_eq!(bytes_human(25276510208), "23.54G");
    }

    #[test]
    fn atoi_is_lenient_like_c() {
        assert_eq!(atoi(b"1"), 1);
        assert_eq!(atoi(b"0"), 0);
        assert_eq!(atoi(b"12abc"), 12);
        assert_eq!(atoi(b"abc"), 0);
        assert_eq!(atoi(b"-3"), -3);
    }

    #[test]
    fn info_sections_resolve() {
        assert_eq!(requested_sections(&[]).len(), 11);
        assert_eq!(requested_sections(&[b"ALL"]).len(), SECTIONS.len());
        assert_eq!(
            requested_sections(&[b"keyspace", b"cpu"]),
            vec!["keyspace", "cpu"]
        );
        assert!(requested_sections(&[b"nosuch"]).is_empty());
    }

    #[test]
    fn rdb_lengths() {
        use crate::keyspace::RString;
        assert_eq!(rdb_string_len(&RString::from_bytes(b"bar")), 4);
        assert_eq!(rdb_string_len(&RString::from_bytes(b"1")), 2);
        assert_eq!(rdb_string_len(&RString::from_bytes(b"1000")), 3);
    }
}
