//! Crash-recovery torture test for the append-only log.
//!
//! Client threads issue acknowledged writes whose effects can be checked (unique SETs, some
//! with an expiry; INCR counters; RPUSH sequence numbers; MULTI/EXEC batches), the server is
//! killed with SIGKILL at a random moment, restarted from its log, and the state is verified:
//! every acknowledged write is present (with `always`, and with `everysec` too since a
//! SIGKILL spares the page cache; the 2 s power-loss bound of `everysec` is checked as well),
//! and the state is exactly a prefix of each client's write stream (no gaps, no
//! torn transaction). Between runs, a torn frame is appended to the log (it must be truncated
//! on load) and random bit flips are checked to be detected.
//!
//! Rewrites (BGREWRITEAOF) and BGSAVEs run at random instants meanwhile, so kills land
//! during them too (the counts are printed).
//!
//! Short by default; `FERRODIS_TORTURE_CYCLES=N` runs N cycles per policy.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{q, TestServer};
use ferrodis::aof::format::{check, Scanner, Step};
use rand::Rng;

const THREADS: usize = 4;

/// What one client thread wrote: `*_done` is the state the server holds for sure (acked, or
/// verified after a restart); `*_tried` includes the one write that may be in flight.
#[derive(Debug, Default, Clone)]
struct Model {
    t: usize,
    uniq_done: u64,
    uniq_tried: u64,
    incr_done: u64,
    incr_tried: u64,
    push_done: u64,
    push_tried: u64,
    multi_done: u64,
    multi_tried: u64,
}

/// Acked counts published for the `everysec` loss-window bound: uniq, incr, push, multi.
#[derive(Default)]
struct Progress([AtomicU64; 4]);

impl Progress {
    fn snapshot(&self) -> [u64; 4] {
        [0, 1, 2, 3].map(|i| self.0[i].load(Relaxed))
    }
}

/// One client thread; `pace` sleeps between writes (with `everysec` the writes are so fast
/// that the log of a long run would take longer to load than the harness waits for a start).
fn writer(
    port: u16,
    mut m: Model,
    stop: &AtomicBool,
    progress: &Progress,
    pace: Duration,
) -> Model {
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else {
        return m;
    };
    let Ok(mut c) = client.get_connection() else {
        return m;
    };
    let t = m.t;
    let mut i = 0u64;
    while !stop.load(Relaxed) {
        i += 1;
        let ok = match i % 4 {
            0 => {
                let n = m.uniq_done;
                m.uniq_tried = n + 1;
                let mut cmd = redis::cmd("SET");
                cmd.arg(format!("u:{t}:{n}")).arg(n);
                if n % 3 == 0 {
                    cmd.arg("PX").arg(3_600_000);
                }
                let r = cmd.query::<()>(&mut c).is_ok();
                if r {
                    m.uniq_done = n + 1;
                }
                r
            }
            1 => {
                m.incr_tried = m.incr_done + 1;
                match redis::cmd("INCR")
                    .arg(format!("cnt:{t}"))
                    .query::<u64>(&mut c)
                {
                    Ok(v) => {
                        assert_eq!(v, m.incr_tried, "INCR cnt:{t}");
                        m.incr_done = v;
                        true
                    }
                    Err(_) => false,
                }
            }
            2 => {
                m.push_tried = m.push_done + 1;
                let r = redis::cmd("RPUSH")
                    .arg(format!("seq:{t}"))
                    .arg(m.push_tried)
                    .query::<u64>(&mut c);
                match r {
                    Ok(len) => {
                        assert_eq!(len, m.push_tried, "RPUSH seq:{t}");
                        m.push_done = len;
                        true
                    }
                    Err(_) => false,
                }
            }
            _ => {
                let k = m.multi_done + 1;
                m.multi_tried = k;
                let r: redis::RedisResult<redis::Value> = redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(format!("ma:{t}"))
                    .arg(k)
                    .cmd("SET")
                    .arg(format!("mb:{t}"))
                    .arg(k)
                    .cmd("INCR")
                    .arg(format!("mc:{t}"))
                    .query(&mut c);
                if r.is_ok() {
                    m.multi_done = k;
                }
                r.is_ok()
            }
        };
        if !ok {
            break;
        }
        if !pace.is_zero() {
            std::thread::sleep(pace);
        }
        let p = &progress.0;
        p[0].store(m.uniq_done, Relaxed);
        p[1].store(m.incr_done, Relaxed);
        p[2].store(m.push_done, Relaxed);
        p[3].store(m.multi_done, Relaxed);
    }
    m
}

fn num(v: Option<String>) -> u64 {
    v.map_or(0, |s| s.parse().unwrap())
}

