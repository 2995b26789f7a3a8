//! MEMORY: HELP, DOCTOR, STATS, MALLOC-STATS, PURGE (USAGE is covered by the type families).

mod common;

use common::TestServer;

const EMPTY_DOCTOR: &str = "Hi Sam, this instance is empty or is using very little memory, my \
    issues detector can't be used in these conditions. Please, leave for your mission on Earth \
    and fill it with some data. The new Sam and I will be back to our programming as soon as I \
    finished rebooting.\n";

#[test]
fn help_lists_the_subcommands_like_redis() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let lines: Vec<String> = redis::cmd("MEMORY").arg("HELP").query(&mut c).unwrap();
    assert_eq!(lines.len(), 14);
    assert_eq!(
        lines[0],
        "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    );
    assert_eq!(lines[1], "DOCTOR");
    assert_eq!(lines[9], "USAGE <key> [SAMPLES <count>]");
    assert_eq!(lines[13], "    Prints this help.");
}

#[test]
fn doctor_purge_and_errors() {
    let srv = TestServer::start(&[]);
    let mut raw = srv.raw();
    let doctor = raw.cmd(&["MEMORY", "DOCTOR"]);
    assert_eq!(
        doctor,
        format!("${}\r\n{EMPTY_DOCTOR}\r\n", EMPTY_DOCTOR.len()).into_bytes()
    );
    assert_eq!(raw.cmd(&["MEMORY", "PURGE"]), b"+OK\r\n");
    assert_eq!(
        raw.cmd(&["MEMORY", "STATS", "x"]),
        b"-ERR wrong number of arguments for 'memory|stats' command\r\n"
    );
    assert_eq!(
        raw.cmd(&["MEMORY", "FOO"]),
        b"-ERR unknown subcommand 'FOO'. Try MEMORY HELP.\r\n"
    );
    let stats = raw.cmd(&["MEMORY", "MALLOC-STATS"]);
    let stats = String::from_utf8_lossy(&stats);
    assert!(stats.contains("___ Begin jemalloc statistics ___"), "{stats}");
    assert!(stats.contains("Allocated: "), "{stats}");
}

/// With over 5 MB in use, the doctor makes its checks: over 1000 cached scripts are reported
/// in Redis's words (a release build reports exactly what redis-server 7.0 does for the same
/// data and scripts; a debug build's own text pages also show as process RSS overhead).
#[test]
fn doctor_reports_many_cached_scripts() {
    let srv = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut c = srv.conn();
    let populate = redis::cmd("DEBUG").arg("POPULATE").arg(100_000).arg("k").arg(100).clone();
    let _: () = populate.query(&mut c).unwrap();
    let doctor = |c: &mut redis::Connection| -> String {
        redis::cmd("MEMORY").arg("DOCTOR").query(c).unwrap()
    };
    const SCRIPTS: &str = " * Many scripts: There seem to be many cached scripts in this \
        instance (more than 1000). This may be because scripts are generated and `EVAL`ed, \
        instead of being parameterized (with KEYS and ARGV), `SCRIPT LOAD`ed and `EVALSHA`ed. \
        Unless `SCRIPT FLUSH` is called periodically, the scripts' caches may end up consuming \
        most of your memory.\n\n";
    let mut p = redis::pipe();
    for i in 0..1000 {
        p.cmd("SCRIPT").arg("LOAD").arg(format!("return {i}")).ignore();
    }
    let _: () = p.query(&mut c).unwrap();
    assert!(!doctor(&mut c).contains("Many scripts"));
    let _: String = redis::cmd("SCRIPT").arg("LOAD").arg("return 1000").query(&mut c).unwrap();
    let report = doctor(&mut c);
    assert!(report.starts_with("Sam, I detected a few issues in this Redis instance"), "{report}");
    let bye = "I'm here to keep you safe, Sam. I want to help you.\n";
    assert!(report.ends_with(&format!("{SCRIPTS}{bye}")), "{report}");
}

/// INFO memory's allocator figures are jemalloc's: allocations fit in the pages jemalloc has
/// active, which fit in what it holds resident.
#[test]
fn allocator_figures_are_jemallocs() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let info: String = redis::cmd("INFO").arg("memory").query(&mut c).unwrap();
    let field = |name: &str| -> String {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("{name} missing from {info}"))
            .to_string()
    };
    let num = |name: &str| field(name).parse::<u64>().unwrap();
    let (allocated, active, resident) =
        (num("allocator_allocated"), num("allocator_active"), num("allocator_resident"));
    assert!(allocated > 0 && allocated <= active && active <= resident, "{info}");
    assert!(field("mem_allocator").starts_with("jemalloc-5."), "{info}");
    let frag: f64 = field("allocator_frag_ratio").parse().unwrap();
    assert!(frag >= 1.0, "{info}");
    assert_eq!(num("used_memory_overhead") + num("used_memory_dataset"), num("used_memory"));
    assert_eq!(num("mem_cluster_links"), 0);
    let bg: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("jemalloc-bg-thread").query(&mut c).unwrap();
    assert_eq!(bg, ["jemalloc-bg-thread", "yes"]);
    let () = redis::cmd("CONFIG").arg("SET").arg("jemalloc-bg-thread").arg("no").query(&mut c).unwrap();
    let () = redis::cmd("CONFIG").arg("SET").arg("jemalloc-bg-thread").arg("yes").query(&mut c).unwrap();
}

