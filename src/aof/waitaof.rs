//! WAITAOF: block until this client's writes are fsynced (Redis 7.2 semantics).

use std::time::{Duration, Instant};

use super::Waiter;
use crate::commands::flags::*;
use crate::commands::{args, CmdError, CmdResult, CommandSpec, Ctx};

pub(crate) const COMMANDS: &[CommandSpec] =
    &[CommandSpec::new("waitaof", 4, NOSCRIPT, 0, 0, 0, waitaof)];

/// ```text
/// WAITAOF numlocal numreplicas timeout
/// ```
/// Replies `[fsynced locally (0|1), replicas that fsynced]` once at least `numlocal` local
/// and `numreplicas` replica fsyncs cover every write made before the call, or when `timeout`
/// milliseconds (0: forever) pass. No replicas exist yet, so `numreplicas > 0` always waits
/// for the timeout. The target offset is the journal's at the first call (a client's own
/// writes are all before it); a re-run after a wake-up keeps it.
fn waitaof(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let numlocal = args::int(argv[1])?;
    let numreplicas = args::int(argv[2])?;
    let timeout = timeout_ms(argv[3])?;
    let enabled = ctx.srv.aof.log.is_some();
    if numlocal > 0 && !enabled {
        return Err(CmdError::err(
            "WAITAOF cannot be used when numlocal is set but appendonly is disabled.",
        ));
    }
    super::feed(ctx.srv);
    let id = ctx.client.id;
    let now = Instant::now();
    let w = match ctx.srv.aof.waiters.get(&id) {
        Some(w) => *w,
        None => Waiter {
            target: super::logged_offset(ctx.srv),
            numlocal,
            numreplicas,
            deadline: (timeout > 0).then(|| now + Duration::from_millis(timeout)),
        },
    };
    let durable = super::durable_offset(ctx.srv);
    if answerable(&w, durable, now) || !ctx.may_block() {
        ctx.srv.aof.waiters.remove(&id);
        let local = durable.is_some_and(|d| d >= w.target);
        ctx.out.array(2);
        ctx.out.integer(i64::from(local));
        ctx.out.integer(0);
        return Ok(());
    }
    ctx.srv.aof.waiters.insert(id, w);
    ctx.srv.blocking.block(id, ctx.db, &[], None);
    ctx.srv.aof.waiter_added.notify_one();
    Ok(())
}

/// Whether a WAITAOF can be answered now: satisfied, or timed out.
pub fn answerable(w: &Waiter, durable: Option<u64>, now: Instant) -> bool {
    let local = i64::from(durable.is_some_and(|d| d >= w.target));
    let satisfied = local >= w.numlocal && w.numreplicas <= 0;
    satisfied || w.deadline.is_some_and(|d| now >= d)
}

/// Redis's millisecond timeout argument (`getTimeoutFromObjectOrReply`).
fn timeout_ms(arg: &[u8]) -> Result<u64, CmdError> {
    let ms = args::int(arg)
        .map_err(|_| CmdError::raw("ERR timeout is not an integer or out of range"))?;
    u64::try_from(ms).map_err(|_| CmdError::raw("ERR timeout is negative"))
}
