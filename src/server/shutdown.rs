//! Shutting down: SHUTDOWN and SIGINT/SIGTERM (Redis's `prepareForShutdown`,
//! `finishShutdown`, `abortShutdown`).
//!
//! A shutdown first lets lagging replicas catch up: unless `NOW` (or `shutdown-timeout 0`),
//! a master whose replicas have not acknowledged its whole stream pauses writes, asks them for
//! an acknowledgement, and waits up to `shutdown-timeout` seconds; the cron checks every tick
//! ([`cron`]). Then [`finish`] saves (as the flags and save points say), and either tells the
//! main task to exit or, when the save (or an initial AOF rewrite) stands in the way and
//! `FORCE` was not given, cancels: the server keeps running and the clients blocked in
//! SHUTDOWN get an error.
//!
//! **Signals** are received on a thread of their own ([`listen_for_signals`]), not on the
//! event loop: a synchronous save on the event loop may run for a long time, and a second
//! SIGINT must still stop the process at once (deleting the save's temporary file), as
//! Redis's signal handler does. The thread only records the request; the cron acts on it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use super::client::{pause, PauseKind};
use super::{Server, ServerState, Shutdown};
use crate::keyspace::Keyspace;

/// The signal whose shutdown request the cron has not handled yet, 0 if none (Redis's
/// `shutdown_asap` and `last_sig_received`). Written by the signal thread.
static REQUESTED: AtomicI32 = AtomicI32::new(0);

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// How to shut down (SHUTDOWN's arguments, or `shutdown-on-sigint` / `shutdown-on-sigterm`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// Save a snapshot even without save points.
    pub save: bool,
    /// Save no snapshot even with save points.
    pub nosave: bool,
    /// Do not wait for lagging replicas.
    pub now: bool,
    /// Exit even if the snapshot or the append-only log cannot be written.
    pub force: bool,
}

impl Flags {
    /// Parses a `shutdown-on-sig*` value (`default`, or words among save, nosave, now, force).
    pub fn from_config(text: &str) -> Flags {
        let mut f = Flags::default();
        for w in text.split_whitespace() {
            match w {
                "save" => f.save = true,
                "nosave" => f.nosave = true,
                "now" => f.now = true,
                "force" => f.force = true,
                _ => {}
            }
        }
        f
    }
}

/// A shutdown in progress (`ServerState::shutting`).
#[derive(Debug, Default)]
pub struct ShutdownState {
    flags: Flags,
    /// While waiting for lagging replicas: when to stop waiting (Redis's `shutdown_mstime`).
    deadline: Option<Instant>,
    /// Clients blocked in SHUTDOWN.
    blocked: Vec<u64>,
    /// Blocked clients whose shutdown failed or was aborted; their SHUTDOWN, run again when
    /// they are woken, answers the error.
    failed: HashSet<u64>,
    /// Writes are paused by this shutdown (so that cancelling releases them).
    paused: bool,
}

/// What became of a shutdown attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server exits now (the main task was told).
    Exit,
    /// Waiting for lagging replicas; the cron finishes the shutdown.
    Waiting,
    /// The shutdown failed and was cancelled (logged); the server keeps running.
    Failed,
}

/// Whether a shutdown is waiting for replicas (Redis's `isShutdownInitiated`).
pub fn initiated(st: &ServerState) -> bool {
    st.shutting.deadline.is_some()
}

/// Milliseconds left until a waiting shutdown stops waiting (INFO `shutdown_in_milliseconds`).
pub fn remaining_ms(st: &ServerState) -> Option<u64> {
    let d = st.shutting.deadline?;
    Some(d.saturating_duration_since(Instant::now()).as_millis() as u64)
}