/// Checks one client's state against its model after a restart; `floor` is what must be
/// present at least (all acked writes with `always`). Returns the writes verified and updates
/// the model to the state found.
fn verify(c: &mut redis::Connection, m: &mut Model, floor: [u64; 4]) -> u64 {
    let t = m.t;
    // Unique keys: a prefix of the ones tried.
    let keys: Vec<String> = (0..m.uniq_tried + 1)
        .map(|n| format!("u:{t}:{n}"))
        .collect();
    let mut present = Vec::new();
    for chunk in keys.chunks(500) {
        let mut cmd = redis::cmd("MGET");
        for k in chunk {
            cmd.arg(k);
        }
        let vals: Vec<Option<String>> = cmd.query(c).unwrap();
        present.extend(vals);
    }
    let p = present.iter().take_while(|v| v.is_some()).count() as u64;
    assert!(
        present[p as usize..].iter().all(Option::is_none),
        "client {t}: unique keys not a prefix"
    );
    for (n, v) in present.iter().enumerate().take(p as usize) {
        assert_eq!(v.as_deref(), Some(n.to_string().as_str()));
    }
    assert!(
        p >= floor[0] && p <= m.uniq_tried,
        "client {t}: {p} unique keys, model {m:?}"
    );
    if p > 0 {
        let last = (p - 1) / 3 * 3;
        let ttl: i64 = q(c, &["PTTL", &format!("u:{t}:{last}")]);
        assert!(ttl > 0, "client {t}: expiry of u:{t}:{last} lost ({ttl})");
    }
    // Counter.
    let n = num(q(c, &["GET", &format!("cnt:{t}")]));
    assert!(
        n >= floor[1] && n <= m.incr_tried,
        "client {t}: counter {n}, model {m:?}"
    );
    // Sequence: exactly 1..=k.
    let list: Vec<u64> = q(c, &["LRANGE", &format!("seq:{t}"), "0", "-1"]);
    let k = list.len() as u64;
    assert!(
        list.iter().copied().eq(1..=k),
        "client {t}: sequence has gaps: {list:?}"
    );
    assert!(
        k >= floor[2] && k <= m.push_tried,
        "client {t}: sequence {k}, model {m:?}"
    );
    // Transactions: all or nothing.
    let ma = num(q(c, &["GET", &format!("ma:{t}")]));
    let mb = num(q(c, &["GET", &format!("mb:{t}")]));
    let mc = num(q(c, &["GET", &format!("mc:{t}")]));
    assert!(
        ma == mb && mb == mc,
        "client {t}: torn transaction {ma} {mb} {mc}"
    );
    assert!(
        mc >= floor[3] && mc <= m.multi_tried,
        "client {t}: {mc} batches, model {m:?}"
    );
    *m = Model {
        t,
        uniq_done: p,
        uniq_tried: p,
        incr_done: n,
        incr_tried: n,
        push_done: k,
        push_tried: k,
        multi_done: mc,
        multi_tried: mc,
    };
    p + n + k + mc * 3
}

fn current_incr(dir: &Path) -> PathBuf {
    let d = dir.join("appendonlydir");
    let m = std::fs::read_to_string(d.join("appendonly.aof.manifest")).unwrap();
    let last = m.lines().filter(|l| l.ends_with("type i")).last().unwrap();
    d.join(last.split_whitespace().nth(1).unwrap())
}

fn commands_of(bytes: &[u8]) -> (Vec<Vec<Vec<u8>>>, bool) {
    let mut sc = Scanner::new(bytes);
    let mut all = Vec::new();
    loop {
        match sc.next_step().unwrap() {
            Step::Commands { cmds, .. } => all.extend(cmds),
            Step::End => return (all, true),
            _ => return (all, false),
        }
    }
}

/// Flips random bits in a copy of the log: each flip that changes what the file says must be
/// reported as corruption (never loaded, never taken for a torn tail). Returns flips detected.
fn bit_flips(file: &Path, rng: &mut impl Rng, n: usize) -> u64 {
    let orig = std::fs::read(file).unwrap();
    if orig.is_empty() {
        return 0;
    }
    let (cmds, ok) = commands_of(&orig);
    assert!(ok);
    let mut detected = 0;
    for _ in 0..n {
        let mut b = orig.clone();
        let at = rng.gen_range(0..b.len());
        b[at] ^= 1 << rng.gen_range(0..8);
        let v = check(&b[..]).unwrap();
        match v.damage {
            Some((_, reason, torn)) => {
                assert!(!torn, "bit flip at {at} taken for a torn tail: {reason}");
                detected += 1;
            }
            None => assert_eq!(commands_of(&b).0, cmds, "undetected bit flip at {at}"),
        }
    }
    detected
}

fn torn_frame() -> Vec<u8> {
    let payload = b"*3\r\n$3\r\nSET\r\n$4\r\ntorn\r\n$1\r\nx\r\n";
    let mut f = Vec::new();
    ferrodis::aof::format::frame_header(&mut f, payload);
    f.extend_from_slice(payload);
    f.truncate(f.len() - 3);
    f
}

