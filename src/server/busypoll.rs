//! Brief busy polling of the event loop after activity.
//!
//! Why: on loopback, the cost of waking a process that sleeps in `epoll_wait` is paid by the
//! process that writes to it. When the server goes to sleep between two bursts of requests,
//! every client write has to wake it, and on a two-core machine that cross-CPU wake-up costs the
//! client more than the request itself: measured with redis-benchmark at `-P 16`, a do-nothing
//! server that polls for a moment before sleeping gets 15-20% more requests per second out of
//! the same client than one that sleeps at once (and at `-P 1` about the same again).
//!
//! So after a connection has processed input, the event loop can keep polling its sockets with
//! zero timeouts for a while before it is allowed to sleep. The spinning is one task, [`run`],
//! which yields in a loop: Tokio's current-thread scheduler answers a yield with a non-blocking
//! `epoll_wait` and runs whatever became ready before resuming the spinner; between polls it
//! gives the CPU to any other runnable thread (`sched_yield`). An idle server spins for at most
//! the window after its last request.
//!
//! **Off by default.** Measured with ferrodis itself on the two-core machine (2026-11-22, a
//! build or test run sharing the machine), a 200 µs window cost about 10% of the requests per
//! second at `-P 1` and raised p50 at `-P 16`: the spinning thread competes with the benchmark
//! client for the CPUs whenever anything else runs too. `FERRODIS_BUSY_POLL_US=<µs>` turns it
//! on for a dedicated machine, where it can pay; measure before relying on it.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How long the loop keeps polling after the last processed input by default: not at all (see
/// the module docs). A useful window covers a client's round trip on loopback (tens of
/// microseconds), e.g. 200.
pub const SPIN: Duration = Duration::from_micros(0);

/// [`SPIN`], or `FERRODIS_BUSY_POLL_US` from the environment.
fn spin() -> Duration {
    static SPIN_SET: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *SPIN_SET.get_or_init(|| {
        std::env::var("FERRODIS_BUSY_POLL_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(SPIN, Duration::from_micros)
    })
}

thread_local! {
    static STATE: State = State {
        activity: Cell::new(0),
        sleeping: Cell::new(true),
        wake: Rc::new(Notify::new()),
    };
}

struct State {
    /// Bumped for every batch of input processed.
    activity: Cell<u64>,
    /// True while the spinner waits for activity (the loop may sleep).
    sleeping: Cell<bool>,
    wake: Rc<Notify>,
}

/// Records that a connection processed input; starts the spinner if it was resting. Cheap
/// enough to call once per batch.
#[inline]
pub fn touch() {
    STATE.with(|s| {
        s.activity.set(s.activity.get().wrapping_add(1));
        if s.sleeping.get() {
            s.sleeping.set(false);
            s.wake.notify_one();
        }
    });
}

/// The spinner task. Spawn once on the event loop's `LocalSet`.
pub async fn run() {
    let spin = spin();
    if spin.is_zero() {
        return;
    }
    let wake = STATE.with(|s| s.wake.clone());
    loop {
        wake.notified().await;
        let mut seen = STATE.with(|s| s.activity.get());
        let mut since = Instant::now();
        loop {
            // Give the CPU to anything else runnable on it first: spinning must only use time
            // nobody else wants (on a busy machine the clients themselves may need this core).
            std::thread::yield_now();
            tokio::task::yield_now().await;
            let now = STATE.with(|s| s.activity.get());
            if now != seen {
                seen = now;
                since = Instant::now();
            } else if since.elapsed() >= spin {
                break;
            }
        }
        STATE.with(|s| s.sleeping.set(true));
    }
}
