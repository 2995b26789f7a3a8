//! Rewrites of the append-only log: BGREWRITEAOF under write load, crashes around rewrites,
//! automatic rewrites, CONFIG SET appendonly at runtime, replies and INFO fields.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{err, q, TestServer};

/// A server in `dir` with the DEBUG command enabled.
fn start_in(dir: &Path, extra: &[&str]) -> TestServer {
    let mut args = vec!["--enable-debug-command", "yes"];
    args.extend_from_slice(extra);
    TestServer::start_in(dir, &args)
}

fn start(extra: &[&str]) -> TestServer {
    let mut args = vec!["--enable-debug-command", "yes"];
    args.extend_from_slice(extra);
    TestServer::start(&args)
}

fn info_field(c: &mut redis::Connection, name: &str) -> String {
    let info: String = q(c, &["INFO", "persistence"]);
    field_of(&info, name)
}

fn field_of(info: &str, name: &str) -> String {
    let prefix = format!("{name}:");
    info.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {name} in {info}"))
        .trim()
        .to_string()
}

fn info_num(c: &mut redis::Connection, name: &str) -> u64 {
    info_field(c, name).parse().unwrap()
}

/// Waits until no rewrite runs or is scheduled. Both fields come from one INFO reply: read
/// from two, a scheduled rewrite starting between them looked like none at all.
fn wait_rewrite_done(c: &mut redis::Connection) {
    let start = Instant::now();
    loop {
        let info: String = q(c, &["INFO", "persistence"]);
        if field_of(&info, "aof_rewrite_in_progress") == "0"
            && field_of(&info, "aof_rewrite_scheduled") == "0"
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "rewrite never ended"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn digest(c: &mut redis::Connection) -> String {
    q(c, &["DEBUG", "DIGEST"])
}

fn manifest(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap()
}

fn aof_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("appendonlydir"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Client threads that keep writing (INCR counters and RPUSH sequences) until stopped.
fn spawn_writers(port: u16, stop: &Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<u64>> {
    (0..3)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
                let mut c = client.get_connection().unwrap();
                let mut n = 0u64;
                while !stop.load(Relaxed) {
                    n += 1;
                    let _: u64 = q(&mut c, &["INCR", &format!("cnt:{t}")]);
                    let _: u64 = q(&mut c, &["RPUSH", &format!("seq:{t}"), &n.to_string()]);
                    let _: () = q(
                        &mut c,
                        &["SET", &format!("k:{t}:{}", n % 500), &n.to_string()],
                    );
                }
                n
            })
        })
        .collect()
}

#[test]
fn rewrite_under_concurrent_writes_keeps_exact_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let args = ["--appendonly", "yes", "--appendfsync", "always"];
    let mut s = start_in(dir, &args);
    let mut c = s.conn();
    let _: () = q(&mut c, &["DEBUG", "POPULATE", "20000"]);
    // Slow snapshots, so that the rewrites overlap the writes.
    let _: () = q(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "20"]);
    let stop = Arc::new(AtomicBool::new(false));
    let writers = spawn_writers(s.port, &stop);
    for _ in 0..3 {
        let r: String = q(&mut c, &["BGREWRITEAOF"]);
        assert_eq!(r, "Background append only file rewriting started");
        assert_eq!(info_field(&mut c, "aof_rewrite_in_progress"), "1");
        wait_rewrite_done(&mut c);
    }
    stop.store(true, Relaxed);
    let total: u64 = writers.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(total > 0);
    assert_eq!(info_num(&mut c, "aof_rewrites"), 3);
    assert_eq!(info_field(&mut c, "aof_last_bgrewrite_status"), "ok");
    let before = digest(&mut c);
    let dbsize: u64 = q(&mut c, &["DBSIZE"]);
    // One base, one incremental file, nothing else left behind.
    assert_eq!(
        manifest(dir),
        "file appendonly.aof.4.base.rdb seq 4 type b\nfile appendonly.aof.4.incr.aof seq 4 type i\n"
    );
    assert_eq!(
        aof_files(dir),
        [
            "appendonly.aof.4.base.rdb",
            "appendonly.aof.4.incr.aof",
            "appendonly.aof.manifest"
        ]
    );
    // DEBUG LOADAOF and a restart after SIGKILL both give the same dataset.
    let _: () = q(&mut c, &["DEBUG", "LOADAOF"]);
    assert_eq!(digest(&mut c), before);
    s.kill();
    let s = start_in(dir, &args);
    let mut c = s.conn();
    assert_eq!(digest(&mut c), before);
    assert_eq!(q::<u64>(&mut c, &["DBSIZE"]), dbsize);
}

