//! Generic key commands against the real binary: values, replies and exact errors.

mod common;

use common::{q, TestServer};

/// Sends a command on a raw connection and returns the error line Redis would send.
fn err(r: &mut common::RawConn, args: &[&str]) -> String {
    let reply = r.cmd(args);
    let line = String::from_utf8_lossy(&reply).into_owned();
    assert!(
        line.starts_with('-'),
        "{args:?}: expected an error, got {line:?}"
    );
    line[1..].trim_end().to_string()
}

#[test]
fn del_unlink_exists_touch_type() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let mut r = srv.raw();
    let _: () = q(&mut c, &["SET", "a", "1"]);
    let _: () = q(&mut c, &["SET", "b", "2"]);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "a", "a", "b", "zz"]), 3);
    assert_eq!(q::<i64>(&mut c, &["TOUCH", "a", "zz"]), 1);
    assert_eq!(q::<String>(&mut c, &["TYPE", "a"]), "string");
    assert_eq!(q::<String>(&mut c, &["TYPE", "zz"]), "none");
    assert_eq!(q::<i64>(&mut c, &["DEL", "a", "a", "zz"]), 1);
    assert_eq!(q::<i64>(&mut c, &["UNLINK", "b"]), 1);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "a", "b"]), 0);
    assert_eq!(
        err(&mut r, &["DEL"]),
        "ERR wrong number of arguments for 'del' command"
    );
}

#[test]
fn keys_uses_redis_glob_rules() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    for k in ["foo", "fao", "f*o", "bar", "fooo"] {
        let _: () = q(&mut c, &["SET", k, "v"]);
    }
    let mut got: Vec<String> = q(&mut c, &["KEYS", "f?o"]);
    got.sort();
    assert_eq!(got, ["f*o", "fao", "foo"]);
    let got: Vec<String> = q(&mut c, &["KEYS", "f\\*o"]);
    assert_eq!(got, ["f*o"]);
    let mut got: Vec<String> = q(&mut c, &["KEYS", "f[^a]o*"]);
    got.sort();
    assert_eq!(got, ["f*o", "foo", "fooo"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["KEYS", "*"]).len(), 5);
}

#[test]
fn rename_and_renamenx() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let mut r = srv.raw();
    assert_eq!(err(&mut r, &["RENAME", "nokey", "x"]), "ERR no such key");
    assert_eq!(err(&mut r, &["RENAMENX", "nokey", "x"]), "ERR no such key");
    let _: () = q(&mut c, &["SET", "a", "1", "PX", "100000"]);
    let _: () = q(&mut c, &["SET", "b", "2"]);
    assert_eq!(q::<String>(&mut c, &["RENAME", "a", "a"]), "OK");
    assert_eq!(q::<i64>(&mut c, &["RENAMENX", "a", "a"]), 0);
    assert_eq!(q::<i64>(&mut c, &["RENAMENX", "a", "b"]), 0);
    assert_eq!(q::<String>(&mut c, &["RENAME", "a", "b"]), "OK");
    assert_eq!(
        q::<Option<String>>(&mut c, &["GET", "b"]).as_deref(),
        Some("1")
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "a"]), 0);
    // The expiry travels with the value.
    let pttl: i64 = q(&mut c, &["PTTL", "b"]);
    assert!(pttl > 90_000 && pttl <= 100_000, "{pttl}");
    assert_eq!(q::<i64>(&mut c, &["RENAMENX", "b", "c"]), 1);
}

#[test]
fn copy_with_db_and_replace() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let mut r = srv.raw();
    let _: () = q(&mut c, &["SET", "a", "hello"]);
    assert_eq!(
        err(&mut r, &["COPY", "a", "a"]),
        "ERR source and destination objects are the same"
    );
    assert_eq!(err(&mut r, &["COPY", "a", "b", "foo"]), "ERR syntax error");
    assert_eq!(
        err(&mut r, &["COPY", "a", "b", "DB", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&mut r, &["COPY", "a", "b", "DB", "16"]),
        "ERR DB index is out of range"
    );
    assert_eq!(q::<i64>(&mut c, &["COPY", "nokey", "b"]), 0);
    assert_eq!(q::<i64>(&mut c, &["COPY", "a", "b"]), 1);
    let _: () = q(&mut c, &["SET", "a", "world"]);
    assert_eq!(q::<i64>(&mut c, &["COPY", "a", "b"]), 0);
    assert_eq!(q::<i64>(&mut c, &["COPY", "a", "b", "REPLACE"]), 1);
    assert_eq!(q::<String>(&mut c, &["GET", "b"]), "world");
    assert_eq!(q::<i64>(&mut c, &["COPY", "a", "a", "DB", "2"]), 1);
    let _: () = q(&mut c, &["SELECT", "2"]);
    assert_eq!(q::<String>(&mut c, &["GET", "a"]), "world");
}

