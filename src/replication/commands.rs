//! Replication commands: SYNC, PSYNC, REPLCONF, REPLICAOF (SLAVEOF), ROLE, WAIT.

use std::time::{Duration, Instant};

use super::Waiter;
use crate::commands::args::{int, is};
use crate::commands::flags::*;
use crate::commands::CommandSpec;
use crate::dispatch::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::snapshot::rdb_file::RdbParts;

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sync", 1, ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI, 0, 0, 0, sync),
    CommandSpec::new("psync", -3, ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI, 0, 0, 0, psync),
    CommandSpec::new("replconf", -1, REPLCONF_FLAGS, 0, 0, 0, replconf),
    CommandSpec::new("replicaof", 3, REPLICAOF_FLAGS, 0, 0, 0, replicaof),
    CommandSpec::new("slaveof", 3, REPLICAOF_FLAGS, 0, 0, 0, replicaof),
    CommandSpec::new("role", 1, NOSCRIPT | LOADING | STALE | FAST, 0, 0, 0, role),
    CommandSpec::new("wait", 3, NOSCRIPT, 0, 0, 0, wait),
    CommandSpec::new("failover", -1, ADMIN | NOSCRIPT | STALE, 0, 0, 0, failover),
];

const REPLCONF_FLAGS: u32 = ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY;
const REPLICAOF_FLAGS: u32 = ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING;

/// Redis's refusal of WAIT on a replica.
const WAIT_ON_REPLICA: &str = "WAIT cannot be used with replica instances. Please also note \
that since Redis 4.0 if a replica is configured to be writable (which is not the default) \
writes to replicas are just local and are not propagated.";

/// A replica's (or `redis-cli --rdb`'s) request for the whole dataset. The connection hands
/// the client over to the master side after this command: the reply is the snapshot.
///
/// ```text
/// SYNC
/// ```
fn sync(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    refuse_without_master_link(ctx)?;
    refuse_filter_without_eof(ctx)?;
    ctx.srv.repl.handoffs.insert(ctx.client.id, None);
    Ok(())
}

/// A replica asks to continue from `offset` of history `replid` (`?` and -1 for a full
/// resync); answered `+CONTINUE` or `+FULLRESYNC` by the master side.
///
/// ```text
/// PSYNC replicationid offset
/// ```
fn psync(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 3 && is(argv[3], "failover") {
        failover_request(ctx, argv[1])?;
    }
    refuse_without_master_link(ctx)?;
    refuse_filter_without_eof(ctx)?;
    let offset = int(argv[2]).inspect_err(|_| {
        let addr = ctx.client.shared.info.borrow().addr;
        tracing::warn!("Replica {addr} asks for synchronization but with a wrong offset");
    })?;
    let id = String::from_utf8_lossy(argv[1]).into_owned();
    ctx.srv.repl.handoffs.insert(ctx.client.id, Some((id, offset)));
    Ok(())
}

/// `PSYNC <replid> <offset> FAILOVER`: our master hands over to us; we become a master
/// first (keeping our history as the second id), then answer its PSYNC as a replica's.
fn failover_request(ctx: &mut Ctx<'_>, replid: &[u8]) -> Result<(), CmdError> {
    let replid = String::from_utf8_lossy(replid).into_owned();
    tracing::warn!("Failover request received for replid {replid}.");
    if !ctx.srv.is_replica() {
        return Err(CmdError::err("PSYNC FAILOVER can't be sent to a master."));
    }
    if replid != ctx.srv.repl.replid {
        return Err(CmdError::err("PSYNC FAILOVER replid must match my replid."));
    }
    super::replica::unset_master(ctx.ks, ctx.srv);
    let addr = ctx.client.shared.info.borrow().addr;
    tracing::warn!("MASTER MODE enabled (failover request from 'addr={addr}')");
    Ok(())
}

