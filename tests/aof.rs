//! The append-only log end to end: a spawned server is written to, killed with SIGKILL and
//! restarted from its log; damaged logs are truncated or refused; `ferrodis-check-aof`; logs
//! written by real redis-server 7.0; MISCONF on write errors; WAITAOF.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{err, q, TestServer};

const ALWAYS: &[&str] = &["--appendonly", "yes", "--appendfsync", "always"];

fn incr_file(dir: &Path) -> PathBuf {
    dir.join("appendonlydir").join("appendonly.aof.1.incr.aof")
}

/// The first bytes of a frame whose write was cut short (a torn tail).
fn torn_frame() -> Vec<u8> {
    let payload = b"*3\r\n$3\r\nSET\r\n$4\r\ntorn\r\n$1\r\nx\r\n";
    let mut f = Vec::new();
    ferrodis::aof::format::frame_header(&mut f, payload);
    f.extend_from_slice(payload);
    f.truncate(f.len() - 5);
    f
}

/// Starts a server that must refuse to start; returns its exit code and log.
fn start_refused(dir: &Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferrodis-server"))
        .args([
            "--port",
            &common::free_port().to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args(["--dir", &dir.display().to_string(), "--save", ""])
        .args(extra)
        .output()
        .unwrap();
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), log)
}

/// A server with some acknowledged data, killed with SIGKILL.
fn written_and_killed(dir: &Path) {
    let mut s = TestServer::start_in(dir, ALWAYS);
    let mut c = s.conn();
    let _: () = q(&mut c, &["SET", "k", "v"]);
    let _: i64 = q(&mut c, &["INCR", "n"]);
    let _: i64 = q(&mut c, &["INCR", "n"]);
    let _: i64 = q(&mut c, &["RPUSH", "l", "a", "b", "c"]);
    let _: () = q(&mut c, &["SET", "ttl", "x", "EX", "1000"]);
    let _: () = q(&mut c, &["SELECT", "3"]);
    let _: () = q(&mut c, &["SET", "in3", "yes"]);
    let _: redis::Value = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("m1")
        .arg("1")
        .cmd("SET")
        .arg("m2")
        .arg("2")
        .query(&mut c)
        .unwrap();
    s.kill();
}

fn assert_data(s: &TestServer) {
    let mut c = s.conn();
    assert_eq!(q::<String>(&mut c, &["GET", "k"]), "v");
    assert_eq!(q::<i64>(&mut c, &["GET", "n"]), 2);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", "l", "0", "-1"]),
        ["a", "b", "c"]
    );
    let ttl: i64 = q(&mut c, &["TTL", "ttl"]);
    assert!((990..=1000).contains(&ttl), "ttl {ttl}");
    let _: () = q(&mut c, &["SELECT", "3"]);
    assert_eq!(q::<String>(&mut c, &["GET", "in3"]), "yes");
    assert_eq!(q::<Vec<String>>(&mut c, &["MGET", "m1", "m2"]), ["1", "2"]);
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    written_and_killed(tmp.path());
    let s = TestServer::start_in(tmp.path(), ALWAYS);
    assert_data(&s);
    let mut c = s.conn();
    let info: String = q(&mut c, &["INFO", "persistence"]);
    assert!(info.contains("aof_enabled:1\r\n"), "{info}");
    assert!(info.contains("aof_last_write_status:ok\r\n"));
    let manifest =
        std::fs::read_to_string(tmp.path().join("appendonlydir/appendonly.aof.manifest")).unwrap();
    assert_eq!(
        manifest,
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
}

#[test]
fn torn_tail_is_truncated_or_refused() {
    let tmp = tempfile::tempdir().unwrap();
    written_and_killed(tmp.path());
    let f = incr_file(tmp.path());
    let good = std::fs::metadata(&f).unwrap().len();
    let mut bytes = std::fs::read(&f).unwrap();
    bytes.extend_from_slice(&torn_frame());
    std::fs::write(&f, &bytes).unwrap();

    let (code, log) = start_refused(
        tmp.path(),
        &["--appendonly", "yes", "--aof-load-truncated", "no"],
    );
    assert_ne!(code, 0);
    assert!(
        log.contains("Unexpected end of file reading the append only file"),
        "{log}"
    );
    assert!(log.contains(&format!("ends at offset {good}")), "{log}");
    assert_eq!(
        std::fs::metadata(&f).unwrap().len(),
        bytes.len() as u64,
        "refusal changed the file"
    );

    let s = TestServer::start_in(
        tmp.path(),
        &["--appendonly", "yes", "--aof-load-truncated", "yes"],
    );
    assert_data(&s);
    let log = s.log();
    assert!(
        log.contains("short read while loading the AOF file"),
        "{log}"
    );
    assert!(log.contains(&format!("at offset {good}")), "{log}");
    assert_eq!(std::fs::metadata(&f).unwrap().len(), good);
}

