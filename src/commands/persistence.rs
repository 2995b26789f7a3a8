//! Snapshot commands (Redis `rdb.c`): SAVE, BGSAVE, LASTSAVE, and the refusals that
//! persistence imposes on other commands (`-MISCONF` after a failed background save,
//! `-LOADING` while a snapshot loads). The snapshot machinery is [`crate::snapshot::engine`].

use super::args::is;
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::server::client::Client;
use crate::server::ServerState;
use crate::snapshot::engine;

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("save", 1, ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI, 0, 0, 0, save),
    CommandSpec::new("bgsave", -1, ADMIN | NOSCRIPT | NO_ASYNC_LOADING, 0, 0, 0, bgsave),
    CommandSpec::new("lastsave", 1, LOADING | STALE | FAST, 0, 0, 0, lastsave),
];

/// The text of Redis's refusal of writes after a failed background save
/// (`stop-writes-on-bgsave-error`).
macro_rules! misconf_rdb {
    () => {
        "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist \
         to disk. Commands that may modify the data set are disabled, because this instance is \
         configured to report errors during writes if RDB snapshotting fails \
         (stop-writes-on-bgsave-error option). Please check the Redis logs for details about \
         the RDB error."
    };
}

/// Redis's reply to writes after a failed background save.
pub const MISCONF_RDB: &str = misconf_rdb!();
/// The same, as a script's `redis.call` error (the leading `-` keeps the code).
pub const MISCONF_RDB_IN_SCRIPT: &str = concat!("-", misconf_rdb!());

/// Redis's refusal of a script with flags (not `no-writes`) while writes are denied.
pub const MISCONF_SCRIPT: &str = "MISCONF Redis is configured to save RDB snapshots, but it's \
currently unable to persist to disk. Writable scripts are blocked. Use 'no-writes' flag for \
read only scripts.";

/// Redis's reply to most commands while the dataset loads.
pub const LOADING_ERROR: &str = "LOADING Redis is loading the dataset in memory";

/// Writes a snapshot synchronously; every client waits.
///
/// ```text
/// SAVE
/// ```
fn save(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    if ctx.srv.persist.bgsave_in_progress() {
        return Err(CmdError::err("Background save already in progress"));
    }
    match engine::save(ctx.ks, ctx.srv) {
        Ok(()) => {
            ctx.out.ok();
            Ok(())
        }
        // Redis answers a failed SAVE with a bare `-ERR`; the reason is in the log.
        Err(_) => Err(CmdError::Msg("ERR".into())),
    }
}

/// Starts a point-in-time snapshot that is written while the server keeps serving.
///
/// ```text
/// BGSAVE [SCHEDULE]
/// ```
/// Inside MULTI, Redis cannot fork and schedules the save for after the transaction; the reply
/// says so, and the save starts as soon as the EXEC is done. While another snapshot runs (for
/// the append-only log or a replica), SCHEDULE queues the save behind it.
fn bgsave(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    match argv.len() {
        1 => {}
        2 if is(argv[1], "schedule") => {}
        _ => return Err(CmdError::Syntax),
    }
    let schedule = argv.len() == 2;
    if ctx.srv.persist.bgsave_in_progress() {
        return Err(CmdError::err("Background save already in progress"));
    }
    if ctx.srv.persist.snapshot_in_progress() && !schedule && !ctx.is_nested() {
        return Err(CmdError::err(
            "Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE \
             SCHEDULE in order to schedule a BGSAVE whenever possible.",
        ));
    }
    if ctx.srv.persist.snapshot_in_progress() || ctx.is_nested() {
        ctx.srv.persist.bgsave_scheduled = true;
        ctx.srv.persist.wake.notify_one();
        ctx.out.simple("Background saving scheduled");
        return Ok(());
    }
    engine::bgsave_start(ctx.ks, ctx.srv).map_err(CmdError::err)?;
    ctx.out.simple("Background saving started");
    Ok(())
}

/// Unix time of the last successful save.
///
/// ```text
/// LASTSAVE
/// ```
fn lastsave(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    ctx.out.integer(ctx.srv.lastsave as i64);
    Ok(())
}

/// `-MISCONF` for a write (or PING, as in Redis) while the last background save failed and
/// `stop-writes-on-bgsave-error` is on, with save points configured.
pub fn disk_error_refusal(state: &ServerState, client: &Client, spec: &CommandSpec) -> Option<CmdError> {
    if !writes_denied(state) {
        return None;
    }
    let is_write = spec.has(WRITE)
        || (spec.name == "exec" && client.multi.as_ref().is_some_and(|m| m.any_has(WRITE)));
    (is_write || spec.name == "ping").then(|| CmdError::Msg(MISCONF_RDB.into()))
}

/// True while writes are refused because a background save failed (Redis
/// `writeCommandsDeniedByDiskError`): `stop-writes-on-bgsave-error`, save points configured,
/// and the last BGSAVE failed.
pub fn writes_denied(state: &ServerState) -> bool {
    state.config.stop_writes_on_bgsave_error
        && !state.config.save.is_empty()
        && !state.persist.last_bgsave_ok
}

/// `-LOADING` for commands not flagged `loading` while a snapshot loads.
pub fn loading_refusal(state: &ServerState, spec: &CommandSpec) -> Option<CmdError> {
    let loading = state.persist.loading.is_some();
    // While a replica loads its new dataset beside the old one (`swapdb` disk-less load),
    // only the commands that would disturb that load are refused.
    let refused = (loading && !spec.has(LOADING))
        || (state.persist.async_loading && spec.has(NO_ASYNC_LOADING));
    refused.then(|| CmdError::Msg(LOADING_ERROR.into()))
}