/// A replica whose own master link is down has no consistent history to offer.
fn refuse_without_master_link(ctx: &Ctx<'_>) -> Result<(), CmdError> {
    if ctx.srv.repl.failover.is_some() {
        return Err(CmdError::Msg("NOMASTERLINK Can't SYNC while failing over".into()));
    }
    match &ctx.srv.repl.master {
        Some(m) if m.state != super::LinkState::Connected => Err(CmdError::Msg(
            "NOMASTERLINK Can't SYNC while not connected with my master".into(),
        )),
        _ => Ok(()),
    }
}

/// A filtered RDB (`rdb-filter-only`) is only sent disk-less, as in Redis (it must not
/// replace a snapshot file), so the peer must read that form.
fn refuse_filter_without_eof(ctx: &Ctx<'_>) -> Result<(), CmdError> {
    match ctx.srv.repl.announced.get(&ctx.client.id) {
        Some(a) if a.filter.is_some() && !a.eof => {
            Err(CmdError::err("Filtered replica requires EOF capability"))
        }
        _ => Ok(()),
    }
}

/// `rdb-filter-only`: the RDB keeps only the listed "include" filters (Redis 7.0 knows only
/// `functions`), split like Redis's `sdssplitargs`. As in Redis, a filter it does not know
/// fails after the ones before it took effect.
fn rdb_filter(filter: &mut Option<RdbParts>, val: &[u8]) -> Result<(), CmdError> {
    let filters = crate::protocol::inline::split_args(val)
        .ok_or_else(|| CmdError::err("Missing rdb-filter-only values"))?;
    let parts = filter.insert(RdbParts { keys: false, functions: false });
    for f in filters {
        if f.eq_ignore_ascii_case(b"functions") {
            parts.functions = true;
        } else {
            let f = String::from_utf8_lossy(&f);
            return Err(CmdError::err(format!("Unsupported rdb-filter-only option: {f}")));
        }
    }
    Ok(())
}