/// Starts a shutdown. Returns [`Outcome::Waiting`] also when one is already waiting (the
/// caller's client then waits for that one).
pub fn prepare(ks: &mut Keyspace, st: &mut ServerState, mut flags: Flags) -> Outcome {
    if initiated(st) {
        return Outcome::Waiting;
    }
    // A dataset half loaded must not overwrite the snapshot it comes from.
    if st.persist.loading.is_some() {
        flags.save = false;
        flags.nosave = true;
    }
    st.shutting.flags = flags;
    tracing::warn!("User requested shutdown...");
    let timeout = crate::replication::config_u64(st, "shutdown-timeout");
    if !flags.now && timeout != 0 && !replicas_in_sync(st) {
        st.shutting.deadline = Some(Instant::now() + Duration::from_secs(timeout));
        if pause::holds(true).is_none() {
            crate::replication::request_acks(st);
        }
        pause::start(Instant::now() + Duration::from_secs(365 * 86400), PauseKind::Write);
        st.shutting.paused = true;
        tracing::info!("Waiting for replicas before shutting down.");
        return Outcome::Waiting;
    }
    finish(ks, st)
}

/// Every replica acknowledged the whole stream (Redis's `isReadyToShutdown`).
fn replicas_in_sync(st: &ServerState) -> bool {
    let Some(feed) = &st.repl.feed else { return true };
    let offset = st.journal.offset();
    let in_sync = feed.replicas.borrow().iter().all(|r| r.ack_offset.get() == offset);
    in_sync
}

/// Logs the replicas that did not catch up, and how many did.
fn log_replicas(st: &ServerState) {
    let Some(feed) = &st.repl.feed else { return };
    let offset = st.journal.offset();
    let replicas = feed.replicas.borrow();
    let mut lagging = 0;
    for r in replicas.iter().filter(|r| r.ack_offset.get() != offset) {
        lagging += 1;
        let lag = if r.online.get() { r.ack_time.get().elapsed().as_secs() } else { 0 };
        tracing::warn!(
            "Lagging replica {}:{} reported offset {} behind master, lag={}, state={}.",
            r.ip,
            r.listening_port.get(),
            offset as i64 - r.ack_offset.get() as i64,
            lag,
            r.state_name.get()
        );
    }
    if !replicas.is_empty() {
        tracing::info!(
            "{} of {} replicas are in sync when shutting down.",
            replicas.len() - lagging,
            replicas.len()
        );
    }
}

/// The last step: stops background work, saves if asked to, and tells the main task to exit;
/// or, if the data cannot be made safe (and not `FORCE`), cancels the shutdown.
pub fn finish(ks: &mut Keyspace, st: &mut ServerState) -> Outcome {
    let Flags { save, nosave, force, .. } = st.shutting.flags;
    log_replicas(st);
    if st.persist.bgsave_in_progress() {
        tracing::warn!("There is a child saving an .rdb. Killing it!");
        crate::snapshot::engine::bgsave_abort(ks, st);
    }
    if st.aof.rw.turning_on {
        // The log has no base yet: without the rewrite the dataset is nowhere on disk.
        if !force {
            tracing::warn!("Writing initial AOF, can't exit.");
            return fail(st);
        }
        tracing::warn!("Writing initial AOF. Exit anyway.");
    }
    if st.aof.rw.running.is_some() {
        tracing::warn!("There is a child rewriting the AOF. Killing it!");
        crate::snapshot::engine::bgsave_abort(ks, st);
    }
    if (!nosave && !st.config.save.is_empty()) || save {
        tracing::info!("Saving the final RDB snapshot before exiting.");
        if crate::snapshot::engine::save(ks, st).is_err() {
            if !force {
                tracing::warn!("Error trying to save the DB, can't exit.");
                return fail(st);
            }
            tracing::warn!("Error trying to save the DB. Exit anyway.");
        }
    }
    if st.aof.log.is_some() {
        tracing::info!("Calling fsync() on the AOF file.");
    }
    crate::aof::shutdown(st);
    if !st.config.pidfile.is_empty() {
        tracing::info!("Removing the pid file.");
        let _ = std::fs::remove_file(&st.config.pidfile);
    }
    tracing::warn!("ferrodis is now ready to exit, bye bye...");
    st.shutdown = Some(Shutdown::Signal);
    st.shutdown_notify.notify_one();
    Outcome::Exit
}