#[test]
fn corrupted_record_in_the_middle_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    written_and_killed(tmp.path());
    let f = incr_file(tmp.path());
    let mut bytes = std::fs::read(&f).unwrap();
    // The second frame starts at the second "#F"; flip a bit inside its payload.
    let second = bytes
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w == b"#F")
        .nth(1)
        .unwrap()
        .0;
    let at = second + 30;
    bytes[at] ^= 0x04;
    std::fs::write(&f, &bytes).unwrap();
    for truncated in ["yes", "no"] {
        let (code, log) = start_refused(
            tmp.path(),
            &["--appendonly", "yes", "--aof-load-truncated", truncated],
        );
        assert_ne!(code, 0);
        assert!(
            log.contains(&format!(
                "Bad file format reading the append only file appendonly.aof.1.incr.aof at \
                 offset {second}: frame checksum mismatch"
            )),
            "{log}"
        );
    }
}

fn check_aof(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferrodis-check-aof"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn check_aof_reports_and_fixes() {
    let tmp = tempfile::tempdir().unwrap();
    written_and_killed(tmp.path());
    let dir = tmp.path().join("appendonlydir");
    let d = dir.to_str().unwrap();
    let (code, out) = check_aof(&[d]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("All AOF files are valid"), "{out}");

    let f = incr_file(tmp.path());
    let good = std::fs::metadata(&f).unwrap().len();
    let mut bytes = std::fs::read(&f).unwrap();
    bytes.extend_from_slice(&torn_frame());
    std::fs::write(&f, &bytes).unwrap();
    let (code, out) = check_aof(&[d]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("truncated (torn tail) at offset {good}")),
        "{out}"
    );
    assert!(out.contains("Use the --fix option"), "{out}");
    let (code, out) = check_aof(&["--fix", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!(
        "Successfully truncated AOF {} to {good} bytes",
        f.display()
    )));
    assert_eq!(std::fs::metadata(&f).unwrap().len(), good);
    assert_eq!(check_aof(&[d]).0, 0);
    let s = TestServer::start_in(
        tmp.path(),
        &["--appendonly", "yes", "--aof-load-truncated", "no"],
    );
    assert_data(&s);
    let (code, _) = check_aof(&["--bogus", "x", "y"]);
    assert_eq!(code, 1);
}

/// Runs a real redis-server 7.0 with an append-only log in `dir`, writes, and shuts it down.
fn redis_writes(dir: &Path, preamble: &str) -> bool {
    let (mut child, mut c) = loop {
        let port = common::free_port();
        let Ok(mut child) = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--dir", &dir.display().to_string(), "--appendonly", "yes"])
            .args(["--aof-use-rdb-preamble", preamble])
            .stdout(std::process::Stdio::null())
            .spawn()
        else {
            eprintln!("redis-server not available; skipped");
            return false;
        };
        // The port may have been taken meanwhile (by another test's server): make sure the
        // connection reaches this very process.
        let url = format!("redis://127.0.0.1:{port}/");
        let start = Instant::now();
        let conn = loop {
            if child.try_wait().unwrap().is_some() {
                break None;
            }
            match redis::Client::open(url.as_str()).unwrap().get_connection() {
                Ok(mut c) => {
                    let info: String = q(&mut c, &["INFO", "server"]);
                    let ours = format!("process_id:{}\r\n", child.id());
                    break info.contains(&ours).then_some(c);
                }
                Err(_) if start.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => panic!("redis-server: {e}"),
            }
        };
        match conn {
            Some(c) => break (child, c),
            None => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    };
    if preamble == "yes" {
        // A base only exists after a rewrite.
        let _: () = q(&mut c, &["SET", "before", "rewrite"]);
        let _: String = q(&mut c, &["BGREWRITEAOF"]);
        std::thread::sleep(Duration::from_millis(500));
    }
    let _: () = q(&mut c, &["SET", "k", "v"]);
    let _: i64 = q(&mut c, &["INCR", "n"]);
    let _: i64 = q(&mut c, &["RPUSH", "l", "a", "b"]);
    let _: i64 = q(&mut c, &["HSET", "h", "f", "1"]);
    let _: () = q(&mut c, &["SET", "ttl", "x", "EX", "1000"]);
    let _: redis::Value = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("m1")
        .arg("1")
        .cmd("SET")
        .arg("m2")
        .arg("2")
        .query(&mut c)
        .unwrap();
    let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query(&mut c);
    child.wait().unwrap();
    true
}

fn assert_redis_data(s: &TestServer) {
    let mut c = s.conn();
    assert_eq!(q::<String>(&mut c, &["GET", "k"]), "v");
    assert_eq!(q::<i64>(&mut c, &["GET", "n"]), 1);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", "l", "0", "-1"]),
        ["a", "b"]
    );
    assert_eq!(q::<String>(&mut c, &["HGET", "h", "f"]), "1");
    assert!(q::<i64>(&mut c, &["TTL", "ttl"]) > 900);
    assert_eq!(q::<Vec<String>>(&mut c, &["MGET", "m1", "m2"]), ["1", "2"]);
}