fn cycles(default: usize) -> usize {
    std::env::var("FERRODIS_TORTURE_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs the torture cycles with one fsync policy; `window` is the loss window allowed.
fn torture(policy: &str, cycles: usize, run_ms: (u64, u64), window: Option<Duration>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let args = ["--appendonly", "yes", "--appendfsync", policy];
    let pace = if policy == "always" {
        Duration::ZERO
    } else {
        Duration::from_micros(300)
    };
    let mut rng = rand::thread_rng();
    let mut models: Vec<Model> = (0..THREADS)
        .map(|t| Model {
            t,
            ..Model::default()
        })
        .collect();
    let (mut verified, mut flips, mut acked_total) = (0u64, 0u64, 0u64);
    let (mut kills_in_rewrite, mut kills_in_bgsave) = (0u64, 0u64);
    for cycle in 0..cycles {
        let mut server = TestServer::start_in(dir, &args);
        if cycle > 0 {
            let mut c = server.conn();
            assert_eq!(q::<Option<String>>(&mut c, &["GET", "torn"]), None);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let progress: Arc<Vec<Progress>> =
            Arc::new((0..THREADS).map(|_| Progress::default()).collect());
        let history: Arc<Mutex<Vec<(Instant, Vec<[u64; 4]>)>>> = Arc::default();
        let handles: Vec<_> = models
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, m)| {
                let (stop, progress, port) = (stop.clone(), progress.clone(), server.port);
                std::thread::spawn(move || writer(port, m, &stop, &progress[i], pace))
            })
            .collect();
        let run = Duration::from_millis(rng.gen_range(run_ms.0..run_ms.1));
        let start = Instant::now();
        // Rewrites and BGSAVEs at random instants, some slowed down so the kill often lands
        // in the middle of one.
        let mut ctl = server.conn();
        let delay = ["0", "5", "20"][rng.gen_range(0..3)];
        let _: () = q(&mut ctl, &["CONFIG", "SET", "rdb-key-save-delay", delay]);
        while start.elapsed() < run {
            let snap = progress.iter().map(Progress::snapshot).collect();
            history.lock().unwrap().push((Instant::now(), snap));
            match rng.gen_range(0..8) {
                0 | 1 => drop(redis::cmd("BGREWRITEAOF").query::<redis::Value>(&mut ctl)),
                2 => drop(redis::cmd("BGSAVE").query::<redis::Value>(&mut ctl)),
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let info: String = q(&mut ctl, &["INFO", "persistence"]);
        kills_in_rewrite += u64::from(info.contains("aof_rewrite_in_progress:1"));
        kills_in_bgsave += u64::from(info.contains("rdb_bgsave_in_progress:1"));
        let killed_at = Instant::now();
        server.kill();
        stop.store(true, Relaxed);
        let before = models
            .iter()
            .map(|m| m.uniq_done + m.incr_done + m.push_done + m.multi_done * 3)
            .sum::<u64>();
        models = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let after = models
            .iter()
            .map(|m| m.uniq_done + m.incr_done + m.push_done + m.multi_done * 3)
            .sum::<u64>();
        acked_total += after - before;
        // What must have survived: everything acked (always), or what was acked `window`
        // before the kill (everysec).
        let floors: Vec<[u64; 4]> = match window {
            None => models
                .iter()
                .map(|m| [m.uniq_done, m.incr_done, m.push_done, m.multi_done])
                .collect(),
            Some(w) => {
                let h = history.lock().unwrap();
                let old = h
                    .iter()
                    .rev()
                    .find(|(at, _)| killed_at.duration_since(*at) >= w);
                old.map_or_else(|| vec![[0; 4]; THREADS], |(_, s)| s.clone())
            }
        };
        let incr = current_incr(dir);
        flips += bit_flips(&incr, &mut rng, 20);
        if cycle % 2 == 1 {
            let mut bytes = std::fs::read(&incr).unwrap();
            bytes.extend_from_slice(&torn_frame());
            std::fs::write(&incr, bytes).unwrap();
        }
        let server = TestServer::start_in(dir, &args);
        let mut c = server.conn();
        for (m, floor) in models.iter_mut().zip(&floors) {
            verified += verify(&mut c, m, *floor);
        }
        drop(c);
        drop(server);
    }
    eprintln!(
        "aof torture ({policy}): {cycles} SIGKILL cycles, {acked_total} acknowledged writes, \
         {verified} write effects verified in total, {flips} bit flips detected, \
         {kills_in_rewrite} kills during a rewrite, {kills_in_bgsave} during a BGSAVE"
    );
    assert!(acked_total > 0);
}

#[test]
fn crash_recovery_always() {
    torture("always", cycles(5), (500, 2000), None);
}

#[test]
fn crash_recovery_everysec_loss_window() {
    // everysec bounds the loss on power loss to about 2 s (not testable here); a SIGKILL
    // loses nothing acknowledged, since replies wait until their writes are in the file (the
    // page cache survives the process). The 2 s bound is checked as well, then the exact one.
    torture(
        "everysec",
        cycles(3),
        (2500, 3500),
        Some(Duration::from_millis(2200)),
    );
    torture("everysec", cycles(2), (500, 1500), None);
}