fn fail(st: &mut ServerState) -> Outcome {
    tracing::warn!(
        "Errors trying to shut down the server. Check the logs for more information."
    );
    cancel(st);
    Outcome::Failed
}

/// Forgets the shutdown: writes resume, and every client blocked in SHUTDOWN is woken to
/// answer the error (Redis's `cancelShutdown`).
fn cancel(st: &mut ServerState) {
    REQUESTED.store(0, Ordering::SeqCst);
    let sh = &mut st.shutting;
    sh.flags = Flags::default();
    sh.deadline = None;
    if std::mem::take(&mut sh.paused) {
        pause::stop();
    }
    for id in std::mem::take(&mut sh.blocked) {
        sh.failed.insert(id);
        if let Some(c) = st.clients.get(&id) {
            c.wake.notify_one();
        }
    }
}

/// SHUTDOWN ABORT: cancels a shutdown that waits for replicas, or a signal's request the cron
/// has not acted on. False if there is neither.
pub fn abort(st: &mut ServerState) -> bool {
    if initiated(st) {
        cancel(st);
    } else if REQUESTED.swap(0, Ordering::SeqCst) == 0 {
        return false;
    }
    tracing::info!("Shutdown manually aborted.");
    true
}

/// Registers client `id` as blocked in SHUTDOWN until the shutdown ends.
pub fn block(st: &mut ServerState, id: u64) {
    st.shutting.failed.remove(&id);
    if !st.shutting.blocked.contains(&id) {
        st.shutting.blocked.push(id);
    }
}

/// For a blocked SHUTDOWN run again: whether its shutdown failed (consumes the news).
pub fn take_failed(st: &mut ServerState, id: u64) -> bool {
    st.shutting.failed.remove(&id)
}

/// Forgets a client that disconnected.
pub fn forget_client(st: &mut ServerState, id: u64) {
    st.shutting.blocked.retain(|&c| c != id);
    st.shutting.failed.remove(&id);
}

/// The cron's part (Redis's `serverCron`): starts the shutdown a signal asked for, and
/// finishes a waiting one once the replicas caught up or the time is up.
pub fn cron(srv: &mut Server) {
    let Server { ks, state, .. } = srv;
    let sig = REQUESTED.load(Ordering::SeqCst);
    if sig != 0 && !initiated(state) {
        let name = if sig == SIGINT { "shutdown-on-sigint" } else { "shutdown-on-sigterm" };
        let flags = Flags::from_config(state.config.get_by_name(name).unwrap_or("default"));
        prepare(ks, state, flags);
    } else if let Some(deadline) = state.shutting.deadline {
        if Instant::now() >= deadline || replicas_in_sync(state) {
            finish(ks, state);
        }
    }
}

/// Starts the thread that receives SIGINT and SIGTERM. The first one asks for a shutdown; a
/// SIGINT after that exits at once, with an error status, removing the temporary file of a
/// save in progress (the user insists, as with a second Ctrl+C).
pub fn listen_for_signals() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (mut term, mut int) = {
        let _in_runtime = rt.enter();
        (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?)
    };
    std::thread::Builder::new().name("ferrodis-signals".into()).spawn(move || {
        rt.block_on(async move {
            loop {
                let sig = tokio::select! {
                    _ = term.recv() => SIGTERM,
                    _ = int.recv() => SIGINT,
                };
                on_signal(sig);
            }
        });
    })?;
    Ok(())
}

fn on_signal(sig: i32) {
    let before = REQUESTED.swap(sig, Ordering::SeqCst);
    if sig == SIGINT && before != 0 {
        tracing::warn!("You insist... exiting now.");
        let temp = format!("temp-{}.rdb", std::process::id());
        let _ = std::fs::remove_file(temp);
        std::process::exit(1);
    }
    let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
    tracing::warn!("Received {name} scheduling shutdown...");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_from_config() {
        assert_eq!(Flags::from_config("default"), Flags::default());
        let f = Flags::from_config("save now");
        assert!(f.save && f.now && !f.nosave && !f.force);
        let f = Flags::from_config("nosave force");
        assert!(f.nosave && f.force && !f.save && !f.now);
    }
}
