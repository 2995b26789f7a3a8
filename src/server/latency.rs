//! The latency monitor (LATENCY LATEST / HISTORY / GRAPH / DOCTOR / RESET): for each kind of
//! event that can stall the event loop (a slow command, an expire or eviction cycle, ...), the
//! worst latency of each of the last 160 seconds in which one went over
//! `latency-monitor-threshold` milliseconds, and the worst ever.
//!
//! Why per second and bounded: the monitor is meant to stay on in production, so one spike
//! costs one slot, and a storm of them in the same second costs nothing more.

/// Seconds of history kept per event.
const HISTORY: usize = 160;
/// Width of LATENCY GRAPH's sparkline.
const GRAPH_COLS: usize = 80;

#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Unix seconds; 0 marks an unused slot.
    pub time: u64,
    /// Milliseconds.
    pub latency: u64,
}

#[derive(Debug, Clone)]
pub struct Series {
    /// Where the next second's sample goes.
    idx: usize,
    /// Worst latency ever seen (survives the ring's wrap-around, not RESET).
    pub max: u64,
    samples: [Sample; HISTORY],
}

impl Series {
    fn new() -> Series {
        Series { idx: 0, max: 0, samples: [Sample::default(); HISTORY] }
    }

    /// The most recent sample.
    pub fn latest(&self) -> Sample {
        self.samples[(self.idx + HISTORY - 1) % HISTORY]
    }

    /// Used samples, oldest first.
    pub fn history(&self) -> impl Iterator<Item = Sample> + '_ {
        (0..HISTORY).map(|j| self.samples[(self.idx + j) % HISTORY]).filter(|s| s.time != 0)
    }
}

/// The monitored events, in the order they first happened.
#[derive(Debug, Default)]
pub struct LatencyMonitor {
    events: Vec<(&'static str, Series)>,
}

impl LatencyMonitor {
    /// Records `ms` for `event` when the monitor is on (`threshold` > 0) and `ms` reaches it.
    #[inline]
    pub fn add_if_needed(&mut self, event: &'static str, ms: u64, threshold: i64, now_secs: u64) {
        if threshold > 0 && ms >= threshold as u64 {
            self.add(event, ms, now_secs);
        }
    }

    /// Records one sample: a second already sampled keeps its worst latency.
    pub fn add(&mut self, event: &'static str, ms: u64, now_secs: u64) {
        let pos = match self.events.iter().position(|(e, _)| *e == event) {
            Some(p) => p,
            None => {
                self.events.push((event, Series::new()));
                self.events.len() - 1
            }
        };
        let ts = &mut self.events[pos].1;
        ts.max = ts.max.max(ms);
        let prev = (ts.idx + HISTORY - 1) % HISTORY;
        if ts.samples[prev].time == now_secs {
            ts.samples[prev].latency = ts.samples[prev].latency.max(ms);
            return;
        }
        ts.samples[ts.idx] = Sample { time: now_secs, latency: ms };
        ts.idx = (ts.idx + 1) % HISTORY;
    }

