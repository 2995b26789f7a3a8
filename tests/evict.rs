//! maxmemory: eviction policies, the OOM refusal, OBJECT FREQ / IDLETIME under LFU.
//!
//! Memory is measured by the counting allocator that only the server binary installs, so every
//! test here runs against a spawned server.

mod common;

use common::TestServer;

const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

fn info_field(c: &mut redis::Connection, section: &str, field: &str) -> u64 {
    let text: String = redis::cmd("INFO").arg(section).query(c).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO {section}"))
}

fn config_set(c: &mut redis::Connection, name: &str, value: &str) {
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query(c)
        .unwrap();
}

/// Writes `n` keys `prefix{i}` with 1 KB values, `EX ex` if given, pipelined in batches.
/// Returns the error replies.
fn write_keys(c: &mut redis::Connection, prefix: &str, n: usize, ex: Option<u64>) -> Vec<String> {
    let value = vec![b'x'; 1024];
    let mut errors = Vec::new();
    for start in (0..n).step_by(500) {
        let mut p = redis::pipe();
        for i in start..(start + 500).min(n) {
            let cmd = p.cmd("SET").arg(format!("{prefix}{i}")).arg(&value[..]);
            if let Some(ex) = ex {
                cmd.arg("EX").arg(ex + i as u64);
            }
        }
        let replies: Vec<redis::Value> = p.query(c).unwrap();
        for r in replies {
            if let redis::Value::ServerError(e) = r {
                errors.push(format!("{} {}", e.code(), e.details().unwrap_or("")));
            }
        }
    }
    errors
}

