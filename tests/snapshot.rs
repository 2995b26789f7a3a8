//! Snapshots end to end: SAVE / BGSAVE / DEBUG RELOAD, restarts, point-in-time consistency of
//! a BGSAVE taken under write load, failures (MISCONF, corrupt files), loading state.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{err, q, TestServer};

fn info_field(c: &mut redis::Connection, field: &str) -> String {
    let info: String = q(c, &["INFO", "persistence"]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {field} in INFO persistence"))
}

fn wait_bgsave(c: &mut redis::Connection) {
    let start = Instant::now();
    while info_field(c, "rdb_bgsave_in_progress") == "1" {
        assert!(start.elapsed() < Duration::from_secs(60), "BGSAVE never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sleeps until the wall clock's second is past `secs` (a LASTSAVE), so that a save finishing
/// from now on records a later second.
fn sleep_past_second(secs: i64) {
    let now = || std::time::SystemTime::UNIX_EPOCH.elapsed().unwrap().as_secs() as i64;
    while now() <= secs {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SHUTDOWN with `args` and waits until the process has exited, so that whatever the
/// shutdown saves is on disk when this returns.
fn shutdown(s: &mut TestServer, args: &[&str]) {
    let mut c = s.conn();
    let mut cmd = redis::cmd("SHUTDOWN");
    for a in args {
        cmd.arg(*a);
    }
    let _ = cmd.query::<()>(&mut c);
    let child = s.child.as_mut().unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "SHUTDOWN {args:?} did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "SHUTDOWN {args:?}: {status}");
}

/// Builds one key of every type in every encoding (and a few expiries) across two databases.
fn fill_every_encoding(c: &mut redis::Connection) {
    let _: () = q(c, &["SET", "str:int", "12345"]);
    let _: () = q(c, &["SET", "str:emb", "hello"]);
    let _: () = q(c, &["SET", "str:raw", &"r".repeat(100)]);
    let _: i64 = q(c, &["APPEND", "str:appended", "grown in place"]);
    let _: () = q(c, &["SET", "str:bin", "a\0b\r\n\u{ff}"]);
    let _: i64 = q(c, &["RPUSH", "list:small", "a", "b", "1", "-7"]);
    for i in 0..2000 {
        let _: i64 = q(c, &["RPUSH", "list:big", &format!("element-{i}")]);
    }
    let _: i64 = q(c, &["RPUSH", "list:plainnode", &"p".repeat(20_000), "tail"]);
    let _: i64 = q(c, &["HSET", "hash:small", "f1", "v1", "f2", "2"]);
    for i in 0..300 {
        let _: i64 = q(c, &["HSET", "hash:big", &format!("field{i}"), &format!("value{i}")]);
    }
    let _: i64 = q(c, &["SADD", "set:int", "1", "-5", "1000000000000"]);
    let _: i64 = q(c, &["SADD", "set:str", "a", "b", "c"]);
    for i in 0..1000 {
        let _: i64 = q(c, &["SADD", "set:bigint", &i.to_string()]);
    }
    let _: i64 = q(c, &["ZADD", "zset:small", "1.5", "a", "-inf", "b", "3", "c"]);
    for i in 0..500 {
        let _: i64 = q(c, &["ZADD", "zset:big", &format!("{}.25", i), &format!("m{i}")]);
    }
    let _: i64 = q(c, &["ZADD", "zset:big", "inf", "top"]);
    let _: () = q(c, &["SET", "vol:str", "v", "PX", "5000000"]);
    let _: i64 = q(c, &["HSET", "vol:hash", "f", "v"]);
    let _: i64 = q(c, &["PEXPIRE", "vol:hash", "9000000"]);
    let _: () = q(c, &["SELECT", "9"]);
    let _: () = q(c, &["SET", "other:db", "nine"]);
    let _: () = q(c, &["SET", "other:vol", "nine", "EX", "1000"]);
    let _: () = q(c, &["SELECT", "0"]);
}

/// What a restart must preserve: the digest, and each key's encoding and expiry time.
fn fingerprint(c: &mut redis::Connection) -> (String, Vec<(String, String, i64)>) {
    let digest: String = q(c, &["DEBUG", "DIGEST"]);
    let mut keys = Vec::new();
    for db in ["0", "9"] {
        let _: () = q(c, &["SELECT", db]);
        let mut names: Vec<String> = q(c, &["KEYS", "*"]);
        names.sort();
        for k in names {
            let enc: String = q(c, &["OBJECT", "ENCODING", &k]);
            let at: i64 = q(c, &["PEXPIRETIME", &k]);
            keys.push((format!("{db}/{k}"), enc, at));
        }
    }
    let _: () = q(c, &["SELECT", "0"]);
    (digest, keys)
}

#[test]
fn save_and_restart_restore_every_type_encoding_and_expiry() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_in(tmp.path(), &["--enable-debug-command", "yes"]);
    let mut c = s.conn();
    fill_every_encoding(&mut c);
    let before = fingerprint(&mut c);
    assert_eq!(before.1.len(), 19);
    assert_eq!(q::<String>(&mut c, &["SAVE"]), "OK");
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "0");
    s.kill();
    let s = TestServer::start_in(tmp.path(), &["--enable-debug-command", "yes"]);
    let mut c = s.conn();
    assert_eq!(fingerprint(&mut c), before);
    assert_eq!(info_field(&mut c, "rdb_last_load_keys_loaded"), "19");
    let list: Vec<String> = q(&mut c, &["LRANGE", "list:big", "1998", "-1"]);
    assert_eq!(list, ["element-1998", "element-1999"]);
    let score: String = q(&mut c, &["ZSCORE", "zset:small", "b"]);
    assert_eq!(score, "-inf");
    assert_eq!(q::<Vec<u8>>(&mut c, &["GET", "str:bin"]), "a\0b\r\n\u{ff}".as_bytes());
}

#[test]
fn bgsave_and_debug_reload_round_trip() {
    let s = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut c = s.conn();
    fill_every_encoding(&mut c);
    let _: () = q(&mut c, &["DEBUG", "POPULATE", "50000"]);
    let before = fingerprint(&mut c);
    assert_eq!(q::<String>(&mut c, &["BGSAVE"]), "Background saving started");
    wait_bgsave(&mut c);
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    assert_eq!(q::<String>(&mut c, &["DEBUG", "RELOAD", "NOSAVE"]), "OK");
    assert_eq!(fingerprint(&mut c), before);
    assert_eq!(q::<String>(&mut c, &["DEBUG", "RELOAD"]), "OK");
    assert_eq!(fingerprint(&mut c), before);
    // NOFLUSH finds every key already there; MERGE lets the file's copy win.
    assert_eq!(err(&mut c, &["DEBUG", "RELOAD", "NOFLUSH"]), "ERR Error trying to load the RDB dump");
    let _: () = q(&mut c, &["SET", "str:int", "changed"]);
    assert_eq!(q::<String>(&mut c, &["DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE"]), "OK");
    assert_eq!(q::<String>(&mut c, &["GET", "str:int"]), "12345");
    assert_eq!(
        err(&mut c, &["DEBUG", "RELOAD", "BOGUS"]),
        "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options."
    );
}

/// `rdb-save-incremental-fsync` writes a save out every 4 MB as it goes (Redis's autosync):
/// files of several steps, written both ways and by both kinds of save, load back whole.
#[test]
fn saves_of_many_4mb_steps_round_trip_with_incremental_fsync_on_and_off() {
    let s = TestServer::start(&["--enable-debug-command", "yes", "--rdbcompression", "no"]);
    let mut c = s.conn();
    assert_eq!(
        q::<Vec<String>>(&mut c, &["CONFIG", "GET", "rdb-save-incremental-fsync"]),
        ["rdb-save-incremental-fsync", "yes"]
    );
    let _: () = q(&mut c, &["DEBUG", "POPULATE", "200000", "key", "64"]);
    let before = common::digest(&mut c);
    for (setting, save) in [("yes", "BGSAVE"), ("no", "BGSAVE"), ("yes", "SAVE"), ("no", "SAVE")] {
        let _: () = q(&mut c, &["CONFIG", "SET", "rdb-save-incremental-fsync", setting]);
        let _ = std::fs::remove_file(s.dir.join("dump.rdb"));
        let _: String = q(&mut c, &[save]);
        wait_bgsave(&mut c);
        assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
        let size = std::fs::metadata(s.dir.join("dump.rdb")).unwrap().len();
        assert!(size > 12 << 20, "{save} with {setting}: {size} bytes, fewer than three steps");
        assert_eq!(q::<String>(&mut c, &["DEBUG", "RELOAD", "NOSAVE"]), "OK");
        assert_eq!(common::digest(&mut c), before, "{save} with {setting}");
    }
}

#[test]
fn function_libraries_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_in(tmp.path(), &[]);
    let mut c = s.conn();
    let code = "#!lua name=lib1\nredis.register_function('f1', function() return 'hi' end)";
    let _: String = q(&mut c, &["FUNCTION", "LOAD", code]);
    let _: String = q(&mut c, &["SAVE"]);
    s.kill();
    let s = TestServer::start_in(tmp.path(), &[]);
    let mut c = s.conn();
    assert_eq!(q::<String>(&mut c, &["FCALL", "f1", "0"]), "hi");
}

/// The snapshot of a BGSAVE taken while a client writes holds exactly a prefix of that
/// client's writes: every write acknowledged before BGSAVE was sent, none sent after its reply,
/// and for keys overwritten along the way, the value of the last write in the prefix.
#[test]
fn bgsave_is_point_in_time_under_concurrent_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_in(tmp.path(), &["--enable-debug-command", "yes"]);
    let mut c = s.conn();
    // Enough data that the snapshot takes a while, spread over many table segments.
    let _: () = q(&mut c, &["DEBUG", "POPULATE", "200000", "bulk", "32"]);
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop) = (acked.clone(), stop.clone());
        let mut w = s.conn();
        std::thread::spawn(move || {
            let mut n: u64 = 0;
            while !stop.load(Ordering::Acquire) {
                // Write n: a new key, an overwrite of one of 3000 slots, and (every third) the
                // deletion of an older key, so that every kind of change crosses the snapshot.
                let mut p = redis::pipe();
                p.cmd("SET").arg(format!("seq:{n}")).arg(n).ignore();
                p.cmd("SET").arg(format!("slot:{}", n % 3000)).arg(n).ignore();
                if n % 3 == 0 && n >= 500 {
                    p.cmd("DEL").arg(format!("seq:{}", n - 500)).ignore();
                }
                let _: () = p.query(&mut w).unwrap();
                n += 1;
                acked.store(n, Ordering::Release);
            }
            n
        })
    };
    while acked.load(Ordering::Acquire) < 5000 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let acked_before = acked.load(Ordering::Acquire);
    assert_eq!(q::<String>(&mut c, &["BGSAVE"]), "Background saving started");
    let sent_after = acked.load(Ordering::Acquire) + 1;
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Release);
    let total = writer.join().unwrap();
    wait_bgsave(&mut c);
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    assert!(total > sent_after, "the writer kept writing during the save");
    s.kill();

    let s = TestServer::start_in(tmp.path(), &[]);
    let mut c = s.conn();
    let seq: Vec<String> = q(&mut c, &["KEYS", "seq:*"]);
    let nums: Vec<u64> = seq.iter().map(|k| k[4..].parse().unwrap()).collect();
    let p = nums.iter().max().map_or(0, |m| m + 1);
    assert!(p >= acked_before && p <= sent_after, "prefix {p} not in [{acked_before}, {sent_after}]");
    // The exact state after writes 0..p.
    let mut expect_seq: Vec<u64> = (0..p).collect();
    let deleted: Vec<u64> = (500..p).filter(|n| n % 3 == 0).map(|n| n - 500).collect();
    expect_seq.retain(|n| !deleted.contains(n));
    let mut got = nums.clone();
    got.sort_unstable();
    assert_eq!(got, expect_seq);
    let mut expect_slots: HashMap<String, String> = HashMap::new();
    for n in 0..p {
        expect_slots.insert(format!("slot:{}", n % 3000), n.to_string());
    }
    let slots: Vec<String> = q(&mut c, &["KEYS", "slot:*"]);
    assert_eq!(slots.len(), expect_slots.len());
    for k in slots {
        assert_eq!(q::<String>(&mut c, &["GET", &k]), expect_slots[&k], "{k}");
    }
    let populated: i64 = q(&mut c, &["EVAL", "return #redis.call('keys','bulk:*')", "0"]);
    assert_eq!(populated, 200_000);
}

