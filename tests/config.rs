//! CONFIG GET / SET / RESETSTAT / REWRITE / HELP, config files and command-line overrides.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::{free_port, TestServer};

fn err(r: Vec<u8>) -> String {
    String::from_utf8(r).unwrap()
}

#[test]
fn get_exact_glob_alias_and_several_patterns() {
    let srv = TestServer::start(&["--hz", "20"]);
    let mut r = srv.raw();
    assert_eq!(
        r.cmd(&["CONFIG", "GET", "hz"]),
        b"*2\r\n$2\r\nhz\r\n$2\r\n20\r\n".to_vec()
    );
    assert_eq!(
        // Redis echoes an exact (non-glob) name as the client spelled it.
        r.cmd(&["CONFIG", "GET", "HASH-MAX-ZIPLIST-ENTRIES"]),
        b"*2\r\n$24\r\nHASH-MAX-ZIPLIST-ENTRIES\r\n$3\r\n512\r\n".to_vec()
    );
    assert_eq!(r.cmd(&["CONFIG", "GET", "nosuch"]), b"*0\r\n".to_vec());
    let mut c = srv.conn();
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory*")
        .arg("hz")
        .query(&mut c)
        .unwrap();
    let names: Vec<&String> = v.iter().step_by(2).collect();
    for n in [
        "maxmemory",
        "maxmemory-policy",
        "maxmemory-samples",
        "maxmemory-clients",
        "hz",
    ] {
        assert!(
            names.iter().any(|x| x.as_str() == n),
            "{n} missing in {v:?}"
        );
    }
    let all: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("*")
        .query(&mut c)
        .unwrap();
    // 176 visible parameters plus 16 aliases, like Redis 7.0.15.
    assert_eq!(all.len() / 2, 192);
    // Hidden parameters answer only to their exact name.
    assert!(!all.contains(&"watchdog-period".to_string()));
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("watchdog-period")
        .query(&mut c)
        .unwrap();
    assert_eq!(v, vec!["watchdog-period", "0"]);
}

#[test]
fn get_is_a_map_in_resp3() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    if r.cmd(&["HELLO", "3"]).starts_with(b"-") {
        return; // HELLO is built by the connection family; RESP3 checks need it.
    }
    assert_eq!(
        r.cmd(&["CONFIG", "GET", "timeout"]),
        b"%1\r\n$7\r\ntimeout\r\n$1\r\n0\r\n".to_vec()
    );
}

#[test]
fn set_errors_match_redis() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    assert_eq!(
        err(r.cmd(&["CONFIG", "SET", "hz", "abc"])),
        "-ERR CONFIG SET failed (possibly related to argument 'hz') - argument couldn't be parsed into an integer\r\n"
    );
    assert_eq!(
        err(r.cmd(&["CONFIG", "SET", "hz", "-1"])),
        "-ERR CONFIG SET failed (possibly related to argument 'hz') - argument must be between 0 and 2147483647 inclusive\r\n"
    );
    assert_eq!(
        err(r.cmd(&["CONFIG", "SET", "maxmemory", "1xb"])),
        "-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value\r\n"
    );
    assert_eq!(
        err(r.cmd(&["CONFIG", "SET", "nosuch", "1"])),
        "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n"
    );
    assert_eq!(
        err(r.cmd(&["CONFIG", "SET", "databases", "3"])),
        "-ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config\r\n"
    );
    assert_eq!(
        err(r.cmd(&["CONFIG", "SET", "dir", "/"])),
        "-ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config\r\n"
    );
    assert_eq!(
        err(r.cmd(&["CONFIG", "SET", "hz", "10", "HZ", "11"])),
        "-ERR CONFIG SET failed (possibly related to argument 'HZ') - duplicate parameter\r\n"
    );
    assert_eq!(
        err(r.cmd(&["CONFIG", "SET", "hz", "10", "maxmemory"])),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        err(r.cmd(&["CONFIG", "SET", "hz"])),
        "-ERR wrong number of arguments for 'config|set' command\r\n"
    );
}

#[test]
fn set_is_all_or_nothing() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let e = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("10mb")
        .arg("appendonly")
        .arg("maybe")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(e.to_string().contains("appendonly"), "{e}");
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query(&mut c)
        .unwrap();
    assert_eq!(v[1], "0");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("10mb")
        .arg("hash-max-ziplist-entries")
        .arg("64")
        .query(&mut c)
        .unwrap();
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query(&mut c)
        .unwrap();
    assert_eq!(v[1], "10485760");
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("hash-max-listpack-entries")
        .query(&mut c)
        .unwrap();
    assert_eq!(v[1], "64");
}