#[test]
fn move_between_databases() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let mut r = srv.raw();
    let _: () = q(&mut c, &["SET", "k", "v"]);
    assert_eq!(
        err(&mut r, &["MOVE", "k", "0"]),
        "ERR source and destination objects are the same"
    );
    assert_eq!(
        err(&mut r, &["MOVE", "k", "99"]),
        "ERR DB index is out of range"
    );
    assert_eq!(
        err(&mut r, &["MOVE", "k", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(q::<i64>(&mut c, &["MOVE", "k", "1"]), 1);
    assert_eq!(q::<i64>(&mut c, &["MOVE", "k", "1"]), 0);
    let _: () = q(&mut c, &["SELECT", "1"]);
    assert_eq!(q::<String>(&mut c, &["GET", "k"]), "v");
}

#[test]
fn swapdb_flushdb_flushall() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let mut r = srv.raw();
    let _: () = q(&mut c, &["SET", "k", "v0"]);
    assert_eq!(
        err(&mut r, &["SWAPDB", "x", "1"]),
        "ERR invalid first DB index"
    );
    assert_eq!(
        err(&mut r, &["SWAPDB", "0", "y"]),
        "ERR invalid second DB index"
    );
    assert_eq!(
        err(&mut r, &["SWAPDB", "0", "16"]),
        "ERR DB index is out of range"
    );
    assert_eq!(q::<String>(&mut c, &["SWAPDB", "0", "1"]), "OK");
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "k"]), 0);
    let _: () = q(&mut c, &["SELECT", "1"]);
    assert_eq!(q::<String>(&mut c, &["GET", "k"]), "v0");
    assert_eq!(err(&mut r, &["FLUSHDB", "x"]), "ERR syntax error");
    assert_eq!(err(&mut r, &["FLUSHALL", "ASYNC", "x"]), "ERR syntax error");
    assert_eq!(q::<String>(&mut c, &["FLUSHDB", "SYNC"]), "OK");
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "k"]), 0);
    for db in ["0", "3"] {
        let _: () = q(&mut c, &["SELECT", db]);
        for i in 0..200 {
            let _: () = q(&mut c, &["SET", &format!("k{i}"), "v"]);
        }
    }
    assert_eq!(q::<String>(&mut c, &["FLUSHALL", "ASYNC"]), "OK");
    assert_eq!(q::<Vec<String>>(&mut c, &["KEYS", "*"]).len(), 0);
    let _: () = q(&mut c, &["SELECT", "0"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["KEYS", "*"]).len(), 0);
}

#[test]
fn randomkey_and_object() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let mut r = srv.raw();
    assert_eq!(q::<Option<String>>(&mut c, &["RANDOMKEY"]), None);
    let _: () = q(&mut c, &["SET", "n", "12345"]);
    let _: () = q(&mut c, &["SET", "s", "hello"]);
    let _: () = q(&mut c, &["SET", "r", &"x".repeat(50)]);
    let k: String = q(&mut c, &["RANDOMKEY"]);
    assert!(["n", "s", "r"].contains(&k.as_str()));
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "n"]), "int");
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "s"]), "embstr");
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "r"]), "raw");
    assert_eq!(
        q::<Option<String>>(&mut c, &["OBJECT", "ENCODING", "zz"]),
        None
    );
    assert_eq!(q::<i64>(&mut c, &["OBJECT", "REFCOUNT", "s"]), 1);
    // The LRU clock counts whole seconds (as Redis's does), so a key written just before can
    // read one tick idle when the clock ticked in between: 0 or 1, never more.
    let idle = q::<i64>(&mut c, &["OBJECT", "IDLETIME", "s"]);
    assert!((0..=1).contains(&idle), "idle {idle}");
    assert!(err(&mut r, &["OBJECT", "FREQ", "s"])
        .starts_with("ERR An LFU maxmemory policy is not selected"));
    assert_eq!(
        err(&mut r, &["OBJECT", "FOO"]),
        "ERR unknown subcommand 'FOO'. Try OBJECT HELP."
    );
    assert_eq!(
        err(&mut r, &["OBJECT", "ENCODING"]),
        "ERR wrong number of arguments for 'object|encoding' command"
    );
    let help: Vec<String> = q(&mut c, &["OBJECT", "HELP"]);
    assert_eq!(help.len(), 15);
    assert_eq!(
        help[0],
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    );
}
