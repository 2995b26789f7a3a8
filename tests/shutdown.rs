//! Shutting down: SHUTDOWN waiting for lagging replicas (shutdown-timeout), SHUTDOWN ABORT,
//! SIGTERM / SIGINT and the `shutdown-on-sig*` settings, DEBUG PAUSE-CRON.

mod common;

use std::io::Read;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use common::{err, info_opt, q, wait_until, RawConn, TestServer};

const REPL: [&str; 4] = ["--repl-diskless-sync-delay", "0", "--enable-debug-command", "yes"];

fn signal(srv: &TestServer, sig: &str) {
    let pid = srv.child.as_ref().expect("running").id().to_string();
    let ok = std::process::Command::new("kill").args([sig, &pid]).status().unwrap();
    assert!(ok.success());
}

/// Waits (up to 10 s) for the server process to end.
fn wait_exit(srv: &mut TestServer) -> ExitStatus {
    let child = srv.child.as_mut().expect("running");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("server did not exit");
}

fn still_running(srv: &mut TestServer) -> bool {
    srv.child.as_mut().expect("running").try_wait().unwrap().is_none()
}

/// A master with one replica that has acknowledged everything.
fn master_and_replica(master_args: &[&str]) -> (TestServer, TestServer) {
    let mut args: Vec<&str> = REPL.to_vec();
    args.extend_from_slice(master_args);
    let master = TestServer::start(&args);
    let replica = TestServer::start(&REPL);
    let port = master.port.to_string();
    let _: String = q(&mut replica.conn(), &["REPLICAOF", "127.0.0.1", &port]);
    let mut m = master.conn();
    let _: () = q(&mut m, &["SET", "k", "1"]);
    wait_until("replica acked", || {
        let offset = info_opt(&mut m, "replication", "master_repl_offset").unwrap();
        info_opt(&mut m, "replication", "slave0")
            .is_some_and(|s| s.contains(&format!("offset={offset},")))
    });
    (master, replica)
}

/// Reads until the peer closes; true if it closed without sending anything.
fn closes_silently(r: &mut RawConn) -> bool {
    let mut buf = [0u8; 64];
    matches!(r.s.read(&mut buf), Ok(0))
}

#[test]
fn shutdown_waits_for_a_lagging_replica_and_abort_cancels_it() {
    let (mut master, mut replica) = master_and_replica(&["--shutdown-timeout", "60"]);
    let mut m = master.conn();
    signal(&replica, "-STOP");
    let _: i64 = q(&mut m, &["INCR", "k"]);
    let mut blocked = master.raw();
    blocked.send(b"*1\r\n$8\r\nSHUTDOWN\r\n");
    wait_until("shutdown waiting", || {
        info_opt(&mut m, "server", "shutdown_in_milliseconds")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|ms| ms > 0 && ms <= 60_000)
    });
    assert_eq!(info_opt(&mut m, "clients", "blocked_clients").as_deref(), Some("1"));
    // Writes are paused meanwhile; reads are served.
    let mut writer = master.raw();
    writer.send(b"*3\r\n$3\r\nSET\r\n$1\r\nw\r\n$1\r\n1\r\n");
    assert!(writer.read_some(Duration::from_millis(200)).is_empty());
    assert_eq!(q::<String>(&mut m, &["GET", "k"]), "2");
    assert_eq!(q::<String>(&mut m, &["SHUTDOWN", "ABORT"]), "OK");
    assert_eq!(blocked.read_reply(), b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n");
    assert_eq!(writer.read_reply(), b"+OK\r\n");
    assert_eq!(info_opt(&mut m, "server", "shutdown_in_milliseconds"), None);
    assert_eq!(err(&mut m, &["SHUTDOWN", "ABORT"]), "ERR No shutdown in progress.");
    assert!(master.log().contains("Shutdown manually aborted."));
    // Once the replica catches up, the shutdown completes without waiting for the timeout.
    blocked.send(b"*1\r\n$8\r\nSHUTDOWN\r\n");
    std::thread::sleep(Duration::from_millis(200));
    assert!(still_running(&mut master));
    signal(&replica, "-CONT");
    assert!(closes_silently(&mut blocked));
    assert!(wait_exit(&mut master).success());
    let log = master.log();
    assert!(log.contains("1 of 1 replicas are in sync when shutting down."), "{log}");
    assert!(!log.contains("Lagging replica"), "{log}");
    let mut r = replica.conn();
    assert_eq!(q::<String>(&mut r, &["GET", "w"]), "1");
    replica.kill();
}

#[test]
fn shutdown_gives_up_on_a_lagging_replica_after_the_timeout() {
    let (mut master, replica) = master_and_replica(&["--shutdown-timeout", "1"]);
    let mut m = master.conn();
    signal(&replica, "-STOP");
    let _: i64 = q(&mut m, &["INCR", "k"]);
    let started = Instant::now();
    signal(&master, "-TERM");
    assert!(wait_exit(&mut master).success());
    assert!(started.elapsed() >= Duration::from_millis(900));
    signal(&replica, "-CONT");
    let log = master.log();
    assert!(log.contains("Received SIGTERM scheduling shutdown..."), "{log}");
    assert!(log.contains("Lagging replica 127.0.0.1:"), "{log}");
    assert!(log.contains("0 of 1 replicas are in sync when shutting down."), "{log}");
}