#[test]
fn starts_from_a_redis_7_resp_log() {
    let tmp = tempfile::tempdir().unwrap();
    if !redis_writes(tmp.path(), "no") {
        return;
    }
    // As Redis left it: a directory with a manifest, a RESP base and an incr file.
    let copy = tempfile::tempdir().unwrap();
    let src = tmp.path().join("appendonlydir");
    std::fs::create_dir(copy.path().join("appendonlydir")).unwrap();
    let mut incr = None;
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_owned();
        if name.to_string_lossy().ends_with(".incr.aof") {
            incr = Some(p.clone());
        }
        std::fs::copy(&p, copy.path().join("appendonlydir").join(name)).unwrap();
    }
    let s = TestServer::start_in(copy.path(), &["--appendonly", "yes"]);
    assert_redis_data(&s);
    drop(s);

    // A single RESP file (Redis before 7.0 style) is migrated into a directory.
    let single = tempfile::tempdir().unwrap();
    std::fs::copy(incr.unwrap(), single.path().join("appendonly.aof")).unwrap();
    let s = TestServer::start_in(single.path(), &["--appendonly", "yes"]);
    assert_redis_data(&s);
    let mut c = s.conn();
    let _: () = q(&mut c, &["SET", "after", "migration"]);
    drop(c);
    let mut s = s;
    s.kill();
    assert!(single.path().join("appendonlydir/appendonly.aof").exists());
    let s = TestServer::start_in(single.path(), &["--appendonly", "yes"]);
    assert_redis_data(&s);
    assert_eq!(q::<String>(&mut s.conn(), &["GET", "after"]), "migration");
}

#[test]
fn rdb_preamble_base_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    if !redis_writes(tmp.path(), "yes") {
        return;
    }
    let (code, log) = start_refused(tmp.path(), &["--appendonly", "yes"]);
    assert_ne!(code, 0);
    assert!(log.contains("starts with an RDB preamble"), "{log}");
}