#[test]
fn requirepass_and_maxclients_take_effect_at_once() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("secret")
        .query(&mut c)
        .unwrap();
    let mut r = srv.raw();
    assert_eq!(
        err(r.cmd(&["GET", "x"])),
        "-NOAUTH Authentication required.\r\n"
    );
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxclients")
        .arg("2")
        .query(&mut c)
        .unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"-ERR max number of clients reached\r\n");
}

#[test]
fn timeout_closes_idle_clients() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("timeout")
        .arg("1")
        .query(&mut c)
        .unwrap();
    let mut r = srv.raw();
    std::thread::sleep(Duration::from_millis(2500));
    r.send(b"PING\r\n");
    let mut buf = [0u8; 16];
    let n = r.s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "idle client should have been closed");
}

#[test]
fn resetstat_clears_stats() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let _: Option<String> = redis::cmd("GET").arg("missing").query(&mut c).unwrap();
    let _ = redis::cmd("CONFIG")
        .arg("SET")
        .arg("hz")
        .arg("x")
        .query::<()>(&mut c);
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    let info: String = redis::cmd("INFO").arg("all").query(&mut c).unwrap();
    assert!(info.contains("keyspace_misses:0\r\n"), "{info}");
    assert!(info.contains("total_error_replies:0\r\n"));
    assert!(!info.contains("cmdstat_get"));
    assert!(!info.contains("errorstat_ERR"));
}

#[test]
fn help_lists_subcommands() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let v: Vec<String> = redis::cmd("CONFIG").arg("HELP").query(&mut c).unwrap();
    assert_eq!(
        v[0],
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    );
    assert!(v.contains(&"REWRITE".to_string()));
    assert_eq!(v.last().unwrap(), "    Prints this help.");
}

#[test]
fn rewrite_without_config_file_fails() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    assert_eq!(
        err(r.cmd(&["CONFIG", "REWRITE"])),
        "-ERR The server is running without a config file\r\n"
    );
}

#[test]
fn config_file_include_and_rewrite_preserves_comments() {
    let tmp = tempfile::tempdir().unwrap();
    let inc = tmp.path().join("extra.conf");
    std::fs::write(&inc, "maxmemory-policy allkeys-lru\n").unwrap();
    let conf = tmp.path().join("redis.conf");
    let text = format!(
        "# my precious comment\nhz 15\ninclude {}\nsave \"\"\nappendonly no\n",
        inc.display()
    );
    std::fs::write(&conf, text).unwrap();
    let srv = TestServer::start_with_file(&conf, &[]);
    let mut c = srv.conn();
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query(&mut c)
        .unwrap();
    assert_eq!(v[1], "allkeys-lru");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("hz")
        .arg("33")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("2gb")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("CONFIG").arg("REWRITE").query(&mut c).unwrap();
    let out = std::fs::read_to_string(&conf).unwrap();
    assert!(out.starts_with("# my precious comment\nhz 33\n"), "{out}");
    assert!(out.contains("# Generated by CONFIG REWRITE\n"), "{out}");
    assert!(out.contains("\nmaxmemory 2gb\n"), "{out}");
    assert!(out.contains(&format!("include {}", inc.display())), "{out}");
    let info: String = redis::cmd("INFO").arg("server").query(&mut c).unwrap();
    assert!(info.contains(&format!(
        "config_file:{}\r\n",
        conf.canonicalize().unwrap().display()
    )));
}

#[test]
fn bad_config_file_line_is_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("bad.conf");
    std::fs::write(&conf, "hz 10\nnosuchdirective 1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ferrodis-server"))
        .arg(&conf)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Reading the configuration file, at line 2"),
        "{stderr}"
    );
    assert!(stderr.contains(">>> 'nosuchdirective 1'"), "{stderr}");
    assert!(
        stderr.contains("Bad directive or wrong number of arguments"),
        "{stderr}"
    );
}

/// ferrodis has no cluster mode: a config asking for one is refused instead of silently
/// serving as a standalone server.
#[test]
fn cluster_enabled_yes_is_fatal() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferrodis-server"))
        .args(["--port", "0", "--cluster-enabled", "yes"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(">>> 'cluster-enabled \"yes\"'"), "{stderr}");
    assert!(
        stderr.contains("ferrodis does not implement Redis Cluster: only 'cluster-enabled no'"),
        "{stderr}"
    );
}