/// A connection idle for over two seconds gives back its input and reply buffers (CLIENT LIST
/// shows `qbuf-free=0 rbs=0`, like Redis's trimmed query buffer), and takes them again when it
/// is used.
#[test]
fn idle_connections_give_back_their_buffers() {
    let srv = TestServer::start(&[]);
    let mut idle = srv.raw();
    assert_eq!(idle.cmd(&["CLIENT", "SETNAME", "idler"]), b"+OK\r\n");
    let mut c = srv.conn();
    let line = |c: &mut redis::Connection| -> String {
        let list: String = redis::cmd("CLIENT").arg("LIST").query(c).unwrap();
        list.lines().find(|l| l.contains("name=idler")).unwrap().to_string()
    };
    let busy = line(&mut c);
    assert!(busy.contains(" rbs=16384 ") && !busy.contains("qbuf-free=0 "), "{busy}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let l = line(&mut c);
        if l.contains(" qbuf=0 qbuf-free=0 ") && l.contains(" rbs=0 ") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never trimmed: {l}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // The big reply needs the buffer again; the connection is unharmed.
    let () = redis::cmd("SET").arg("big").arg(vec![b'x'; 100_000]).query(&mut c).unwrap();
    let reply = idle.cmd(&["GET", "big"]);
    assert_eq!(reply.len(), "$100000\r\n".len() + 100_000 + 2);
    assert_eq!(idle.cmd(&["PING"]), b"+PONG\r\n");
    let l = line(&mut c);
    assert!(!l.contains(" rbs=0 "), "{l}");
}

#[test]
fn stats_fields_and_values() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let () = redis::cmd("SET").arg("a").arg("1").query(&mut c).unwrap();
    let () = redis::cmd("SET")
        .arg("b")
        .arg("2")
        .arg("EX")
        .arg("100")
        .query(&mut c)
        .unwrap();
    let () = redis::cmd("SELECT").arg(3).query(&mut c).unwrap();
    let () = redis::cmd("SET").arg("c").arg("3").query(&mut c).unwrap();
    let _: String = redis::cmd("SCRIPT").arg("LOAD").arg("return 1").query(&mut c).unwrap();
    let v: Vec<redis::Value> = redis::cmd("MEMORY").arg("STATS").query(&mut c).unwrap();
    let names: Vec<String> = v
        .iter()
        .step_by(2)
        .map(|n| redis::from_redis_value(n).unwrap())
        .collect();
    let expected = [
        "peak.allocated",
        "total.allocated",
        "startup.allocated",
        "replication.backlog",
        "clients.slaves",
        "clients.normal",
        "cluster.links",
        "aof.buffer",
        "lua.caches",
        "functions.caches",
        "db.0",
        "db.3",
        "overhead.total",
        "keys.count",
        "keys.bytes-per-key",
        "dataset.bytes",
        "dataset.percentage",
        "peak.percentage",
        "allocator.allocated",
        "allocator.active",
        "allocator.resident",
        "allocator-fragmentation.ratio",
        "allocator-fragmentation.bytes",
        "allocator-rss.ratio",
        "allocator-rss.bytes",
        "rss-overhead.ratio",
        "rss-overhead.bytes",
        "fragmentation",
        "fragmentation.bytes",
    ];
    assert_eq!(names, expected);
    let field = |name: &str| -> &redis::Value {
        let i = names.iter().position(|n| n == name).unwrap();
        &v[2 * i + 1]
    };
    let int = |name: &str| -> i64 { redis::from_redis_value(field(name)).unwrap() };
    assert_eq!(int("keys.count"), 3);
    let total = int("total.allocated");
    assert!(total > 0 && total <= int("peak.allocated"));
    assert!(int("startup.allocated") > 0 && int("startup.allocated") < total);
    let db0: Vec<redis::Value> = redis::from_redis_value(field("db.0")).unwrap();
    let main: i64 = redis::from_redis_value(&db0[1]).unwrap();
    let expires: i64 = redis::from_redis_value(&db0[3]).unwrap();
    assert!(main > expires && expires > 0);
    // The script cache is counted (INFO's used_memory_scripts_eval), functions are none.
    let info: String = redis::cmd("INFO").arg("memory").query(&mut c).unwrap();
    let eval_cache: i64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory_scripts_eval:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(eval_cache > 0);
    assert_eq!(int("lua.caches"), eval_cache);
    assert_eq!(int("functions.caches"), 0);
    assert_eq!(int("replication.backlog"), 0, "no replica has asked for a backlog yet");
}