#[test]
fn shutdown_now_does_not_wait() {
    let (mut master, replica) = master_and_replica(&["--shutdown-timeout", "60"]);
    let mut m = master.conn();
    signal(&replica, "-STOP");
    let _: i64 = q(&mut m, &["INCR", "k"]);
    let mut r = master.raw();
    r.send(b"*2\r\n$8\r\nSHUTDOWN\r\n$3\r\nNOW\r\n");
    assert!(closes_silently(&mut r));
    assert!(wait_exit(&mut master).success());
    signal(&replica, "-CONT");
}

#[test]
fn sigterm_can_be_aborted_while_the_cron_is_paused() {
    let mut srv = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut c = srv.conn();
    assert_eq!(q::<String>(&mut c, &["DEBUG", "PAUSE-CRON", "1"]), "OK");
    signal(&srv, "-TERM");
    wait_until("signal logged", || srv.log().contains("Received SIGTERM"));
    assert_eq!(q::<String>(&mut c, &["SHUTDOWN", "ABORT"]), "OK");
    assert_eq!(q::<String>(&mut c, &["DEBUG", "PAUSE-CRON", "0"]), "OK");
    std::thread::sleep(Duration::from_millis(300));
    assert!(still_running(&mut srv));
    assert_eq!(q::<String>(&mut c, &["PING"]), "PONG");
}

#[test]
fn signals_follow_shutdown_on_sig_settings() {
    // Save points, but `shutdown-on-sigterm nosave`: no snapshot.
    let mut srv = TestServer::start(&["--save", "900 1", "--shutdown-on-sigterm", "nosave"]);
    let _: () = q(&mut srv.conn(), &["SET", "a", "1"]);
    signal(&srv, "-TERM");
    assert!(wait_exit(&mut srv).success());
    assert!(!srv.dir.join("dump.rdb").exists());
    // No save points, but `shutdown-on-sigint save`: a snapshot.
    let mut srv = TestServer::start(&["--shutdown-on-sigint", "save"]);
    let _: () = q(&mut srv.conn(), &["SET", "a", "1"]);
    signal(&srv, "-INT");
    assert!(wait_exit(&mut srv).success());
    assert!(srv.dir.join("dump.rdb").exists());
    assert!(srv.log().contains("Saving the final RDB snapshot before exiting."));
}

#[test]
fn a_second_sigint_during_the_final_save_exits_at_once() {
    let mut srv = TestServer::start(&["--save", "900 1", "--rdb-key-save-delay", "200000"]);
    let mut c = srv.conn();
    for i in 0..20 {
        let _: () = q(&mut c, &["SET", &i.to_string(), "v"]);
    }
    let pid = srv.child.as_ref().unwrap().id();
    let temp = srv.dir.join(format!("temp-{pid}.rdb"));
    signal(&srv, "-INT");
    wait_until("temporary file", || temp.exists());
    signal(&srv, "-INT");
    let st = wait_exit(&mut srv);
    assert_eq!(st.code(), Some(1));
    assert!(!temp.exists());
    assert!(!srv.dir.join("dump.rdb").exists());
    assert!(srv.log().contains("You insist... exiting now."));
}

#[test]
fn shutdown_failing_to_save_keeps_running_unless_force() {
    let mut srv = TestServer::start(&["--save", "900 1"]);
    std::fs::create_dir(srv.dir.join("dump.rdb")).unwrap();
    let mut c = srv.conn();
    let _: () = q(&mut c, &["SET", "a", "1"]);
    assert_eq!(err(&mut c, &["SHUTDOWN"]), "ERR Errors trying to SHUTDOWN. Check logs.");
    signal(&srv, "-TERM");
    wait_until("failed save logged", || {
        srv.log().matches("Error trying to save the DB, can't exit.").count() == 2
    });
    assert!(still_running(&mut srv));
    assert_eq!(q::<String>(&mut c, &["PING"]), "PONG");
    let mut r = srv.raw();
    r.send(b"*2\r\n$8\r\nSHUTDOWN\r\n$5\r\nFORCE\r\n");
    assert!(closes_silently(&mut r));
    assert!(wait_exit(&mut srv).success());
    assert!(srv.log().contains("Error trying to save the DB. Exit anyway."));
}

#[test]
fn shutdown_abort_takes_no_other_argument() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    assert_eq!(r.cmd(&["SHUTDOWN", "ABORT", "NOW"]), b"-ERR syntax error\r\n");
    assert_eq!(r.cmd(&["SHUTDOWN", "NOSAVE", "ABORT"]), b"-ERR syntax error\r\n");
    assert_eq!(r.cmd(&["SHUTDOWN", "ABORT"]), b"-ERR No shutdown in progress.\r\n");
}
