//! The periodic task (Redis's `serverCron`): active expiry, client timeouts, statistics.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::Server;
use crate::util::time::now_ms;

/// Share of each cron period the active expire cycle may use (Redis: 25%).
const EXPIRE_CPU_PERCENT: u64 = 25;

pub async fn run(server: Rc<RefCell<Server>>) {
    loop {
        let hz = server.borrow().state.config.hz.clamp(1, 500) as u64;
        tokio::time::sleep(Duration::from_millis(1000 / hz)).await;
        let mut srv = server.borrow_mut();
        tick(&mut srv, hz);
    }
}

/// One cron iteration.
pub fn tick(srv: &mut Server, hz: u64) {
    if srv.state.cron_paused {
        return;
    }
    // A CLIENT PAUSE holds expiry too: deleting a key is a write (Redis skips the cycle). A
    // replica never expires its master's keys itself: its master's DELs do. Only the keys its
    // own clients gave a time to live are its to expire (below).
    srv.ks.expiry_paused = super::client::pause::holds(true).is_some();
    if srv.state.active_expire && !srv.ks.expiry_paused && srv.ks.expire_on_access {
        let budget = Duration::from_micros(1_000_000 * EXPIRE_CPU_PERCENT / hz / 100);
        let Server { ks, state, effects } = srv;
        let started = Instant::now();
        ks.active_expire_cycle(now_ms(), budget, &mut state.rng);
        let ms = started.elapsed().as_millis() as u64;
        ks.stats.expire_cycle_cpu_milliseconds += ms;
        let threshold = state.config.latency_monitor_threshold;
        state.latency.add_if_needed("expire-cycle", ms, threshold, crate::util::time::now_secs());
        crate::dispatch::propagate_expired(ks, state, effects);
    }
    let st = &srv.state;
    if st.active_expire && st.is_replica() && !st.repl.replica_keys_with_expire.is_empty() {
        crate::replication::expire_replica_keys(srv);
    }
    crate::commands::memory::cron(srv);
    if srv.state.tracking.clients > 0 {
        srv.state.tracking_limit();
        // Keys expired or evicted by the cron reach BCAST clients now.
        srv.state.tracking_broadcast();
    }
    crate::snapshot::engine::cron(srv);
    crate::aof::rewrite::cron(srv);
    sample_ops(srv);
    close_idle_clients(srv);
    trim_idle_clients(srv);
    super::shutdown::cron(srv);
    let used = crate::alloc::used_memory();
    if used > srv.state.peak_memory {
        srv.state.peak_memory = used;
    }
}

/// Records one sample of commands per second (INFO `instantaneous_ops_per_sec`).
fn sample_ops(srv: &mut Server) {
    let st = &mut srv.state.stats;
    let now = Instant::now();
    let Some(last) = st.last_sample_time else {
        st.last_sample_time = Some(now);
        st.last_sample_commands = st.total_commands_processed;
        return;
    };
    let elapsed = now.duration_since(last).as_millis() as u64;
    if elapsed < 100 {
        return;
    }
    let ops = st.total_commands_processed - st.last_sample_commands;
    st.ops_samples[st.ops_sample_idx % 16] = ops * 1000 / elapsed.max(1);
    st.ops_sample_idx += 1;
    st.last_sample_time = Some(now);
    st.last_sample_commands = st.total_commands_processed;
}

/// A client idle for longer than this gives back its empty buffers (Redis's query-buffer
/// rule: idle for over two seconds).
const TRIM_IDLE: Duration = Duration::from_secs(2);
/// How often a client's reply-buffer peak (`rbp` in CLIENT LIST) starts again from zero
/// (Redis's default `reply_buffer_peak_reset_time`).
const PEAK_RESET: Duration = Duration::from_secs(5);

/// Once a second, asks every client idle for over [`TRIM_IDLE`] that still holds buffers to
/// give them back. Only the connection can touch its buffers, so it is woken to do it; a
/// client is woken once per idle period, since it then holds none.
fn trim_idle_clients(srv: &mut Server) {
    let now = Instant::now();
    let (last, peaks) = srv.state.clients_cron;
    if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
        return;
    }
    let reset_peaks = peaks.is_none_or(|t| now.duration_since(t) >= PEAK_RESET);
    srv.state.clients_cron = (Some(now), if reset_peaks { Some(now) } else { peaks });
    let state = &srv.state;
    for (id, c) in &state.clients {
        let Ok(mut info) = c.info.try_borrow_mut() else { continue };
        if reset_peaks {
            info.rbp = 0;
        }
        // Left alone: replication links, which never go back to reading commands, and blocked
        // clients, whose connection takes any wake-up as a reason to retry their command.
        let link = info.flags.contains(['S', 'M']);
        if link || state.blocking.get(*id).is_some() {
            continue;
        }
        let holds = info.qbuf_free > 0 || info.rbs > 0;
        let idle = now.duration_since(info.last_interaction) > TRIM_IDLE;
        if holds && idle && info.qbuf == 0 {
            c.trim.set(true);
            c.wake.notify_one();
        }
    }
}

/// Closes clients idle for longer than `timeout` seconds.
fn close_idle_clients(srv: &mut Server) {
    let timeout = srv.state.config.timeout;
    if timeout <= 0 {
        return;
    }
    let limit = Duration::from_secs(timeout as u64);
    for c in srv.state.clients.values() {
        let idle = c.info.borrow().last_interaction.elapsed();
        if idle > limit {
            c.kill();
        }
    }
}