#[test]
fn session_store_keeps_running_at_the_limit() {
    let srv = TestServer::start(&["--maxmemory", "20mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut c = srv.conn();
    let errors = write_keys(&mut c, "session:", 60_000, Some(3600));
    assert!(
        errors.is_empty(),
        "errors: {:?}",
        &errors[..errors.len().min(3)]
    );
    let used = info_field(&mut c, "memory", "used_memory");
    let limit = 20 * 1024 * 1024;
    assert!(
        used <= limit + limit / 20,
        "used_memory {used} far above the limit"
    );
    assert!(
        used >= limit / 2,
        "used_memory {used}: evicted far too much"
    );
    let evicted = info_field(&mut c, "stats", "evicted_keys");
    let dbsize: u64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert!(evicted > 0);
    assert_eq!(evicted + dbsize, 60_000);
    // The most recent writes survive an LRU policy.
    let last: Option<Vec<u8>> = redis::cmd("GET")
        .arg("session:59999")
        .query(&mut c)
        .unwrap();
    assert_eq!(last.map(|v| v.len()), Some(1024));
}

#[test]
fn noeviction_refuses_denyoom_commands_only() {
    let srv = TestServer::start(&["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"]);
    let mut c = srv.conn();
    let value = vec![b'x'; 1024];
    let mut errors = Vec::new();
    for i in 0..4000 {
        let r: redis::RedisResult<()> = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(&value[..])
            .query(&mut c);
        if let Err(e) = r {
            errors.push(format!(
                "{} {}",
                e.code().unwrap_or(""),
                e.detail().unwrap_or("")
            ));
        }
    }
    assert!(errors.len() > 1000, "{} refusals", errors.len());
    assert!(errors.iter().all(|e| e == OOM), "{:?}", errors[0]);
    let mut raw = srv.raw();
    assert_eq!(
        raw.cmd(&["SET", "foo", "bar"]),
        format!("-{OOM}\r\n").into_bytes()
    );
    assert_eq!(raw.cmd(&["GET", "k0"]).len(), 1024 + 9);
    assert_eq!(raw.cmd(&["DEL", "k0", "k1"]), b":2\r\n");
    let stats: String = redis::cmd("INFO").arg("errorstats").query(&mut c).unwrap();
    assert!(stats.contains("errorstat_OOM:count="), "{stats}");
    assert_eq!(info_field(&mut c, "stats", "evicted_keys"), 0);
    let () = redis::cmd("FLUSHALL").query(&mut c).unwrap();
    assert_eq!(raw.cmd(&["SET", "foo", "bar"]), b"+OK\r\n");
}

#[test]
fn volatile_ttl_evicts_the_soonest_expiring_keys_first() {
    let srv = TestServer::start(&["--maxmemory-policy", "volatile-ttl"]);
    let mut c = srv.conn();
    // Sampling every key makes the choice exact, so the order can be asserted.
    config_set(&mut c, "maxmemory-samples", "1000");
    assert!(write_keys(&mut c, "p", 200, None).is_empty());
    assert!(write_keys(&mut c, "t", 400, Some(1000)).is_empty());
    let used = info_field(&mut c, "memory", "used_memory");
    config_set(&mut c, "maxmemory", &(used - 100 * 1024).to_string());
    let _: () = redis::cmd("SET")
        .arg("trigger")
        .arg("x")
        .query(&mut c)
        .unwrap();
    let present: Vec<bool> = (0..400)
        .map(|i| {
            redis::cmd("EXISTS")
                .arg(format!("t{i}"))
                .query(&mut c)
                .unwrap()
        })
        .collect();
    // What is left is exactly the latest-expiring keys: a suffix of t0..t399.
    let first = present.iter().position(|&p| p).unwrap_or(400);
    assert!(first >= 10, "only {first} keys evicted");
    assert!(
        present[first..].iter().all(|&p| p),
        "evictions out of TTL order"
    );
    for i in 0..200 {
        let exists: bool = redis::cmd("EXISTS")
            .arg(format!("p{i}"))
            .query(&mut c)
            .unwrap();
        assert!(exists, "persistent key p{i} evicted");
    }
}

#[test]
fn volatile_policy_without_volatile_keys_is_out_of_memory() {
    let srv = TestServer::start(&["--maxmemory-policy", "volatile-lru"]);
    let mut c = srv.conn();
    assert!(write_keys(&mut c, "p", 300, None).is_empty());
    let used = info_field(&mut c, "memory", "used_memory");
    config_set(&mut c, "maxmemory", &(used - 50 * 1024).to_string());
    let mut raw = srv.raw();
    assert_eq!(
        raw.cmd(&["SET", "foo", "bar"]),
        format!("-{OOM}\r\n").into_bytes()
    );
    assert_eq!(info_field(&mut c, "stats", "evicted_keys"), 0);
    config_set(&mut c, "maxmemory-policy", "allkeys-random");
    assert_eq!(raw.cmd(&["SET", "foo", "bar"]), b"+OK\r\n");
    assert!(info_field(&mut c, "stats", "evicted_keys") > 0);
}

#[test]
fn allkeys_lfu_keeps_frequently_read_keys() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    // A log factor of 0 makes every access count, so the hot keys' counters are known.
    config_set(&mut c, "lfu-log-factor", "0");
    config_set(&mut c, "maxmemory-policy", "allkeys-lfu");
    assert!(write_keys(&mut c, "hot", 20, None).is_empty());
    for _ in 0..30 {
        let mut p = redis::pipe();
        for i in 0..20 {
            p.cmd("GET").arg(format!("hot{i}")).ignore();
        }
        let () = p.query(&mut c).unwrap();
    }
    let freq: i64 = redis::cmd("OBJECT")
        .arg("FREQ")
        .arg("hot0")
        .query(&mut c)
        .unwrap();
    assert_eq!(freq, 35);
    config_set(&mut c, "maxmemory", "4mb");
    assert!(write_keys(&mut c, "cold", 8000, None).is_empty());
    assert!(info_field(&mut c, "stats", "evicted_keys") > 1000);
    for i in 0..20 {
        let exists: bool = redis::cmd("EXISTS")
            .arg(format!("hot{i}"))
            .query(&mut c)
            .unwrap();
        assert!(exists, "hot{i} was evicted");
    }
}

#[test]
fn object_freq_and_idletime_follow_the_policy() {
    let srv = TestServer::start(&[]);
    let mut raw = srv.raw();
    assert_eq!(raw.cmd(&["SET", "k", "abc"]), b"+OK\r\n");
    // Whole seconds of LRU clock: one tick may fall between the two commands.
    let idle = raw.cmd(&["OBJECT", "IDLETIME", "k"]);
    assert!(idle == b":0\r\n" || idle == b":1\r\n", "{:?}", String::from_utf8_lossy(&idle));
    assert_eq!(
        raw.cmd(&["OBJECT", "FREQ", "k"]),
        b"-ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please \
          note that when switching between policies at runtime LRU and LFU data will take some \
          time to adjust.\r\n"
    );
    assert_eq!(
        raw.cmd(&["CONFIG", "SET", "lfu-log-factor", "0"]),
        b"+OK\r\n"
    );
    assert_eq!(
        raw.cmd(&["CONFIG", "SET", "maxmemory-policy", "volatile-lfu"]),
        b"+OK\r\n"
    );
    assert_eq!(raw.cmd(&["SET", "n", "abc"]), b"+OK\r\n");
    assert_eq!(raw.cmd(&["OBJECT", "FREQ", "n"]), b":5\r\n");
    raw.cmd(&["GET", "n"]);
    raw.cmd(&["GET", "n"]);
    assert_eq!(raw.cmd(&["OBJECT", "FREQ", "n"]), b":7\r\n");
    // An overwrite keeps the counter (and its own lookup counts as an access).
    raw.cmd(&["APPEND", "n", "d"]);
    assert_eq!(raw.cmd(&["OBJECT", "FREQ", "n"]), b":8\r\n");
    assert_eq!(raw.cmd(&["OBJECT", "FREQ", "missing"]), b"$-1\r\n");
    assert_eq!(
        raw.cmd(&["OBJECT", "IDLETIME", "n"]),
        b"-ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that \
          when switching between policies at runtime LRU and LFU data will take some time to \
          adjust.\r\n"
    );
}

/// With `lazyfree-lazy-eviction`, evicted big collections are freed on the lazy-free thread,
/// and eviction still stops near the limit instead of emptying the database while it waits
/// for that thread (it re-reads the memory every 16 keys, as Redis does).
#[test]
fn lazy_eviction_frees_in_the_background_and_stops_at_the_limit() {
    let srv = TestServer::start(&[
        "--maxmemory",
        "8mb",
        "--maxmemory-policy",
        "allkeys-random",
        "--lazyfree-lazy-eviction",
        "yes",
    ]);
    let mut c = srv.conn();
    for k in 0..400 {
        let mut sadd = redis::cmd("SADD");
        sadd.arg(format!("set:{k}"));
        for i in 0..1000 {
            sadd.arg(format!("member-{i}"));
        }
        let _: i64 = sadd.query(&mut c).unwrap();
    }
    let evicted = info_field(&mut c, "stats", "evicted_keys");
    assert!(evicted > 0, "nothing was evicted");
    let start = std::time::Instant::now();
    while info_field(&mut c, "memory", "lazyfreed_objects") == 0 {
        assert!(start.elapsed().as_secs() < 10, "no eviction went through the lazy-free thread");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let keys: u64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert!(keys > 50, "eviction emptied the database: {keys} keys left, {evicted} evicted");
}