/// A BGSAVE while every key is overwritten: the worst case for a snapshot, where a fork's
/// copy-on-write would copy every page and where each overwrite makes the write barrier encode
/// the old value. Those copies are only in flight to the writer thread, never retained, so the
/// memory in use stays within the engine's in-flight bound (an eighth of the dataset, at least
/// 64 MB) of what it was when the save started, however much of the dataset changes.
#[test]
fn bgsave_under_a_full_overwrite_keeps_extra_memory_within_the_in_flight_bound() {
    const KEYS: usize = 60_000;
    const VALUE: usize = 4096;
    let tmp = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(tmp.path(), &["--enable-debug-command", "yes"]);
    let mut c = s.conn();
    let used = |c: &mut redis::Connection| -> u64 {
        common::info_field(c, "memory", "used_memory").parse().unwrap()
    };
    let _: () = q(&mut c, &["DEBUG", "POPULATE", &KEYS.to_string(), "key", &VALUE.to_string()]);
    let before = used(&mut c);
    assert!(before > (KEYS * VALUE) as u64, "{before}");
    // Slow enough (about 6 s for the walk alone) that the overwrite below ends inside the save.
    let _: () = q(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "100"]);
    let _: () = q(&mut c, &["CONFIG", "RESETSTAT"]);
    assert_eq!(q::<String>(&mut c, &["BGSAVE"]), "Background saving started");

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        let mut m = s.conn();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(Ordering::Acquire) {
                peak = peak.max(used(&mut m));
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    let value = "v".repeat(VALUE);
    let mut w = s.conn();
    for batch in (0..KEYS).collect::<Vec<_>>().chunks(200) {
        let mut p = redis::pipe();
        for i in batch {
            p.cmd("SET").arg(format!("key:{i}")).arg(&value).ignore();
        }
        let _: () = p.query(&mut w).unwrap();
    }
    assert_eq!(
        info_field(&mut c, "rdb_bgsave_in_progress"),
        "1",
        "the overwrite must end inside the save for the test to mean anything"
    );
    stop.store(true, Ordering::Release);
    let sampled = sampler.join().unwrap();
    let peak: u64 = common::info_field(&mut c, "memory", "used_memory_peak").parse().unwrap();
    let peak = peak.max(sampled);
    // The bound of the records in flight, plus what it does not cover: the spare buffers
    // (8 MB), one collection's records past the bound, the writer's block and file buffers.
    // Keeping the old values until the save ends would need the whole overwrite (245 MB).
    let bound = (before / 8).max(64 << 20) + (24 << 20);
    assert!(
        peak <= before + bound,
        "peak {peak} exceeds {before} + {bound} (overwritten: {} bytes)",
        KEYS * VALUE
    );
    let _: () = q(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    wait_bgsave(&mut c);
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    // And the file holds the dataset as it was: every key still has its populated value.
    let _: () = q(&mut c, &["DEBUG", "RELOAD", "NOSAVE"]);
    assert_eq!(q::<i64>(&mut c, &["DBSIZE"]), KEYS as i64);
    for i in (0..KEYS).step_by(997) {
        let v: String = q(&mut c, &["GET", &format!("key:{i}")]);
        assert!(v.starts_with(&format!("value:{i}")) && v.len() == VALUE, "key:{i}");
    }
}

#[test]
fn failed_bgsave_refuses_writes_with_misconf_until_a_save_succeeds() {
    let s = TestServer::start(&["--save", "3600 1", "--enable-protected-configs", "yes"]);
    let mut c = s.conn();
    let _: () = q(&mut c, &["SET", "k", "v"]);
    let gone = tempfile::tempdir().unwrap();
    let gone_path = gone.path().to_path_buf();
    let _: () = q(&mut c, &["CONFIG", "SET", "dir", gone_path.to_str().unwrap()]);
    drop(gone);
    assert_eq!(q::<String>(&mut c, &["BGSAVE"]), "Background saving started");
    wait_bgsave(&mut c);
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "err");
    let misconf = err(&mut c, &["SET", "k", "w"]);
    assert!(misconf.starts_with("MISCONF Redis is configured to save RDB snapshots"), "{misconf}");
    assert!(err(&mut c, &["PING"]).starts_with("MISCONF"));
    assert_eq!(q::<String>(&mut c, &["GET", "k"]), "v");
    // Scripts: a write inside is refused; a script with flags is refused up front unless it
    // declares no-writes.
    let e = err(&mut c, &["EVAL", "return redis.call('set', 'k', 'z')", "0"]);
    assert!(e.starts_with("MISCONF Redis is configured to save RDB snapshots"), "{e}");
    let e = err(&mut c, &["EVAL", "#!lua\nreturn 1", "0"]);
    assert!(e.ends_with("Writable scripts are blocked. Use 'no-writes' flag for read only scripts."), "{e}");
    let v: i64 = q(&mut c, &["EVAL", "#!lua flags=no-writes\nreturn 1", "0"]);
    assert_eq!(v, 1);
    // Without save points, or with stop-writes-on-bgsave-error off, writes go through.
    let _: () = q(&mut c, &["CONFIG", "SET", "stop-writes-on-bgsave-error", "no"]);
    let _: () = q(&mut c, &["SET", "k", "w"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "stop-writes-on-bgsave-error", "yes"]);
    assert!(err(&mut c, &["SET", "k", "x"]).starts_with("MISCONF"));
    // A save that fails keeps SHUTDOWN from exiting, unless FORCE.
    assert_eq!(err(&mut c, &["SHUTDOWN", "SAVE"]), "ERR Errors trying to SHUTDOWN. Check logs.");
    let _: () = q(&mut c, &["CONFIG", "SET", "dir", s.dir.to_str().unwrap()]);
    assert_eq!(q::<String>(&mut c, &["BGSAVE"]), "Background saving started");
    wait_bgsave(&mut c);
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    let _: () = q(&mut c, &["SET", "k", "x"]);
}