fn used_memory(c: &mut redis::Connection) -> i64 {
    let info: String = redis::cmd("INFO").arg("memory").query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// A connection that sent one huge request (and got one huge reply) gives the buffers back
/// once they are empty, as Redis shrinks its clients' query buffers: after the data is gone,
/// used_memory returns near where it started although the connection stays open.
#[test]
fn a_huge_request_does_not_pin_buffers() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let before = used_memory(&mut c);
    let mut sadd = redis::cmd("SADD");
    sadd.arg("myset");
    for i in 0..100_000 {
        sadd.arg(i);
    }
    let added: i64 = sadd.query(&mut c).unwrap();
    assert_eq!(added, 100_000);
    let members: Vec<String> = redis::cmd("SMEMBERS").arg("myset").query(&mut c).unwrap();
    assert_eq!(members.len(), 100_000);
    let peak = used_memory(&mut c);
    assert!(peak > before + 1_000_000, "{before} -> {peak}");
    let _: i64 = redis::cmd("UNLINK").arg("myset").query(&mut c).unwrap();
    // UNLINK frees the set on the lazy-free thread: wait for it.
    let start = std::time::Instant::now();
    let mut after = used_memory(&mut c);
    while after >= before + 300_000 && start.elapsed().as_secs() < 5 {
        std::thread::sleep(std::time::Duration::from_millis(10));
        after = used_memory(&mut c);
    }
    assert!(after < before + 300_000, "before {before}, peak {peak}, after {after}");
}

fn info_u64(c: &mut redis::Connection, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("memory").query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// A set of 1000 members: a hash table whose free effort is over the lazy-free threshold.
fn fill_big_set(c: &mut redis::Connection, key: &str) {
    let mut sadd = redis::cmd("SADD");
    sadd.arg(key);
    for i in 0..1000 {
        sadd.arg(format!("m{i}"));
    }
    let _: i64 = sadd.query(c).unwrap();
}

fn wait_lazyfreed(c: &mut redis::Connection, n: u64) {
    let start = std::time::Instant::now();
    while info_u64(c, "lazyfreed_objects") < n {
        assert!(start.elapsed().as_secs() < 10, "lazyfreed_objects never reached {n}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(info_u64(c, "lazyfreed_objects"), n);
    assert_eq!(info_u64(c, "lazyfree_pending_objects"), 0);
}

/// UNLINK frees a big collection on the lazy-free thread (counted in INFO), a small value in
/// place; DEL frees in place unless lazyfree-lazy-user-del; FLUSHALL ASYNC counts its keys.
#[test]
fn unlink_and_flush_async_free_big_values_in_the_background() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let fill = fill_big_set;
    fill(&mut c, "big");
    let _: () = redis::cmd("SET").arg("small").arg("v").query(&mut c).unwrap();
    let n: i64 = redis::cmd("UNLINK").arg("big").arg("small").query(&mut c).unwrap();
    assert_eq!(n, 2);
    wait_lazyfreed(&mut c, 1);
    fill(&mut c, "big");
    let _: i64 = redis::cmd("DEL").arg("big").query(&mut c).unwrap();
    wait_lazyfreed(&mut c, 1);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("lazyfree-lazy-user-del").arg("yes")
        .query(&mut c).unwrap();
    fill(&mut c, "big");
    let _: i64 = redis::cmd("DEL").arg("big").query(&mut c).unwrap();
    wait_lazyfreed(&mut c, 2);
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    assert_eq!(info_u64(&mut c, "lazyfreed_objects"), 0);
    for i in 0..100 {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg(i).query(&mut c).unwrap();
    }
    let _: () = redis::cmd("FLUSHALL").arg("ASYNC").query(&mut c).unwrap();
    wait_lazyfreed(&mut c, 100);
}

/// `lazyfree-lazy-expire` frees expired big values on the lazy-free thread, both when a lookup
/// finds them expired and in the active expire cycle; without it they are freed in place.
#[test]
fn lazy_expire_frees_expired_big_values_in_the_background() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let fill = |c: &mut redis::Connection, key: &str| {
        fill_big_set(c, key);
        let _: i64 = redis::cmd("PEXPIRE").arg(key).arg(1).query(c).unwrap();
    };
    // In place by default.
    fill(&mut c, "a");
    std::thread::sleep(std::time::Duration::from_millis(5));
    let _: i64 = redis::cmd("EXISTS").arg("a").query(&mut c).unwrap();
    assert_eq!(info_u64(&mut c, "lazyfreed_objects"), 0);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("lazyfree-lazy-expire").arg("yes")
        .query(&mut c).unwrap();
    // Found expired by a lookup.
    fill(&mut c, "b");
    std::thread::sleep(std::time::Duration::from_millis(5));
    let n: i64 = redis::cmd("EXISTS").arg("b").query(&mut c).unwrap();
    assert_eq!(n, 0);
    wait_lazyfreed(&mut c, 1);
    // Found by the active expire cycle (nobody touches the key).
    fill(&mut c, "c");
    let start = std::time::Instant::now();
    while info_u64(&mut c, "lazyfreed_objects") < 2 {
        assert!(start.elapsed().as_secs() < 10, "the expire cycle never freed c");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let keys: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(keys, 0);
}
