//! DEBUG subcommands.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;

fn dbg() -> TestServer {
    TestServer::start(&["--enable-debug-command", "yes"])
}

#[test]
fn refused_unless_enabled() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    assert_eq!(
        String::from_utf8(r.cmd(&["DEBUG", "HELP"])).unwrap(),
        "-ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", \
         you can run it from a local connection, otherwise you need to set this option in the \
         configuration file, and then restart the server.\r\n"
    );
    let local = TestServer::start(&["--enable-debug-command", "local"]);
    let mut r = local.raw();
    assert_eq!(
        r.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]),
        b"+OK\r\n".to_vec()
    );
}

#[test]
fn digest_is_order_independent_and_zero_when_empty() {
    let a = dbg();
    let b = dbg();
    let mut ca = a.conn();
    let mut cb = b.conn();
    let d: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut ca).unwrap();
    assert_eq!(d, "0".repeat(40));
    for (k, v) in [("x", "1"), ("y", "hello"), ("z", "3")] {
        let _: () = redis::cmd("SET").arg(k).arg(v).query(&mut ca).unwrap();
    }
    for (k, v) in [("z", "3"), ("x", "1"), ("y", "hello")] {
        let _: () = redis::cmd("SET").arg(k).arg(v).query(&mut cb).unwrap();
    }
    let da: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut ca).unwrap();
    let db: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut cb).unwrap();
    assert_eq!(da, db);
    assert_eq!(da.len(), 40);
    let _: () = redis::cmd("SET")
        .arg("y")
        .arg("other")
        .query(&mut cb)
        .unwrap();
    let db2: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut cb).unwrap();
    assert_ne!(da, db2);
    let v: Vec<String> = redis::cmd("DEBUG")
        .arg("DIGEST-VALUE")
        .arg("x")
        .arg("nokey")
        .query(&mut ca)
        .unwrap();
    assert_eq!(v.len(), 2);
    assert_ne!(v[0], "0".repeat(40));
    assert_eq!(v[1], "0".repeat(40));
    let w: Vec<String> = redis::cmd("DEBUG")
        .arg("DIGEST-VALUE")
        .arg("x")
        .query(&mut cb)
        .unwrap();
    assert_eq!(w[0], v[0]);
}

#[test]
fn object_line_format() {
    let srv = dbg();
    let mut r = srv.raw();
    r.cmd(&["SET", "foo", "bar"]);
    let line = String::from_utf8(r.cmd(&["DEBUG", "OBJECT", "foo"])).unwrap();
    assert!(line.starts_with("+Value at:0x"), "{line}");
    assert!(
        line.contains(" refcount:1 encoding:embstr serializedlength:4 lru:"),
        "{line}"
    );
    assert!(line.ends_with(" lru_seconds_idle:0\r\n"), "{line}");
    assert_eq!(
        r.cmd(&["DEBUG", "OBJECT", "nokey"]),
        b"-ERR no such key\r\n".to_vec()
    );
}

#[test]
fn populate_creates_keys() {
    let srv = dbg();
    let mut c = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("key:1")
        .arg("keep")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg("10")
        .query(&mut c)
        .unwrap();
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 10);
    let v: String = redis::cmd("GET").arg("key:1").query(&mut c).unwrap();
    assert_eq!(v, "keep");
    let v: String = redis::cmd("GET").arg("key:7").query(&mut c).unwrap();
    assert_eq!(v, "value:7");
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg("2")
        .arg("p")
        .arg("10")
        .query(&mut c)
        .unwrap();
    let v: Vec<u8> = redis::cmd("GET").arg("p:1").query(&mut c).unwrap();
    assert_eq!(v, b"value:1\0\0\0".to_vec());
    let mut r = srv.raw();
    assert_eq!(
        r.cmd(&["DEBUG", "POPULATE", "-1"]),
        b"-ERR value is out of range, must be positive\r\n".to_vec()
    );
}

#[test]
fn set_active_expire_stops_background_expiry() {
    let srv = dbg();
    let mut c = srv.conn();
    let _: () = redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg("0")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("PX")
        .arg("50")
        .query(&mut c)
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 1, "key must survive without active expiry");
    let _: () = redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg("1")
        .query(&mut c)
        .unwrap();
    let start = Instant::now();
    loop {
        let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
        if n == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "active expiry did not run"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn protocol_samples() {
    let srv = dbg();
    let mut r = srv.raw();
    assert_eq!(
        r.cmd(&["DEBUG", "PROTOCOL", "bignum"]),
        b"$37\r\n1234567999999999999999999999999999999\r\n".to_vec()
    );
    assert_eq!(r.cmd(&["DEBUG", "PROTOCOL", "true"]), b":1\r\n".to_vec());
    assert_eq!(r.cmd(&["DEBUG", "PROTOCOL", "null"]), b"$-1\r\n".to_vec());
    if r.cmd(&["HELLO", "3"]).starts_with(b"-") {
        return; // HELLO is built by the connection family; RESP3 checks need it.
    }
    assert_eq!(
        r.cmd(&["DEBUG", "PROTOCOL", "bignum"]),
        b"(1234567999999999999999999999999999999\r\n".to_vec()
    );
    assert_eq!(r.cmd(&["DEBUG", "PROTOCOL", "true"]), b"#t\r\n".to_vec());
    assert_eq!(r.cmd(&["DEBUG", "PROTOCOL", "false"]), b"#f\r\n".to_vec());
    assert_eq!(
        r.cmd(&["DEBUG", "PROTOCOL", "double"]),
        b",3.141\r\n".to_vec()
    );
    assert_eq!(
        r.cmd(&["DEBUG", "PROTOCOL", "set"]),
        b"~3\r\n:0\r\n:1\r\n:2\r\n".to_vec()
    );
    assert_eq!(
        r.cmd(&["DEBUG", "PROTOCOL", "verbatim"]),
        b"=29\r\ntxt:This is a verbatim\nstring\r\n".to_vec()
    );
    assert_eq!(
        r.cmd(&["DEBUG", "PROTOCOL", "map"]),
        b"%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n".to_vec()
    );
    assert!(String::from_utf8(r.cmd(&["DEBUG", "PROTOCOL", "x"]))
        .unwrap()
        .starts_with("-ERR Wrong protocol type name."));
}

#[test]
fn misc_subcommands() {
    let srv = dbg();
    let mut c = srv.conn();
    let start = Instant::now();
    let _: () = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg("0.2")
        .query(&mut c)
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(190));
    let _: () = redis::cmd("DEBUG")
        .arg("LOG")
        .arg("hello-from-test")
        .query(&mut c)
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(srv.log().contains("DEBUG LOG: hello-from-test"));
    let before: String = redis::cmd("INFO").arg("replication").query(&mut c).unwrap();
    let _: () = redis::cmd("DEBUG")
        .arg("CHANGE-REPL-ID")
        .query(&mut c)
        .unwrap();
    let after: String = redis::cmd("INFO").arg("replication").query(&mut c).unwrap();
    assert_ne!(before, after);
    let s: String = redis::cmd("DEBUG")
        .arg("STRINGMATCH-LEN")
        .query(&mut c)
        .unwrap();
    assert_eq!(s, "Apparently Redis did not crash: test passed");
    let mut r = srv.raw();
    assert_eq!(
        r.cmd(&["DEBUG", "NOSUCH"]),
        b"-ERR unknown subcommand or wrong number of arguments for 'NOSUCH'. Try DEBUG HELP.\r\n"
            .to_vec()
    );
}