#[test]
fn crash_during_rewrite_or_between_snapshot_and_manifest_swap_loads_correctly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let args = ["--appendonly", "yes"];
    let mut s = start_in(dir, &args);
    let mut c = s.conn();
    // Logged writes (DEBUG POPULATE is not logged, as in Redis).
    for chunk in 0..10 {
        let mut mset = vec!["MSET".to_string()];
        for i in chunk * 500..(chunk + 1) * 500 {
            mset.push(format!("key:{i}"));
            mset.push(format!("value:{i}"));
        }
        let refs: Vec<&str> = mset.iter().map(String::as_str).collect();
        let _: () = q(&mut c, &refs);
    }
    let _: () = q(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "200"]);
    let _: String = q(&mut c, &["BGREWRITEAOF"]);
    // Writes after the switch go to the new incremental file, which the manifest lists.
    let _: () = q(&mut c, &["SET", "after", "switch"]);
    let _: () = q(&mut c, &["DEL", "key:7"]);
    let expected = digest(&mut c);
    assert_eq!(info_field(&mut c, "aof_rewrite_in_progress"), "1");
    assert!(manifest(dir).ends_with("file appendonly.aof.2.incr.aof seq 2 type i\n"));
    s.kill();
    // The state a crash right after the snapshot's rename leaves: the new base in place, the
    // manifest not yet swapped (the base is unreferenced), plus a temporary file.
    let base = dir.join("appendonlydir/appendonly.aof.1.base.rdb");
    std::fs::copy(&base, dir.join("appendonlydir/appendonly.aof.2.base.rdb")).unwrap();
    std::fs::write(dir.join("appendonlydir/temp-1-2.rdb"), b"partial").unwrap();
    let s = start_in(dir, &args);
    let mut c = s.conn();
    assert_eq!(digest(&mut c), expected);
    assert_eq!(q::<String>(&mut c, &["GET", "after"]), "switch");
    assert!(!dir.join("appendonlydir/temp-1-2.rdb").exists());
    // A rewrite after that replaces the unreferenced base and leaves a clean directory.
    let _: String = q(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite_done(&mut c);
    assert_eq!(
        aof_files(dir),
        [
            "appendonly.aof.2.base.rdb",
            "appendonly.aof.3.incr.aof",
            "appendonly.aof.manifest"
        ]
    );
    drop(c);
    drop(s);
    let s = start_in(dir, &args);
    assert_eq!(digest(&mut s.conn()), expected);
}

