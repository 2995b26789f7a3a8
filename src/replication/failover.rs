//! Coordinated failover (FAILOVER): the master pauses writes, waits until a replica has
//! acknowledged its whole stream, then becomes a replica of it with `PSYNC <id> <offset>
//! FAILOVER`, which makes the target promote itself before it answers `+CONTINUE`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::server::client::{pause, PauseKind};
use crate::server::{Server, ServerState};

/// A failover in progress (`ServerState::repl.failover`).
#[derive(Debug, Clone)]
pub struct Failover {
    /// The replica to hand over to; `None` until one has caught up (FAILOVER without TO).
    pub target: Option<(String, u16)>,
    /// TIMEOUT: when waiting for the replica ends.
    pub deadline: Option<Instant>,
    /// FORCE: fail over to the target at the deadline even if it has not caught up.
    pub force: bool,
    /// This server already replicates from the target (`failover-in-progress`).
    pub in_progress: bool,
}

/// INFO's `master_failover_state`.
pub fn state_name(state: &ServerState) -> &'static str {
    match &state.repl.failover {
        None => "no-failover",
        Some(f) if f.in_progress => "failover-in-progress",
        Some(_) => "waiting-for-sync",
    }
}

/// Starts a failover: writes are paused until it ends, and the replicas are asked for their
/// offsets.
pub fn begin(state: &mut ServerState, failover: Failover) {
    match &failover.target {
        Some((h, p)) => tracing::warn!("FAILOVER requested to {h}:{p}."),
        None => tracing::warn!("FAILOVER requested to any replica."),
    }
    state.repl.failover = Some(failover);
    pause::start(Instant::now() + Duration::from_secs(365 * 86400), PauseKind::Write);
    super::request_acks(state);
}

/// Ends a failover that did not complete; a server already following the target becomes a
/// master again.
pub fn abort(ks: &mut crate::keyspace::Keyspace, state: &mut ServerState, why: &str) {
    let Some(f) = state.repl.failover.take() else { return };
    match &f.target {
        Some((h, p)) => tracing::warn!("FAILOVER to {h}:{p} aborted: {why}"),
        None => tracing::warn!("FAILOVER to any replica aborted: {why}"),
    }
    if f.in_progress {
        super::replica::unset_master(ks, state);
    }
    pause::stop();
}

/// Checks the failover ten times a second.
pub async fn cron(server: Rc<RefCell<Server>>) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut srv = server.borrow_mut();
        let Server { ks, state, .. } = &mut *srv;
        let Some(f) = state.repl.failover.clone() else { continue };
        if f.in_progress {
            finish_if_connected(state);
        } else {
            check_caught_up(ks, state, &f);
        }
    }
}

/// The handover is complete once the link to the new master is up.
fn finish_if_connected(state: &mut ServerState) {
    let up = state.repl.master.as_ref().is_some_and(|m| m.state == super::LinkState::Connected);
    if up {
        state.repl.failover = None;
        pause::stop();
        tracing::warn!("Failover target connected, failover complete.");
    }
}

/// Waiting for sync: hands over once a (the) replica acknowledged everything, or at the
/// deadline (FORCE) gives up waiting.
fn check_caught_up(ks: &mut crate::keyspace::Keyspace, state: &mut ServerState, f: &Failover) {
    if f.deadline.is_some_and(|d| Instant::now() >= d) {
        match (&f.target, f.force) {
            (Some((h, p)), true) => {
                tracing::warn!("FAILOVER to {h}:{p} time out exceeded, failing over.");
                let (h, p) = (h.clone(), *p);
                hand_over(ks, state, h, p);
            }
            _ => abort(ks, state, "Replica never caught up before timeout"),
        }
        return;
    }
    let offset = state.journal.offset();
    let Some(feed) = state.repl.feed.clone() else { return };
    let replicas = feed.replicas.borrow().clone();
    let found = replicas.iter().find(|r| {
        let port = r.listening_port.get();
        let wanted = match &f.target {
            Some((h, p)) => *p == port && (h == &r.ip || same_host(h, &r.ip)),
            None => true,
        };
        wanted && r.online.get() && r.ack_offset.get() == offset
    });
    if let Some(r) = found {
        let (h, p) = (r.ip.clone(), r.listening_port.get());
        tracing::warn!("Failover target {h}:{p} is synced, failing over.");
        hand_over(ks, state, h, p);
    }
}

/// `localhost` and `127.0.0.1` name the same replica.
fn same_host(a: &str, b: &str) -> bool {
    let local = |h: &str| h == "localhost" || h == "127.0.0.1" || h == "::1";
    local(a) && local(b)
}

/// Becomes a replica of the target; the handshake carries `PSYNC ... FAILOVER`.
fn hand_over(ks: &mut crate::keyspace::Keyspace, state: &mut ServerState, host: String, port: u16) {
    if let Some(f) = state.repl.failover.as_mut() {
        f.in_progress = true;
        f.target = Some((host.clone(), port));
    }
    super::replica::set_master(ks, state, host, port);
}