#[test]
fn bgsave_replies_and_schedule() {
    let s = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut c = s.conn();
    let _: () = q(&mut c, &["DEBUG", "POPULATE", "300000"]);
    assert_eq!(err(&mut c, &["BGSAVE", "NOW"]), "ERR syntax error");
    assert_eq!(q::<String>(&mut c, &["BGSAVE"]), "Background saving started");
    assert_eq!(err(&mut c, &["BGSAVE"]), "ERR Background save already in progress");
    assert_eq!(err(&mut c, &["SAVE"]), "ERR Background save already in progress");
    wait_bgsave(&mut c);
    let before: i64 = q(&mut c, &["LASTSAVE"]);
    assert!(before > 1_700_000_000);
    // Inside MULTI a BGSAVE is scheduled for after the transaction.
    let mut p = redis::pipe();
    p.atomic().cmd("SET").arg("a").arg("1").cmd("BGSAVE");
    let (ok, status): (String, String) = p.query(&mut c).unwrap();
    assert_eq!((ok.as_str(), status.as_str()), ("OK", "Background saving scheduled"));
    let start = Instant::now();
    while info_field(&mut c, "rdb_saves") != "2" {
        assert!(start.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn last_save_time_follows_save_and_bgsave() {
    let s = TestServer::start(&[]);
    let mut c = s.conn();
    // Before any save, as in redis-server 7.0: the start-up time, and no BGSAVE yet.
    let started: i64 = q(&mut c, &["LASTSAVE"]);
    assert_eq!(info_field(&mut c, "rdb_last_save_time"), started.to_string());
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_time_sec"), "-1");
    sleep_past_second(started);
    let _: () = q(&mut c, &["SET", "k", "1"]);
    assert_eq!(q::<String>(&mut c, &["SAVE"]), "OK");
    let saved: i64 = q(&mut c, &["LASTSAVE"]);
    assert!(saved > started, "{saved} {started}");
    assert_eq!(info_field(&mut c, "rdb_last_save_time"), saved.to_string());
    // A SAVE is not a BGSAVE: Redis leaves the BGSAVE duration alone too.
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_time_sec"), "-1");
    sleep_past_second(saved);
    assert_eq!(q::<String>(&mut c, &["BGSAVE"]), "Background saving started");
    wait_bgsave(&mut c);
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    let bgsaved: i64 = q(&mut c, &["LASTSAVE"]);
    assert!(bgsaved > saved, "{bgsaved} {saved}");
    assert_eq!(info_field(&mut c, "rdb_last_save_time"), bgsaved.to_string());
    let secs: i64 = info_field(&mut c, "rdb_last_bgsave_time_sec").parse().unwrap();
    assert!((0..10).contains(&secs), "{secs}");
    assert_eq!(info_field(&mut c, "rdb_saves"), "2");
}

#[test]
fn bgsave_schedule_during_an_aof_rewrite_saves_once_the_rewrite_ends() {
    let s = TestServer::start(&["--appendonly", "yes", "--enable-debug-command", "yes"]);
    let mut c = s.conn();
    let _: () = q(&mut c, &["DEBUG", "POPULATE", "2000"]);
    let before: i64 = q(&mut c, &["LASTSAVE"]);
    sleep_past_second(before);
    // 2000 keys at 500 us each: a rewrite of about a second.
    let _: () = q(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "500"]);
    assert_eq!(
        q::<String>(&mut c, &["BGREWRITEAOF"]),
        "Background append only file rewriting started"
    );
    assert_eq!(
        err(&mut c, &["BGSAVE"]),
        "ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE \
         SCHEDULE in order to schedule a BGSAVE whenever possible."
    );
    assert_eq!(q::<String>(&mut c, &["BGSAVE", "SCHEDULE"]), "Background saving scheduled");
    assert_eq!(q::<String>(&mut c, &["BGSAVE", "SCHEDULE"]), "Background saving scheduled");
    let info: String = q(&mut c, &["INFO", "persistence"]);
    for line in ["aof_rewrite_in_progress:1", "rdb_bgsave_in_progress:0", "rdb_saves:0"] {
        assert!(info.contains(line), "{line} in {info}");
    }
    let _: () = q(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    // The save starts only once the rewrite is over (never both in one INFO), then completes.
    let start = Instant::now();
    loop {
        let info: String = q(&mut c, &["INFO", "persistence"]);
        assert!(
            !(info.contains("aof_rewrite_in_progress:1")
                && info.contains("rdb_bgsave_in_progress:1")),
            "{info}"
        );
        if info.contains("rdb_saves:1") && info.contains("rdb_bgsave_in_progress:0") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the scheduled BGSAVE never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(info_field(&mut c, "aof_rewrites"), "1");
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    assert_ne!(info_field(&mut c, "rdb_last_bgsave_time_sec"), "-1");
    let after: i64 = q(&mut c, &["LASTSAVE"]);
    assert!(after > before, "{after} {before}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrodis-check-snapshot"))
        .arg(s.dir.join("dump.rdb"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("db 0: keys=2000 "), "{report}");
}

#[test]
fn save_points_trigger_a_background_save() {
    let s = TestServer::start(&["--save", "1 2"]);
    let mut c = s.conn();
    let _: () = q(&mut c, &["SET", "a", "1"]);
    let _: () = q(&mut c, &["SET", "b", "2"]);
    let start = Instant::now();
    while info_field(&mut c, "rdb_saves") == "0" {
        assert!(start.elapsed() < Duration::from_secs(10), "no save after the save point");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_bgsave(&mut c);
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "0");
    assert!(s.dir.join("dump.rdb").exists());
}

#[test]
fn shutdown_saves_unless_nosave_and_flushall_saves_an_empty_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("dump.rdb");
    // Without save points SHUTDOWN saves only when told to.
    let mut s = TestServer::start_in(tmp.path(), &[]);
    let _: () = q(&mut s.conn(), &["SET", "unsaved", "1"]);
    shutdown(&mut s, &[]);
    assert!(!path.exists());
    let mut s = TestServer::start_in(tmp.path(), &[]);
    let _: () = q(&mut s.conn(), &["SET", "kept", "1"]);
    shutdown(&mut s, &["SAVE"]);
    // With save points SHUTDOWN saves, and SHUTDOWN NOSAVE leaves the file as it was.
    let save = ["--save", "3600 1"];
    let mut s = TestServer::start_in(tmp.path(), &save);
    let mut c = s.conn();
    assert_eq!(q::<String>(&mut c, &["GET", "kept"]), "1");
    assert_eq!(q::<Option<String>>(&mut c, &["GET", "unsaved"]), None);
    let _: () = q(&mut c, &["SET", "saved", "1"]);
    shutdown(&mut s, &[]);
    let file = std::fs::read(&path).unwrap();
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let mut s = TestServer::start_in(tmp.path(), &save);
    let mut c = s.conn();
    assert_eq!(q::<String>(&mut c, &["GET", "saved"]), "1");
    let _: () = q(&mut c, &["SET", "lost", "1"]);
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "1");
    shutdown(&mut s, &["NOSAVE"]);
    assert_eq!(std::fs::read(&path).unwrap(), file);
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    let s = TestServer::start_in(tmp.path(), &save);
    let mut c = s.conn();
    assert_eq!(q::<Option<String>>(&mut c, &["GET", "lost"]), None);
    assert_eq!(q::<String>(&mut c, &["GET", "saved"]), "1");
    assert_eq!(q::<String>(&mut c, &["GET", "kept"]), "1");
    // With save points, FLUSHALL saves the empty dataset at once.
    let _: () = q(&mut c, &["FLUSHALL"]);
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "0");
    drop(c);
    drop(s);
    let s = TestServer::start_in(tmp.path(), &[]);
    let mut c = s.conn();
    assert_eq!(q::<i64>(&mut c, &["DBSIZE"]), 0);
}

#[test]
fn save_points_default_to_redis_defaults_and_save_empty_disables_them() {
    let tmp = tempfile::tempdir().unwrap();
    let s = TestServer::start_with_default_save_points(tmp.path());
    let mut c = s.conn();
    // What redis-server 7.0 answers when started without a `save` setting.
    let save: Vec<String> = q(&mut c, &["CONFIG", "GET", "save"]);
    assert_eq!(save, ["save", "3600 1 300 100 60 10000"]);
    // The defaults are in force: SHUTDOWN saves a changed dataset.
    let _: () = q(&mut c, &["SET", "k", "v"]);
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
    let start = Instant::now();
    while !tmp.path().join("dump.rdb").exists() {
        assert!(start.elapsed() < Duration::from_secs(10), "SHUTDOWN did not save");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(s);
    let s = TestServer::start(&[]);
    let save: Vec<String> = q(&mut s.conn(), &["CONFIG", "GET", "save"]);
    assert_eq!(save, ["save", ""]);
}

#[test]
fn keys_expired_while_down_are_not_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_in(tmp.path(), &[]);
    let mut c = s.conn();
    let _: () = q(&mut c, &["SET", "short", "v", "PX", "300"]);
    let _: () = q(&mut c, &["SET", "long", "v", "EX", "1000"]);
    let _: String = q(&mut c, &["SAVE"]);
    s.kill();
    std::thread::sleep(Duration::from_millis(400));
    let s = TestServer::start_in(tmp.path(), &[]);
    let mut c = s.conn();
    assert_eq!(q::<i64>(&mut c, &["DBSIZE"]), 1);
    assert_eq!(info_field(&mut c, "rdb_last_load_keys_expired"), "1");
    assert_eq!(info_field(&mut c, "rdb_last_load_keys_loaded"), "1");
}

#[test]
fn loading_answers_loading_and_reports_progress() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_in(tmp.path(), &["--enable-debug-command", "yes"]);
    let mut c = s.conn();
    let _: () = q(&mut c, &["DEBUG", "POPULATE", "2000"]);
    let _: String = q(&mut c, &["SAVE"]);
    s.kill();
    let path = tmp.path().join("dump.rdb");
    let file_len = std::fs::metadata(&path).unwrap().len();
    // The memory use the file recorded, as its checker reads it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrodis-check-snapshot"))
        .arg(&path)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let used_memory = report
        .lines()
        .find_map(|l| l.strip_prefix("used_memory: "))
        .unwrap_or_else(|| panic!("{report}"))
        .to_string();
    assert!(used_memory.parse::<u64>().unwrap() > 0, "{report}");
    // 2000 keys at 1 ms each: two seconds of loading.
    let s = TestServer::start_in_loading(tmp.path(), &["--key-load-delay", "1000"]);
    let mut c = s.conn();
    assert_eq!(err(&mut c, &["GET", "key:1"]), "LOADING Redis is loading the dataset in memory");
    assert_eq!(info_field(&mut c, "loading"), "1");
    // CONFIG works while loading, but not on what the load depends on.
    assert_eq!(q::<String>(&mut c, &["CONFIG", "SET", "hz", "10"]), "OK");
    let loading = "LOADING Redis is loading the dataset in memory";
    assert_eq!(err(&mut c, &["CONFIG", "SET", "hz", "11", "appendonly", "yes"]), loading);
    assert_eq!(err(&mut c, &["CONFIG", "SET", "repl-diskless-load", "swapdb"]), loading);
    assert_eq!(q::<Vec<String>>(&mut c, &["CONFIG", "GET", "hz"]), ["hz", "10"]);
    let info: String = q(&mut c, &["INFO", "persistence"]);
    assert!(info.contains("loading_loaded_perc:"), "{info}");
    assert_eq!(info_field(&mut c, "loading_total_bytes"), file_len.to_string());
    // As Redis sets it from the file's used-mem, once the loader has read the header.
    common::wait_until("loading_rdb_used_mem", || {
        info_field(&mut c, "loading_rdb_used_mem") == used_memory
    });
    let start = Instant::now();
    while info_field(&mut c, "loading") == "1" {
        assert!(start.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(q::<i64>(&mut c, &["DBSIZE"]), 2000);
    let log = s.log();
    assert!(log.contains("DB loaded from disk"), "{log}");
    // A load of over a second logs its progress once a second.
    let progress = log
        .lines()
        .find_map(|l| l.split_once("Loading the snapshot: ").map(|(_, p)| p))
        .unwrap_or_else(|| panic!("no progress line in {log}"));
    let (perc, bytes) = progress.split_once("% (").unwrap();
    assert!((0.0..=100.0).contains(&perc.parse::<f64>().unwrap()), "{progress}");
    assert!(bytes.ends_with(&format!(" of {file_len} bytes)")), "{progress}");
}

/// Starts a server on `dir` expecting it to refuse to start; returns its log.
fn refused_start(dir: &std::path::Path) -> String {
    let log = dir.join("refused.log");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_ferrodis-server"))
        .args(["--port", &common::free_port().to_string(), "--dir", dir.to_str().unwrap()])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the server started on a damaged snapshot");
    std::fs::read_to_string(log).unwrap()
}

#[test]
fn damaged_snapshots_are_refused_with_path_offset_and_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_in(tmp.path(), &["--enable-debug-command", "yes"]);
    let mut c = s.conn();
    let _: () = q(&mut c, &["DEBUG", "POPULATE", "20000"]);
    let _: String = q(&mut c, &["SAVE"]);
    s.kill();
    let path = tmp.path().join("dump.rdb");
    let good = std::fs::read(&path).unwrap();
    // A flipped bit in the middle.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x10;
    std::fs::write(&path, &bad).unwrap();
    let log = refused_start(tmp.path());
    assert!(log.contains("dump.rdb") && log.contains("offset"), "{log}");
    // A torn tail.
    std::fs::write(&path, &good[..good.len() - 7]).unwrap();
    let log = refused_start(tmp.path());
    assert!(log.contains("dump.rdb") && log.contains("offset"), "{log}");
    // A damaged tail (what Redis's own test does to its checksum) is reported as a CRC error.
    let mut tail = good.clone();
    let n = tail.len();
    tail[n - 8..].copy_from_slice(b"foobar00");
    std::fs::write(&path, &tail).unwrap();
    let log = refused_start(tmp.path());
    assert!(log.contains("dump.rdb") && log.contains("CRC error"), "{log}");
    // Not a snapshot at all.
    std::fs::write(&path, b"REDIS0009garbage").unwrap();
    let log = refused_start(tmp.path());
    assert!(log.contains("dump.rdb"), "{log}");
}

#[test]
fn dump_and_restore_round_trip_every_type_with_options() {
    let s = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut c = s.conn();
    fill_every_encoding(&mut c);
    let keys: Vec<String> = q(&mut c, &["KEYS", "*"]);
    assert!(keys.len() > 10);
    for k in &keys {
        let payload: Vec<u8> = q(&mut c, &["DUMP", k]);
        let digest: Vec<String> = q(&mut c, &["DEBUG", "DIGEST-VALUE", k]);
        let enc: String = q(&mut c, &["OBJECT", "ENCODING", k]);
        let copy = format!("copy:{k}");
        let ok: String = redis::cmd("RESTORE").arg(&copy).arg(0).arg(&payload).query(&mut c).unwrap();
        assert_eq!(ok, "OK");
        assert_eq!(q::<Vec<String>>(&mut c, &["DEBUG", "DIGEST-VALUE", &copy]), digest, "{k}");
        assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", &copy]), enc, "{k}");
        assert_eq!(q::<i64>(&mut c, &["PTTL", &copy]), -1);
        // Without REPLACE an existing key is refused; with it, replaced.
        let busy = redis::cmd("RESTORE").arg(&copy).arg(0).arg(&payload).query::<()>(&mut c);
        assert_eq!(busy.unwrap_err().to_string(), "BUSYKEY: Target key name already exists.");
        let ok: String = redis::cmd("RESTORE")
            .arg(&copy)
            .arg(100_000)
            .arg(&payload)
            .arg("REPLACE")
            .query(&mut c)
            .unwrap();
        assert_eq!(ok, "OK");
        let pttl: i64 = q(&mut c, &["PTTL", &copy]);
        assert!(pttl > 90_000 && pttl <= 100_000, "{pttl}");
    }
    assert_eq!(q::<Option<Vec<u8>>>(&mut c, &["DUMP", "nosuchkey"]), None);
    let payload: Vec<u8> = q(&mut c, &["DUMP", "str:emb"]);
    // ABSTTL in the past creates nothing; IDLETIME backdates the LRU clock.
    let ok: String =
        redis::cmd("RESTORE").arg("past").arg(1000).arg(&payload).arg("ABSTTL").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "past"]), 0);
    let ok: String =
        redis::cmd("RESTORE").arg("idle").arg(0).arg(&payload).arg("IDLETIME").arg(1000).query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    let idle: i64 = q(&mut c, &["OBJECT", "IDLETIME", "idle"]);
    assert!((1000..1010).contains(&idle), "{idle}");
    // Damaged payloads.
    let mut bad = payload.clone();
    bad[1] ^= 0x55;
    let e = redis::cmd("RESTORE").arg("bad").arg(0).arg(&bad).query::<()>(&mut c).unwrap_err();
    assert!(e.to_string().contains("DUMP payload version or checksum are wrong"), "{e}");
}