/// Replica-to-master configuration exchanged during the handshake.
///
/// ```text
/// REPLCONF [listening-port port] [ip-address ip] [capa eof|psync2|ferrodis]...
///          [ack offset] [getack *] [rdb-only 0|1] [rdb-filter-only filters]
/// ```
/// `capa ferrodis` (ours; Redis ignores capabilities it does not know) asks for the full-sync
/// payload in our snapshot format; any other peer gets a Redis RDB file.
/// `ACK` and `GETACK` are handled on the replication link itself; from an ordinary client
/// they are ignored without a reply, as in Redis.
fn replconf(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if argv.len() % 2 == 0 {
        return Err(CmdError::Syntax);
    }
    let id = ctx.client.id;
    for pair in argv[1..].chunks(2) {
        let (opt, val) = (pair[0], pair[1]);
        if is(opt, "ack") || is(opt, "getack") {
            return Ok(());
        }
        let announced = ctx.srv.repl.announced.entry(id).or_default();
        if is(opt, "listening-port") {
            announced.port = u16::try_from(int(val)?).unwrap_or(0);
        } else if is(opt, "ip-address") {
            announced.ip = Some(String::from_utf8_lossy(val).into_owned());
        } else if is(opt, "capa") {
            if is(val, "eof") {
                announced.eof = true;
            } else if is(val, "ferrodis") {
                announced.ferrodis = true;
            }
        } else if is(opt, "rdb-only") {
            announced.rdb_only = match int(val)? {
                0 => false,
                1 => true,
                _ => {
                    let msg = "value is out of range, value must between 0 and 1";
                    return Err(CmdError::err(msg));
                }
            };
        } else if is(opt, "rdb-filter-only") {
            rdb_filter(&mut announced.filter, val)?;
        } else {
            return Err(CmdError::err(format!(
                "Unrecognized REPLCONF option: {}",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    ctx.out.ok();
    Ok(())
}

/// Makes this server a replica of another, or (`NO ONE`) a master again.
///
/// ```text
/// REPLICAOF host port | NO ONE
/// ```
fn replicaof(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if ctx.srv.repl.failover.is_some() {
        return Err(CmdError::err("REPLICAOF not allowed while failing over."));
    }
    if is(argv[1], "no") && is(argv[2], "one") {
        super::replica::unset_master(ctx.ks, ctx.srv);
        ctx.out.ok();
        return Ok(());
    }
    let port = match int(argv[2]) {
        Ok(p) if (0..=65535).contains(&p) => p as u16,
        _ => return Err(CmdError::err("Invalid master port")),
    };
    let host = String::from_utf8_lossy(argv[1]).into_owned();
    if let Some(m) = &ctx.srv.repl.master {
        if m.host.eq_ignore_ascii_case(&host) && m.port == port {
            tracing::warn!(
                "REPLICAOF would result into synchronization with the master we are already \
                 connected with. No operation performed."
            );
            ctx.out.simple("OK Already connected to specified master");
            return Ok(());
        }
    }
    tracing::warn!("REPLICAOF {host}:{port} enabled (user request)");
    super::replica::set_master(ctx.ks, ctx.srv, host, port);
    ctx.out.ok();
    Ok(())
}

/// This server's role in replication.
///
/// ```text
/// ROLE
/// ```
/// A master answers `master`, its offset and `[ip, port, acked offset]` per replica; a replica
/// answers `slave`, its master's host and port, the link state and its offset.
fn role(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    let offset = ctx.srv.journal.offset() as i64;
    if let Some(m) = &ctx.srv.repl.master {
        ctx.out.array(5);
        ctx.out.bulk(b"slave");
        ctx.out.bulk(m.host.as_bytes());
        ctx.out.integer(i64::from(m.port));
        ctx.out.bulk(m.state.name().as_bytes());
        ctx.out.integer(if m.synced { offset } else { -1 });
        return Ok(());
    }
    let replicas: Vec<_> =
        ctx.srv.repl.feed.as_ref().map(|f| f.replicas.borrow().clone()).unwrap_or_default();
    let online: Vec<_> = replicas.iter().filter(|r| r.online.get()).collect();
    ctx.out.array(3);
    ctx.out.bulk(b"master");
    ctx.out.integer(offset);
    ctx.out.array(online.len());
    for r in online {
        ctx.out.array(3);
        ctx.out.bulk(r.ip.as_bytes());
        ctx.out.bulk(r.listening_port.get().to_string().as_bytes());
        ctx.out.bulk(r.ack_offset.get().to_string().as_bytes());
    }
    Ok(())
}

/// Blocks until `numreplicas` replicas acknowledged every write made so far, or `timeout`
/// milliseconds passed (0 = forever); replies the number that did.
///
/// ```text
/// WAIT numreplicas timeout
/// ```
/// The client blocks with no keys; an acknowledgement (or its timer) wakes it, and the
/// connection re-runs this handler, which then finds its [`Waiter`].
fn wait(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if ctx.srv.is_replica() {
        return Err(CmdError::err(WAIT_ON_REPLICA));
    }
    let numreplicas = int(argv[1])?;
    let timeout = timeout_ms(argv[2])?;
    let id = ctx.client.id;
    let rerun = ctx.srv.blocking.is_blocked(id);
    let waiter = match ctx.srv.repl.waiters.get(&id) {
        Some(w) if rerun => w.clone(),
        _ => Waiter {
            offset: ctx.srv.journal.offset(),
            numreplicas: usize::try_from(numreplicas).unwrap_or(0),
            deadline: (timeout > 0).then(|| Instant::now() + Duration::from_millis(timeout)),
        },
    };
    let acked = ctx.srv.repl.feed.as_ref().map_or(0, |f| f.acked(waiter.offset));
    let expired = waiter.deadline.is_some_and(|d| Instant::now() >= d);
    if acked >= waiter.numreplicas || expired || !ctx.may_block() {
        ctx.srv.repl.waiters.remove(&id);
        ctx.out.integer(acked as i64);
        return Ok(());
    }
    if !rerun {
        if let Some(deadline) = waiter.deadline {
            let shared = ctx.client.shared.clone();
            tokio::task::spawn_local(async move {
                tokio::time::sleep_until(deadline.into()).await;
                shared.wake.notify_one();
            });
        }
        ctx.srv.repl.waiters.insert(id, waiter);
        super::request_acks(ctx.srv);
    }
    ctx.srv.blocking.block(id, ctx.db, &[], None);
    Ok(())
}

/// Hands the master role over to a replica once it has caught up, without losing writes:
/// writes pause meanwhile. `ABORT` cancels; `TIMEOUT` bounds the wait (with `FORCE`, the
/// handover then happens anyway).
///
/// ```text
/// FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT milliseconds]
/// ```
fn failover(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if argv.len() == 2 && is(argv[1], "abort") {
        if ctx.srv.repl.failover.is_none() {
            return Err(CmdError::err("No failover in progress."));
        }
        super::failover::abort(ctx.ks, ctx.srv, "Failover manually aborted");
        ctx.out.ok();
        return Ok(());
    }
    let plan = parse_failover(argv)?;
    check_failover(ctx.srv, &plan)?;
    super::failover::begin(ctx.srv, plan);
    ctx.out.ok();
    Ok(())
}

/// FAILOVER's options, as Redis parses them.
fn parse_failover(argv: &[&[u8]]) -> Result<super::failover::Failover, CmdError> {
    let (mut target, mut timeout, mut force) = (None, 0i64, false);
    let mut j = 1;
    while j < argv.len() {
        if is(argv[j], "timeout") && j + 1 < argv.len() && timeout == 0 {
            timeout = int(argv[j + 1])?;
            if timeout <= 0 {
                return Err(CmdError::err("FAILOVER timeout must be greater than 0"));
            }
            j += 2;
        } else if is(argv[j], "to") && j + 2 < argv.len() && target.is_none() {
            let port = int(argv[j + 2])?;
            let port = u16::try_from(port).map_err(|_| CmdError::err("Invalid port"))?;
            target = Some((String::from_utf8_lossy(argv[j + 1]).into_owned(), port));
            j += 3;
        } else if is(argv[j], "force") && !force {
            force = true;
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let deadline = (timeout > 0).then(|| Instant::now() + Duration::from_millis(timeout as u64));
    Ok(super::failover::Failover { target, deadline, force, in_progress: false })
}

/// Redis's preconditions for FAILOVER.
fn check_failover(
    srv: &crate::server::ServerState,
    plan: &super::failover::Failover,
) -> Result<(), CmdError> {
    if srv.repl.failover.is_some() {
        return Err(CmdError::err("FAILOVER already in progress."));
    }
    if srv.is_replica() {
        return Err(CmdError::err("FAILOVER is not valid when server is a replica."));
    }
    let replicas = srv.repl.feed.as_ref().map(|f| f.replicas.borrow().clone()).unwrap_or_default();
    if replicas.is_empty() {
        return Err(CmdError::err("FAILOVER requires connected replicas."));
    }
    if plan.force && (plan.deadline.is_none() || plan.target.is_none()) {
        return Err(CmdError::err(
            "FAILOVER with force option requires both a timeout and target HOST and IP.",
        ));
    }
    if let Some((host, port)) = &plan.target {
        let found = replicas.iter().find(|r| &r.ip == host && r.listening_port.get() == *port);
        let Some(r) = found else {
            return Err(CmdError::err("FAILOVER target HOST and PORT is not a replica."));
        };
        if !r.online.get() {
            return Err(CmdError::err("FAILOVER target replica is not online."));
        }
    }
    Ok(())
}

/// A millisecond timeout as Redis parses it for WAIT.
fn timeout_ms(arg: &[u8]) -> Result<u64, CmdError> {
    let t = std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?;
    if t < 0 {
        return Err(CmdError::err("timeout is negative"));
    }
    Ok(t as u64)
}