#[test]
fn loglevel_and_logfile() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("srv.log");
    let srv = TestServer::start(&["--logfile", log.to_str().unwrap(), "--loglevel", "notice"]);
    let mut c = srv.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("enable-debug-command")
        .arg("yes")
        .query(&mut c)
        .unwrap_or(());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("Ready to accept connections"), "{text}");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("loglevel")
        .arg("warning")
        .query(&mut c)
        .unwrap();
    // A notice-level line (CONFIG REWRITE failure is a warning, a successful one a notice) is
    // no longer written once the level is `warning`; SHUTDOWN's warning still is.
    let _: () = redis::cmd("SHUTDOWN").query(&mut c).unwrap_or(());
    std::thread::sleep(Duration::from_millis(300));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("User requested shutdown"), "{text}");
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(b"").unwrap();
}

/// CONFIG SET port / bind listen for real: the new address answers, the old one is closed,
/// open connections stay, and an address that cannot be bound refuses the change with
/// Redis's error while the old one keeps listening.
#[test]
fn config_set_port_and_bind_relisten() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    let new_port = free_port();
    let port_arg = new_port.to_string();
    assert_eq!(r.cmd(&["CONFIG", "SET", "port", &port_arg]), b"+OK\r\n");
    std::thread::sleep(Duration::from_millis(100));
    let mut moved = TcpStream::connect(("127.0.0.1", new_port)).unwrap();
    moved.write_all(b"PING\r\n").unwrap();
    let mut buf = [0u8; 7];
    moved.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
    assert!(TcpStream::connect(("127.0.0.1", srv.port)).is_err());
    assert_eq!(r.cmd(&["PING"]), b"+PONG\r\n", "open connections survive the switch");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port().to_string();
    assert_eq!(
        err(r.cmd(&["CONFIG", "SET", "port", &taken_port])),
        "-ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on \
         this port. Check server logs.\r\n"
    );
    assert_eq!(
        r.cmd(&["CONFIG", "GET", "port"]),
        format!("*2\r\n$4\r\nport\r\n${}\r\n{}\r\n", port_arg.len(), port_arg).into_bytes()
    );
    assert_eq!(
        err(r.cmd(&["CONFIG", "SET", "bind", "127.0.0.1 192.0.2.1"])),
        "-ERR CONFIG SET failed (possibly related to argument 'bind') - Failed to bind to \
         specified addresses.\r\n"
    );
    assert_eq!(r.cmd(&["CONFIG", "SET", "bind", "127.0.0.1 -::1"]), b"+OK\r\n");
    std::thread::sleep(Duration::from_millis(100));
    let mut again = TcpStream::connect(("127.0.0.1", new_port)).unwrap();
    again.write_all(b"PING\r\n").unwrap();
    again.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
}

/// `daemonize yes`: the command returns at once, the server keeps running in the background
/// with the pid it wrote to `pidfile`, and removes that file when it shuts down.
#[test]
fn daemonize_and_pidfile() {
    let tmp = tempfile::tempdir().unwrap();
    let pidfile = tmp.path().join("ferrodis.pid");
    let log = tmp.path().join("ferrodis.log");
    let mut tries = 0;
    let (port, pid) = loop {
        let port = free_port();
        let status = Command::new(env!("CARGO_BIN_EXE_ferrodis-server"))
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--daemonize", "yes", "--pidfile", pidfile.to_str().unwrap()])
            .args(["--logfile", log.to_str().unwrap()])
            .current_dir(tmp.path())
            .status()
            .unwrap();
        assert!(status.success(), "the foreground process exits cleanly");
        let start = std::time::Instant::now();
        let mut pid = None;
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(text) = std::fs::read_to_string(&pidfile) {
                if let Ok(p) = text.trim().parse::<u32>() {
                    pid = Some(p);
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = pid.expect("pid file written");
        let mut up = false;
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(mut c) = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                .unwrap()
                .get_connection()
            {
                let info: String = redis::cmd("INFO").arg("server").query(&mut c).unwrap();
                up = info.contains(&format!("process_id:{pid}\r\n"));
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if up {
            break (port, pid);
        }
        // The port was taken by another test in between: that daemon exited; try another.
        let _ = std::fs::remove_file(&pidfile);
        tries += 1;
        assert!(
            tries < 5,
            "daemonized server did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    };
    assert_ne!(pid, std::process::id());
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap();
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("daemonize")
        .query(&mut c)
        .unwrap();
    assert_eq!(v, ["daemonize", "yes"]);
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut c);
    let start = std::time::Instant::now();
    while pidfile.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "pid file left behind"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