#[test]
fn write_errors_refuse_writes_with_misconf_until_solved() {
    let s = TestServer::start(&["--appendonly", "yes", "--enable-debug-command", "yes"]);
    let mut c = s.conn();
    let _: () = q(&mut c, &["SET", "a", "1"]);
    let _: () = q(&mut c, &["DEBUG", "AOF-FAIL-WRITES", "1"]);
    // The write that meets the error is acknowledged (everysec, as in Redis) and kept.
    let _: () = q(&mut c, &["SET", "b", "2"]);
    let misconf = "MISCONF Errors writing to the AOF file: No space left on device";
    // The writer thread meets the error after the reply: until then writes are still taken
    // (and kept, to be written once the disk accepts them).
    let start = Instant::now();
    let mut c_acked = false;
    loop {
        let mut cmd = redis::cmd("SET");
        cmd.arg("c").arg("3");
        match cmd.query::<()>(&mut c) {
            Err(e) => {
                assert_eq!(
                    format!("{} {}", e.code().unwrap(), e.detail().unwrap()),
                    misconf
                );
                break;
            }
            Ok(()) => {
                c_acked = true;
                assert!(start.elapsed() < Duration::from_secs(5), "no MISCONF");
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut raw = s.raw();
    assert_eq!(
        raw.cmd(&["SET", "x", "y"]),
        format!("-{misconf}\r\n").into_bytes()
    );
    assert_eq!(err(&mut c, &["PING"]), misconf);
    assert_eq!(q::<String>(&mut c, &["GET", "a"]), "1");
    let info: String = q(&mut c, &["INFO", "persistence"]);
    assert!(info.contains("aof_last_write_status:err\r\n"), "{info}");
    let _: () = q(&mut c, &["DEBUG", "AOF-FAIL-WRITES", "0"]);
    let start = Instant::now();
    while redis::cmd("SET")
        .arg("d")
        .arg("4")
        .query::<()>(&mut c)
        .is_err()
    {
        assert!(start.elapsed() < Duration::from_secs(5), "still refused");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(q::<Vec<i64>>(&mut c, &["WAITAOF", "1", "0", "0"]), [1, 0]);
    let mut s = s;
    let dir = s.dir.clone();
    s.kill();
    let s2 = TestServer::start_in(&dir, &["--appendonly", "yes"]);
    let mut c = s2.conn();
    let got: Vec<Option<String>> = q(&mut c, &["MGET", "a", "b", "c", "d"]);
    let c_val = c_acked.then(|| "3".to_string());
    assert_eq!(
        got,
        [Some("1".into()), Some("2".into()), c_val, Some("4".into())]
    );
}

#[test]
fn waitaof() {
    let s = TestServer::start(&[]);
    let mut c = s.conn();
    assert_eq!(
        err(&mut c, &["WAITAOF", "1", "0", "0"]),
        "ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled."
    );
    assert_eq!(q::<Vec<i64>>(&mut c, &["WAITAOF", "0", "0", "0"]), [0, 0]);
    assert_eq!(
        err(&mut c, &["WAITAOF", "0", "0", "-1"]),
        "ERR timeout is negative"
    );
    assert_eq!(
        err(&mut c, &["WAITAOF", "x", "0", "0"]),
        "ERR value is not an integer or out of range"
    );
    drop(c);
    drop(s);

    let s = TestServer::start(&["--appendonly", "yes", "--appendfsync", "everysec"]);
    let mut c = s.conn();
    let _: () = q(&mut c, &["SET", "a", "1"]);
    // everysec: the fsync comes within about a second.
    let start = Instant::now();
    assert_eq!(q::<Vec<i64>>(&mut c, &["WAITAOF", "1", "0", "0"]), [1, 0]);
    assert!(start.elapsed() < Duration::from_secs(3));
    let start = Instant::now();
    assert_eq!(q::<Vec<i64>>(&mut c, &["WAITAOF", "0", "1", "200"]), [1, 0]);
    assert!(start.elapsed() >= Duration::from_millis(200));
    // Inside MULTI it answers at once.
    let r: Vec<Vec<i64>> = redis::pipe()
        .atomic()
        .cmd("WAITAOF")
        .arg(1)
        .arg(1)
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(r, [[1, 0]]);
}

/// A slow script replayed from the log (here by DEBUG LOADAOF) lets other clients in, as in
/// Redis, and they are told `-LOADING`, not `-BUSY`; the script's write is loaded.
#[test]
fn slow_script_in_the_log_answers_loading() {
    let dir = tempfile::tempdir().unwrap();
    let script = "redis.call('set',KEYS[1],'y'); for i=1,1500000 do redis.call('ping') end \
                  return 'ok'";
    let mut resp = Vec::new();
    for argv in [&["SELECT", "9"][..], &["EVAL", script, "1", "x"]] {
        resp.extend_from_slice(format!("*{}\r\n", argv.len()).as_bytes());
        for a in argv {
            resp.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
    }
    std::fs::write(dir.path().join("appendonly.aof"), &resp).unwrap();
    let args = ["--appendonly", "yes", "--busy-reply-threshold", "1"];
    let args = [&args[..], &["--enable-debug-command", "yes"]].concat();
    let s = TestServer::start_in(dir.path(), &args);
    let mut c = s.conn();
    let ping = |c: &mut redis::Connection| match redis::cmd("PING").query::<String>(c) {
        Ok(pong) => pong,
        Err(e) => format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or("")),
    };
    // A PING the event loop took just before the replay began is answered when it ends (its
    // reply waits with the turn's others): try again then, a few times.
    let mut seen = Vec::new();
    for _ in 0..5 {
        let url = s.url();
        let loader = std::thread::spawn(move || {
            let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
            q::<String>(&mut c, &["DEBUG", "LOADAOF"])
        });
        while !loader.is_finished() && !seen.iter().any(|e: &String| e.starts_with("LOADING")) {
            seen.push(ping(&mut c));
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(loader.join().unwrap(), "OK");
        if seen.iter().any(|e| e.starts_with("LOADING")) {
            break;
        }
    }
    let loading = seen.iter().find(|e| e.starts_with("LOADING"));
    let loading = loading.unwrap_or_else(|| panic!("no LOADING among {seen:?}"));
    assert_eq!(loading, "LOADING Redis is loading the dataset in memory");
    assert!(seen.iter().all(|e| e == "PONG" || e == loading), "{seen:?}");
    let _: () = q(&mut c, &["SELECT", "9"]);
    assert_eq!(q::<String>(&mut c, &["GET", "x"]), "y");
}