    pub fn get(&self, event: &[u8]) -> Option<&Series> {
        self.events.iter().find(|(e, _)| e.as_bytes() == event).map(|(_, s)| s)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Series)> {
        self.events.iter().map(|(e, s)| (*e, s))
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Forgets one event; returns whether it existed.
    pub fn reset_event(&mut self, event: &[u8]) -> bool {
        let before = self.events.len();
        self.events.retain(|(e, _)| e.as_bytes() != event);
        self.events.len() != before
    }

    /// Forgets every event; returns how many there were.
    pub fn reset_all(&mut self) -> usize {
        std::mem::take(&mut self.events).len()
    }
}

/// LATENCY GRAPH's text: a title line, a rule, and an ASCII sparkline of the samples (four
/// rows high, filled), each column labelled with how long ago it happened.
pub fn graph(event: &str, ts: &Series, now_secs: u64) -> String {
    let samples: Vec<Sample> = ts.history().collect();
    let (min, max) = samples.iter().fold((u64::MAX, 0), |(lo, hi), s| {
        (lo.min(s.latency), hi.max(s.latency))
    });
    let min = if samples.is_empty() { 0 } else { min };
    let mut out = format!(
        "{event} - high {max} ms, low {min} ms (all time high {} ms)\n",
        ts.max
    );
    out.push_str(&"-".repeat(GRAPH_COLS));
    out.push('\n');
    let labels: Vec<String> =
        samples.iter().map(|s| age_label(now_secs.saturating_sub(s.time))).collect();
    let values: Vec<f64> = samples.iter().map(|s| s.latency as f64).collect();
    for (n, start) in (0..values.len()).step_by(GRAPH_COLS).enumerate() {
        if n != 0 {
            out.push('\n');
        }
        let end = (start + GRAPH_COLS).min(values.len());
        sparkline(&mut out, &values, &labels[start..end], start, end, min as f64, max as f64);
    }
    out
}

/// "12s", "3m", "5h", "2d": how long ago, in the largest unit that fits.
fn age_label(elapsed: u64) -> String {
    match elapsed {
        e if e < 60 => format!("{e}s"),
        e if e < 3600 => format!("{}m", e / 60),
        e if e < 86_400 => format!("{}h", e / 3600),
        e => format!("{}d", e / 86_400),
    }
}

/// Renders `values[start..end]` as a four-row filled sparkline scaled between `min` and
/// `max`, then the labels written vertically under it after one blank row (the layout of
/// Redis's graphs, so tools that show them keep working).
fn sparkline(out: &mut String, values: &[f64], labels: &[String], start: usize, end: usize,
             min: f64, max: f64) {
    const FILL: &[u8] = b"_o#";
    const ROWS: usize = 4;
    let steps = (FILL.len() * ROWS) as f64;
    let range = if max - min == 0.0 { 1.0 } else { max - min };
    let len = end - start;
    let step_of = |v: f64| ((((v - min) * steps) as i64) as f64 / range) as i64;
    let steps_max = (FILL.len() * ROWS) as i64;
    let mut row = 0;
    loop {
        let mut line = vec![b' '; len];
        let mut more = false;
        for (j, c) in line.iter_mut().enumerate() {
            if row < ROWS {
                more = true;
                let step = step_of(values[start + j]).clamp(0, steps_max - 1);
                let idx = step - ((ROWS - row - 1) * FILL.len()) as i64;
                if (0..FILL.len() as i64).contains(&idx) {
                    *c = FILL[idx as usize];
                } else if idx >= FILL.len() as i64 {
                    *c = b'|';
                }
            } else if row == ROWS {
                // The blank row between the graph and its labels.
                more = true;
                break;
            } else if let Some(ch) = labels[j].as_bytes().get(row - ROWS - 1) {
                more = true;
                *c = *ch;
            }
        }
        if !more {
            return;
        }
        if row == ROWS {
            line.fill(b' ');
        }
        out.push_str(&String::from_utf8_lossy(&line));
        out.push('\n');
        row += 1;
    }
}

/// What LATENCY DOCTOR summarises for one event.
struct EventStats {
    samples: u64,
    avg: u64,
    mad: u64,
    period: u64,
}

fn analyze(ts: &Series, now_secs: u64) -> EventStats {
    let used: Vec<Sample> = ts.samples.iter().copied().filter(|s| s.time != 0).collect();
    let n = used.len() as u64;
    if n == 0 {
        return EventStats { samples: 0, avg: 0, mad: 0, period: 0 };
    }
    let avg = used.iter().map(|s| s.latency).sum::<u64>() / n;
    let oldest = used.iter().map(|s| s.time).min().unwrap_or(now_secs);
    let period = now_secs.saturating_sub(oldest).max(1);
    let mad = used.iter().map(|s| s.latency.abs_diff(avg)).sum::<u64>() / n;
    EventStats { samples: n, avg, mad, period }
}

/// The configuration LATENCY DOCTOR's advice depends on.
pub struct DoctorConfig {
    pub threshold: i64,
    pub slowlog_slower_than: i64,
    pub hz: i64,
    pub fsync_always: bool,
    /// Anonymous huge pages mapped by this process, in bytes.
    pub anon_huge_pages: u64,
}

/// Advice LATENCY DOCTOR can give, in the order it is printed.
#[derive(Default)]
struct Advice {
    slowlog_enabled: bool,
    slowlog_tuning: bool,
    slowlog_inspect: bool,
    scheduler: bool,
    local_disk: bool,
    ssd: bool,
    data_writeback: bool,
    disk_contention: bool,
    no_appendfsync: bool,
    relax_fsync: bool,
    write_load_info: bool,
    hz: bool,
    large_objects: bool,
    mass_eviction: bool,
    disable_thp: bool,
    count: usize,
}

/// LATENCY DOCTOR's report: each event's statistics, then the advice they call for, in Redis's
/// words (people and tools compare this text with what Redis prints).
pub fn doctor(mon: &LatencyMonitor, cfg: &DoctorConfig, now_secs: u64) -> String {
    if mon.is_empty() && cfg.threshold == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis \
instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable \
it. If we weren't in a deep space mission I'd suggest to take a look at \
https://redis.io/topics/latency-monitor.\n"
            .to_string();
    }
    let mut report = String::new();
    let mut a = Advice::default();
    for (n, (event, ts)) in mon.iter().enumerate() {
        if n == 0 {
            report.push_str(
                "Dave, I have observed latency spikes in this Redis instance. You don't mind \
talking about it, do you Dave?\n\n",
            );
        }
        let st = analyze(ts, now_secs);
        report.push_str(&format!(
            "{}. {event}: {} latency spikes (average {}ms, mean deviation {}ms, period {:.2} \
sec). Worst all time event {}ms.",
            n + 1,
            st.samples,
            st.avg,
            st.mad,
            st.period as f64 / st.samples.max(1) as f64,
            ts.max
        ));
        advise_for(event, cfg, &mut a);
        report.push('\n');
    }
    if cfg.anon_huge_pages > 0 {
        a.disable_thp = true;
        a.count += 1;
    }
    if mon.is_empty() && a.count == 0 {
        report.push_str(
            "Dave, no latency spike was observed during the lifetime of this Redis instance, not \
in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think \
things over.\n",
        );
    } else if a.count == 0 {
        report.push_str(
            "\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please \
use the Redis community to get some help, providing this report in your help request.\n",
        );
    } else {
        report.push_str("\nI have a few advices for you:\n\n");
        write_advice(&mut report, &a, cfg);
    }
    report
}

fn advise_for(event: &str, cfg: &DoctorConfig, a: &mut Advice) {
    match event {
        "command" => {
            if cfg.slowlog_slower_than < 0 {
                a.slowlog_enabled = true;
                a.count += 1;
            } else if cfg.slowlog_slower_than / 1000 > cfg.threshold {
                a.slowlog_tuning = true;
                a.count += 1;
            }
            a.slowlog_inspect = true;
            a.large_objects = true;
            a.count += 2;
        }
        "fast-command" => {
            a.scheduler = true;
            a.count += 1;
        }
        "aof-write-pending-fsync" => {
            (a.local_disk, a.disk_contention, a.ssd, a.data_writeback) = (true, true, true, true);
            a.count += 4;
        }
        "aof-write-alone" => {
            (a.local_disk, a.data_writeback, a.ssd) = (true, true, true);
            a.count += 3;
        }
        "aof-fsync-always" => {
            a.relax_fsync = true;
            a.count += 1;
        }
        "aof-fstat" | "rdb-unlink-temp-file" => {
            (a.disk_contention, a.local_disk) = (true, true);
            a.count += 2;
        }
        "aof-rename" => {
            (a.write_load_info, a.data_writeback, a.ssd, a.local_disk) = (true, true, true, true);
            a.count += 4;
        }
        "expire-cycle" => {
            (a.hz, a.large_objects) = (true, true);
            a.count += 2;
        }
        "eviction-del" => {
            a.large_objects = true;
            a.count += 1;
        }
        "eviction-cycle" => {
            a.mass_eviction = true;
            a.count += 1;
        }
        _ => {}
    }
}

fn write_advice(r: &mut String, a: &Advice, cfg: &DoctorConfig) {
    let slowlog_us = cfg.threshold.max(0) as u64 * 1000;
    if a.slowlog_enabled {
        r.push_str(&format!("- There are latency issues with potentially slow commands you are \
            using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET \
            slowlog-log-slower-than {slowlog_us}'. If the Slow log is disabled Redis is not able \
            to log slow commands execution for you.\n"));
    }
    if a.slowlog_tuning {
        r.push_str(&format!("- Your current Slow Log configuration only logs events that are \
            slower than your configured latency monitor threshold. Please use 'CONFIG SET \
            slowlog-log-slower-than {slowlog_us}'.\n"));
    }
    if a.slowlog_inspect {
        r.push_str("- Check your Slow Log to understand what are the commands you are running \
            which are too slow to execute. Please check https://redis.io/commands/slowlog for \
            more information.\n");
    }
    if a.scheduler {
        r.push_str("- The system is slow to execute Redis code paths not containing system calls. \
            This usually means the system does not provide Redis CPU time to run for long \
            periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM \
            just for Redis if you are running other software in the same system.\n  3) Check if \
            you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli \
            --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) Check if \
            the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are \
            using Jemalloc. However this may create fragmentation problems.\n");
    }
    if a.local_disk {
        r.push_str("- It is strongly advised to use local disks for persistence, especially if \
            you are using AOF. Remote disks provided by platform-as-a-service providers are known \
            to be slow.\n");
    }
    if a.ssd {
        r.push_str("- SSD disks are able to reduce fsync latency, and total time needed for \
            snapshotting and AOF log rewriting (resulting in smaller memory usage). With \
            extremely high write load SSD disks can be a good option. However Redis should \
            perform reasonably with high load using normal disks. Use this advice as a last \
            resort.\n");
    }
    if a.data_writeback {
        r.push_str("- Mounting ext3/4 filesystems with data=writeback can provide a performance \
            boost compared to data=ordered, however this mode of operation provides less \
            guarantees, and sometimes it can happen that after a hard crash the AOF file will \
            have a half-written command at the end and will require to be repaired before Redis \
            restarts.\n");
    }
    if a.disk_contention {
        r.push_str("- Try to lower the disk contention. This is often caused by other disk \
            intensive processes running in the same computer (including other Redis instances).\n");
    }
    if a.no_appendfsync {
        r.push_str("- Assuming from the point of view of data safety this is viable in your \
            environment, you could try to enable the 'no-appendfsync-on-rewrite' option, so that \
            fsync will not be performed while there is a child rewriting the AOF file or \
            producing an RDB file (the moment where there is high disk contention).\n");
    }
    if a.relax_fsync && cfg.fsync_always {
        r.push_str("- Your fsync policy is set to 'always'. It is very hard to get good \
            performances with such a setup, if possible try to relax the fsync policy to \
            'onesec'.\n");
    }
    if a.write_load_info {
        r.push_str("- Latency during the AOF atomic rename operation or when the final difference \
            is flushed to the AOF file at the end of the rewrite, sometimes is caused by very \
            high write load, causing the AOF buffer to get very large. If possible try to send \
            less commands to accomplish the same work, or use Lua scripts to group multiple \
            operations into a single EVALSHA call.\n");
    }
    if a.hz && cfg.hz < 100 {
        r.push_str("- In order to make the Redis keys expiring process more incremental, try to \
            set the 'hz' configuration parameter to 100 using 'CONFIG SET hz 100'.\n");
    }
    if a.large_objects {
        r.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects \
            is a blocking operation. If you have very large objects that are often deleted, \
            expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
    }
    if a.mass_eviction {
        r.push_str("- Sudden changes to the 'maxmemory' setting via 'CONFIG SET', or allocation \
            of large objects via sets or sorted sets intersections, STORE option of SORT, Redis \
            Cluster large keys migrations (RESTORE command), may create sudden memory pressure \
            forcing the server to block trying to evict keys. \n");
    }
    if a.disable_thp {
        r.push_str("- I detected a non zero amount of anonymous huge pages used by your process. \
            This creates very serious latency events in different conditions, especially when \
            Redis is persisting on disk. To disable THP support use the command 'echo never > \
            /sys/kernel/mm/transparent_hugepage/enabled', make sure to also add it into \
            /etc/rc.local so that the command will be executed again after a reboot. Note that \
            even if you have already disabled THP, you still need to restart the Redis process to \
            get rid of the huge pages already created.\n");
    }
}

/// Anonymous huge pages mapped by this process (`AnonHugePages` in `/proc/self/smaps_rollup`),
/// in bytes; 0 where that is not available.
pub fn anon_huge_pages() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/smaps_rollup") else {
        return 0;
    };
    text.lines()
        .filter_map(|l| l.strip_prefix("AnonHugePages:"))
        .filter_map(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .sum::<u64>()
        * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_second_keeps_the_worst() {
        let mut m = LatencyMonitor::default();
        m.add_if_needed("command", 5, 0, 100);
        assert!(m.is_empty(), "threshold 0 disables the monitor");
        m.add_if_needed("command", 5, 10, 100);
        assert!(m.is_empty());
        m.add_if_needed("command", 30, 10, 100);
        m.add_if_needed("command", 20, 10, 100);
        m.add_if_needed("command", 50, 10, 101);
        let ts = m.get(b"command").unwrap();
        let h: Vec<(u64, u64)> = ts.history().map(|s| (s.time, s.latency)).collect();
        assert_eq!(h, vec![(100, 30), (101, 50)]);
        assert_eq!((ts.latest().time, ts.latest().latency, ts.max), (101, 50, 50));
        assert!(m.reset_event(b"command"));
        assert!(!m.reset_event(b"command"));
    }

    #[test]
    fn history_wraps_after_160_seconds() {
        let mut m = LatencyMonitor::default();
        for t in 1..=200 {
            m.add("expire-cycle", t, t);
        }
        let ts = m.get(b"expire-cycle").unwrap();
        let h: Vec<u64> = ts.history().map(|s| s.time).collect();
        assert_eq!(h.len(), HISTORY);
        assert_eq!((h[0], h[HISTORY - 1]), (41, 200));
        assert_eq!(m.reset_all(), 1);
    }

    #[test]
    fn graph_layout() {
        let mut m = LatencyMonitor::default();
        m.add("command", 300, 1000);
        m.add("command", 400, 1001);
        m.add("command", 500, 1002);
        let g = graph("command", m.get(b"command").unwrap(), 1012);
        let want = "command - high 500 ms, low 300 ms (all time high 500 ms)\n".to_string()
            + &"-".repeat(80)
            + "\n  #\n _|\n ||\n_||\n   \n111\n210\nsss\n";
        assert_eq!(g, want);
    }

    #[test]
    fn doctor_without_events() {
        let cfg = DoctorConfig {
            threshold: 0,
            slowlog_slower_than: 10000,
            hz: 10,
            fsync_always: false,
            anon_huge_pages: 0,
        };
        assert!(doctor(&LatencyMonitor::default(), &cfg, 0).starts_with("I'm sorry, Dave"));
        let cfg = DoctorConfig { threshold: 100, ..cfg };
        assert!(doctor(&LatencyMonitor::default(), &cfg, 0).starts_with("Dave, no latency spike"));
        let mut m = LatencyMonitor::default();
        m.add("command", 300, 1000);
        let r = doctor(&m, &cfg, 1010);
        assert!(r.contains("1. command: 1 latency spikes (average 300ms, mean deviation 0ms, \
period 10.00 sec). Worst all time event 300ms.\n"), "{r}");
        assert!(r.contains("- Check your Slow Log"), "{r}");
    }
}