#[test]
fn slow_bgsave_with_rdb_key_save_delay_stays_point_in_time_and_flushall_aborts_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_in(tmp.path(), &["--enable-debug-command", "yes"]);
    let mut c = s.conn();
    let _: () = q(&mut c, &["DEBUG", "POPULATE", "3000"]);
    // 3000 keys at 500 us each: a save of about 1.5 s.
    let _: () = q(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "500"]);
    assert_eq!(q::<String>(&mut c, &["BGSAVE"]), "Background saving started");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(info_field(&mut c, "rdb_bgsave_in_progress"), "1");
    assert_eq!(info_field(&mut c, "current_save_keys_total"), "3000");
    // Writes during the save: new keys, overwrites, deletes. None may reach the file.
    for i in 0..3000 {
        let k = format!("key:{i}");
        match i % 3 {
            0 => {
                let _: () = q(&mut c, &["SET", &k, "changed"]);
            }
            1 => {
                let _: i64 = q(&mut c, &["DEL", &k]);
            }
            _ => {
                let _: () = q(&mut c, &["SET", &format!("new:{i}"), "x"]);
            }
        }
    }
    wait_bgsave(&mut c);
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    // FLUSHALL abandons a running save (the old file stays), leaving the counter alone.
    assert_eq!(q::<String>(&mut c, &["BGSAVE"]), "Background saving started");
    std::thread::sleep(Duration::from_millis(100));
    let _: () = q(&mut c, &["FLUSHALL"]);
    assert_eq!(info_field(&mut c, "rdb_bgsave_in_progress"), "0");
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    let changes: u64 = info_field(&mut c, "rdb_changes_since_last_save").parse().unwrap();
    assert!(changes > 2000, "{changes}");
    let _: () = q(&mut c, &["SET", "x", "xx"]);
    s.kill();
    let s = TestServer::start_in(tmp.path(), &[]);
    let mut c = s.conn();
    assert_eq!(q::<i64>(&mut c, &["DBSIZE"]), 3000);
    for i in 0..3000 {
        let v: String = q(&mut c, &["GET", &format!("key:{i}")]);
        assert_eq!(v, format!("value:{i}"));
    }
}