#[test]
fn log_shrinks_after_rewrite_and_auto_rewrite_triggers() {
    let s = start(&["--appendonly", "yes", "--auto-aof-rewrite-percentage", "0"]);
    let mut c = s.conn();
    for i in 0..3000 {
        let _: () = q(&mut c, &["SET", "counter", &i.to_string()]);
    }
    let big = info_num(&mut c, "aof_current_size");
    let _: String = q(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite_done(&mut c);
    let small = info_num(&mut c, "aof_current_size");
    assert!(small * 10 < big, "{small} vs {big}");
    assert_eq!(info_num(&mut c, "aof_base_size"), small);
    // Automatic: 100% growth over the size after the last rewrite, above the minimum size.
    let _: () = q(
        &mut c,
        &["CONFIG", "SET", "auto-aof-rewrite-min-size", "20kb"],
    );
    let _: () = q(
        &mut c,
        &["CONFIG", "SET", "auto-aof-rewrite-percentage", "100"],
    );
    for i in 0..1000 {
        let _: () = q(&mut c, &["SET", "counter", &i.to_string()]);
    }
    let start = Instant::now();
    while info_num(&mut c, "aof_rewrites") < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no automatic rewrite"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_rewrite_done(&mut c);
    // The base holds the one key.
    assert!(info_num(&mut c, "aof_base_size") < 1024);
    assert!(s.log().contains("Starting automatic rewriting of AOF on"));
}

#[test]
fn config_set_appendonly_at_runtime() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut s = start_in(dir, &[]);
    let mut c = s.conn();
    let _: () = q(&mut c, &["DEBUG", "POPULATE", "3000"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "100"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "appendonly", "yes"]);
    // On only once the base is written.
    assert_eq!(info_field(&mut c, "aof_enabled"), "0");
    assert_eq!(info_field(&mut c, "aof_rewrite_in_progress"), "1");
    let _: () = q(&mut c, &["SET", "during", "rewrite"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    wait_rewrite_done(&mut c);
    assert_eq!(info_field(&mut c, "aof_enabled"), "1");
    assert_eq!(
        manifest(dir),
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    let _: () = q(&mut c, &["SET", "after", "on"]);
    let expected = digest(&mut c);
    // Off: the log is closed, later writes do not reach it.
    let _: () = q(&mut c, &["CONFIG", "SET", "appendonly", "no"]);
    assert_eq!(info_field(&mut c, "aof_enabled"), "0");
    let _: () = q(&mut c, &["SET", "not", "logged"]);
    s.kill();
    let s = start_in(dir, &["--appendonly", "yes"]);
    let mut c = s.conn();
    assert_eq!(digest(&mut c), expected);
    assert_eq!(q::<String>(&mut c, &["GET", "during"]), "rewrite");
    assert_eq!(q::<Option<String>>(&mut c, &["GET", "not"]), None);
}

#[test]
fn replies_while_snapshots_run() {
    let s = start(&["--appendonly", "yes"]);
    let mut c = s.conn();
    let _: () = q(&mut c, &["DEBUG", "POPULATE", "2000"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "500"]);
    assert_eq!(
        q::<String>(&mut c, &["BGSAVE"]),
        "Background saving started"
    );
    assert_eq!(
        q::<String>(&mut c, &["BGREWRITEAOF"]),
        "Background append only file rewriting scheduled"
    );
    assert_eq!(info_field(&mut c, "aof_rewrite_scheduled"), "1");
    let _: () = q(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    wait_rewrite_done(&mut c);
    assert_eq!(info_num(&mut c, "aof_rewrites"), 1);
    let _: () = q(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "500"]);
    let _: String = q(&mut c, &["BGREWRITEAOF"]);
    assert_eq!(
        err(&mut c, &["BGREWRITEAOF"]),
        "ERR Background append only file rewriting already in progress"
    );
    assert_eq!(
        err(&mut c, &["BGSAVE"]),
        "ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE \
         SCHEDULE in order to schedule a BGSAVE whenever possible."
    );
    assert!(info_num(&mut c, "aof_current_rewrite_time_sec") < 100);
    let _: () = q(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    wait_rewrite_done(&mut c);
}

#[test]
fn resp_base_with_rdb_preamble_no() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let args = ["--appendonly", "yes", "--aof-use-rdb-preamble", "no"];
    let mut s = start_in(dir, &args);
    let mut c = s.conn();
    let _: () = q(&mut c, &["SET", "s", "string"]);
    let _: () = q(&mut c, &["SET", "ttl", "v", "PX", "3600000"]);
    let items: Vec<String> = (0..150).map(|i| i.to_string()).collect();
    for (cmd, key) in [("RPUSH", "l"), ("SADD", "set"), ("SADD", "intset")] {
        let mut argv = vec![cmd, key];
        argv.extend(
            items
                .iter()
                .map(|i| if key == "set" { "m" } else { i.as_str() }),
        );
        let _: u64 = q(&mut c, &argv);
    }
    let _: u64 = q(&mut c, &["SADD", "set", "a", "b", "c"]);
    let _: u64 = q(&mut c, &["HSET", "h", "f1", "v1", "f2", "v2"]);
    let _: u64 = q(
        &mut c,
        &["ZADD", "z", "1.5", "a", "-0.1", "b", "3e100", "c"],
    );
    let _: () = q(&mut c, &["SELECT", "3"]);
    let _: () = q(&mut c, &["SET", "in3", "x"]);
    let _: String = q(
        &mut c,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=lib\nredis.register_function('f', function() return 1 end)",
        ],
    );
    let _: () = q(&mut c, &["SELECT", "0"]);
    let expected = digest(&mut c);
    let _: String = q(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite_done(&mut c);
    assert_eq!(info_field(&mut c, "aof_last_bgrewrite_status"), "ok");
    assert_eq!(
        manifest(dir),
        "file appendonly.aof.2.base.aof seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
    );
    let base = std::fs::read(dir.join("appendonlydir/appendonly.aof.2.base.aof")).unwrap();
    assert!(base.starts_with(b"*"), "not RESP");
    let _: () = q(&mut c, &["DEBUG", "LOADAOF"]);
    assert_eq!(digest(&mut c), expected);
    s.kill();
    let s = start_in(dir, &args);
    let mut c = s.conn();
    assert_eq!(digest(&mut c), expected);
    assert!(q::<i64>(&mut c, &["PTTL", "ttl"]) > 0);
    assert_eq!(q::<i64>(&mut c, &["FCALL", "f", "0"]), 1);
}

#[test]
fn serves_loading_while_the_log_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let aof = dir.join("appendonlydir");
    std::fs::create_dir_all(&aof).unwrap();
    std::fs::write(
        aof.join("appendonly.aof.manifest"),
        "file appendonly.aof.1.incr.aof seq 1 type i\n",
    )
    .unwrap();
    // A slow command in the log (plain RESP, as Redis writes it) keeps the load busy.
    let script = "for i=1,1000000 do redis.call('ping') end redis.call('set','x','y') return 1";
    let mut log = Vec::new();
    ferrodis::journal::encode_command(&mut log, &["EVAL", script, "0"]);
    std::fs::write(aof.join("appendonly.aof.1.incr.aof"), log).unwrap();
    let s = TestServer::start_in_loading(dir, &["--appendonly", "yes"]);
    let mut c = s.conn();
    assert_eq!(
        err(&mut c, &["GET", "x"]),
        "LOADING Redis is loading the dataset in memory"
    );
    assert_eq!(info_field(&mut c, "loading"), "1");
    let start = Instant::now();
    while info_field(&mut c, "loading") == "1" {
        assert!(start.elapsed() < Duration::from_secs(60), "never loaded");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(q::<String>(&mut c, &["GET", "x"]), "y");
    assert_eq!(info_field(&mut c, "aof_enabled"), "1");
    let _: () = q(&mut c, &["SET", "after", "load"]);
}

#[test]
fn flushall_during_a_rewrite_starts_it_over() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let args = ["--appendonly", "yes"];
    let mut s = start_in(dir, &args);
    let mut c = s.conn();
    let _: () = q(&mut c, &["DEBUG", "POPULATE", "2000"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "500"]);
    let _: String = q(&mut c, &["BGREWRITEAOF"]);
    let _: () = q(&mut c, &["FLUSHALL"]);
    let _: () = q(&mut c, &["SET", "k", "v"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    wait_rewrite_done(&mut c);
    assert_eq!(info_field(&mut c, "aof_last_bgrewrite_status"), "ok");
    assert_eq!(info_num(&mut c, "aof_rewrites"), 1);
    s.kill();
    let s = start_in(dir, &args);
    let mut c = s.conn();
    assert_eq!(q::<u64>(&mut c, &["DBSIZE"]), 1);
}
