//! Black-box tests for the string commands (GET, SET and friends, INCR*, LCS) over TCP.

mod common;

use common::{q, err, TestServer};

#[test]
fn set_options_and_conditions() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    assert_eq!(q::<String>(&mut c, &["SET", "k", "v"]), "OK");
    assert_eq!(q::<Option<String>>(&mut c, &["SET", "k", "w", "NX"]), None);
    assert_eq!(q::<Option<String>>(&mut c, &["SET", "n", "w", "XX"]), None);
    assert_eq!(
        q::<Option<String>>(&mut c, &["SET", "k", "w", "XX", "GET"]).as_deref(),
        Some("v")
    );
    assert_eq!(q::<Option<String>>(&mut c, &["SET", "n", "w", "GET"]), None);
    assert_eq!(
        q::<Option<String>>(&mut c, &["GET", "n"]).as_deref(),
        Some("w")
    );
    assert_eq!(
        q::<String>(&mut c, &["SET", "k", "v", "EX", "100", "EX", "200"]),
        "OK"
    );
    assert_eq!(
        err(&mut c, &["SET", "k", "v", "NX", "XX"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["SET", "k", "v", "EX", "1", "PX", "1"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["SET", "k", "v", "KEEPTTL", "EX", "1"]),
        "ERR syntax error"
    );
    assert_eq!(err(&mut c, &["SET", "k", "v", "EX"]), "ERR syntax error");
    assert_eq!(
        err(&mut c, &["SET", "k", "v", "EX", "0", "FOO"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["SET", "k", "v", "EX", "0"]),
        "ERR invalid expire time in 'set' command"
    );
    assert_eq!(
        err(&mut c, &["SET", "k", "v", "PX", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&mut c, &["SET", "k", "v", "EX", "9223372036854775807"]),
        "ERR invalid expire time in 'set' command"
    );
    assert_eq!(
        err(&mut c, &["SET", "k"]),
        "ERR wrong number of arguments for 'set' command"
    );
}

#[test]
fn setnx_setex_psetex_getset() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    assert_eq!(q::<i64>(&mut c, &["SETNX", "k", "1"]), 1);
    assert_eq!(q::<i64>(&mut c, &["SETNX", "k", "2"]), 0);
    assert_eq!(q::<String>(&mut c, &["SETEX", "e", "100", "v"]), "OK");
    assert_eq!(q::<String>(&mut c, &["PSETEX", "p", "100000", "v"]), "OK");
    assert_eq!(
        err(&mut c, &["SETEX", "e", "0", "v"]),
        "ERR invalid expire time in 'setex' command"
    );
    assert_eq!(
        err(&mut c, &["PSETEX", "e", "-5", "v"]),
        "ERR invalid expire time in 'psetex' command"
    );
    assert_eq!(
        err(&mut c, &["SETEX", "e", "x", "v"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        q::<Option<String>>(&mut c, &["GETSET", "k", "9"]).as_deref(),
        Some("1")
    );
    assert_eq!(q::<Option<String>>(&mut c, &["GETSET", "new", "9"]), None);
    assert_eq!(
        q::<Option<String>>(&mut c, &["GET", "new"]).as_deref(),
        Some("9")
    );
}

#[test]
fn psetex_key_expires() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    assert_eq!(q::<String>(&mut c, &["PSETEX", "k", "50", "v"]), "OK");
    std::thread::sleep(std::time::Duration::from_millis(120));
    assert_eq!(q::<Option<String>>(&mut c, &["GET", "k"]), None);
}

#[test]
fn getdel_and_getex() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<()>(&mut c, &["SET", "k", "v"]);
    assert_eq!(
        q::<Option<String>>(&mut c, &["GETDEL", "k"]).as_deref(),
        Some("v")
    );
    assert_eq!(q::<Option<String>>(&mut c, &["GETDEL", "k"]), None);
    q::<()>(&mut c, &["SET", "k", "v"]);
    assert_eq!(
        q::<Option<String>>(&mut c, &["GETEX", "k", "PX", "50"]).as_deref(),
        Some("v")
    );
    std::thread::sleep(std::time::Duration::from_millis(120));
    assert_eq!(q::<Option<String>>(&mut c, &["GETEX", "k"]), None);
    q::<()>(&mut c, &["SET", "k", "v"]);
    assert_eq!(
        q::<Option<String>>(&mut c, &["GETEX", "k", "EXAT", "1"]).as_deref(),
        Some("v")
    );
    assert_eq!(q::<Option<String>>(&mut c, &["GET", "k"]), None);
    assert_eq!(
        q::<Option<String>>(&mut c, &["GETEX", "nokey", "EX", "0"]),
        None
    );
    q::<()>(&mut c, &["SET", "k", "v"]);
    assert_eq!(
        err(&mut c, &["GETEX", "k", "EX", "0"]),
        "ERR invalid expire time in 'getex' command"
    );
    assert_eq!(
        err(&mut c, &["GETEX", "k", "PERSIST", "EX", "1"]),
        "ERR syntax error"
    );
    assert_eq!(err(&mut c, &["GETEX", "k", "KEEPTTL"]), "ERR syntax error");
    assert_eq!(
        q::<Option<String>>(&mut c, &["GETEX", "k", "PERSIST"]).as_deref(),
        Some("v")
    );
}

#[test]
fn mget_mset_msetnx() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    assert_eq!(q::<String>(&mut c, &["MSET", "a", "1", "b", "2"]), "OK");
    let v: Vec<Option<String>> = q(&mut c, &["MGET", "a", "nokey", "b"]);
    assert_eq!(v, vec![Some("1".into()), None, Some("2".into())]);
    assert_eq!(
        err(&mut c, &["MSET", "a", "1", "b"]),
        "ERR wrong number of arguments for 'mset' command"
    );
    assert_eq!(q::<i64>(&mut c, &["MSETNX", "a", "3", "c", "4"]), 0);
    assert_eq!(q::<Option<String>>(&mut c, &["GET", "c"]), None);
    assert_eq!(q::<i64>(&mut c, &["MSETNX", "c", "3", "d", "4"]), 1);
    assert_eq!(
        err(&mut c, &["MSETNX", "x", "1", "y"]),
        "ERR wrong number of arguments for 'msetnx' command"
    );
}

#[test]
fn append_strlen_setrange_getrange() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    assert_eq!(q::<i64>(&mut c, &["APPEND", "k", "hello"]), 5);
    assert_eq!(q::<i64>(&mut c, &["APPEND", "k", " world"]), 11);
    assert_eq!(q::<i64>(&mut c, &["STRLEN", "k"]), 11);
    assert_eq!(q::<i64>(&mut c, &["STRLEN", "nokey"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SETRANGE", "k", "6", "W"]), 11);
    assert_eq!(q::<String>(&mut c, &["GET", "k"]), "hello World");
    assert_eq!(q::<i64>(&mut c, &["SETRANGE", "r", "3", "x"]), 4);
    assert_eq!(q::<Vec<u8>>(&mut c, &["GET", "r"]), b"\0\0\0x");
    assert_eq!(q::<i64>(&mut c, &["SETRANGE", "none", "3", ""]), 0);
    assert_eq!(q::<Option<String>>(&mut c, &["GET", "none"]), None);
    assert_eq!(
        err(&mut c, &["SETRANGE", "k", "-1", "x"]),
        "ERR offset is out of range"
    );
    assert_eq!(
        err(&mut c, &["SETRANGE", "k", "536870912", "x"]),
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    );
    assert_eq!(q::<String>(&mut c, &["GETRANGE", "k", "0", "4"]), "hello");
    assert_eq!(q::<String>(&mut c, &["GETRANGE", "k", "-5", "-1"]), "World");
    assert_eq!(q::<String>(&mut c, &["GETRANGE", "k", "-1", "-5"]), "");
    assert_eq!(
        q::<String>(&mut c, &["GETRANGE", "k", "5", "1000"]),
        " World"
    );
    assert_eq!(q::<String>(&mut c, &["GETRANGE", "nokey", "0", "-1"]), "");
    assert_eq!(q::<String>(&mut c, &["SUBSTR", "k", "0", "0"]), "h");
    assert_eq!(
        err(&mut c, &["GETRANGE", "k", "a", "1"]),
        "ERR value is not an integer or out of range"
    );
}

#[test]
fn append_respects_proto_max_bulk_len() {
    let srv = TestServer::start(&["--proto-max-bulk-len", "1048576"]);
    let mut c = srv.conn();
    let big = "x".repeat(1024 * 1024);
    assert_eq!(q::<i64>(&mut c, &["APPEND", "k", &big]), 1024 * 1024);
    assert_eq!(
        err(&mut c, &["APPEND", "k", "y"]),
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    );
}

#[test]
fn incr_family() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    assert_eq!(q::<i64>(&mut c, &["INCR", "n"]), 1);
    assert_eq!(q::<i64>(&mut c, &["INCRBY", "n", "10"]), 11);
    assert_eq!(q::<i64>(&mut c, &["DECR", "n"]), 10);
    assert_eq!(q::<i64>(&mut c, &["DECRBY", "n", "20"]), -10);
    assert_eq!(
        err(&mut c, &["DECRBY", "n", "-9223372036854775808"]),
        "ERR decrement would overflow"
    );
    q::<()>(&mut c, &["SET", "n", "9223372036854775807"]);
    assert_eq!(
        err(&mut c, &["INCR", "n"]),
        "ERR increment or decrement would overflow"
    );
    q::<()>(&mut c, &["SET", "n", " 1"]);
    assert_eq!(
        err(&mut c, &["INCR", "n"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&mut c, &["INCRBY", "m", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(q::<String>(&mut c, &["INCRBYFLOAT", "f", "10.5"]), "10.5");
    assert_eq!(q::<String>(&mut c, &["INCRBYFLOAT", "f", "0.1"]), "10.6");
    assert_eq!(q::<String>(&mut c, &["INCRBYFLOAT", "f", "-10.6"]), "0");
    q::<()>(&mut c, &["SET", "g", "5.0e3"]);
    assert_eq!(q::<String>(&mut c, &["INCRBYFLOAT", "g", "2.0e2"]), "5200");
    assert_eq!(
        err(&mut c, &["INCRBYFLOAT", "g", "x"]),
        "ERR value is not a valid float"
    );
    assert_eq!(
        err(&mut c, &["INCRBYFLOAT", "g", "inf"]),
        "ERR increment would produce NaN or Infinity"
    );
    q::<()>(&mut c, &["SET", "h", "abc"]);
    assert_eq!(
        err(&mut c, &["INCRBYFLOAT", "h", "1"]),
        "ERR value is not a valid float"
    );
}

#[test]
fn incr_keeps_ttl() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<()>(&mut c, &["SET", "n", "1", "PX", "80"]);
    assert_eq!(q::<i64>(&mut c, &["INCR", "n"]), 2);
    assert_eq!(q::<String>(&mut c, &["INCRBYFLOAT", "n", "1"]), "3");
    std::thread::sleep(std::time::Duration::from_millis(150));
    assert_eq!(q::<Option<String>>(&mut c, &["GET", "n"]), None);
}

#[test]
fn lcs_variants() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<()>(&mut c, &["MSET", "a", "ohmytext", "b", "mynewtext"]);
    assert_eq!(q::<String>(&mut c, &["LCS", "a", "b"]), "mytext");
    assert_eq!(q::<i64>(&mut c, &["LCS", "a", "b", "LEN"]), 6);
    assert_eq!(q::<String>(&mut c, &["LCS", "a", "nokey"]), "");
    let mut r = srv.raw();
    let reply = r.cmd(&["LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"]);
    assert_eq!(
        String::from_utf8(reply).unwrap(),
        "*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n\
         $3\r\nlen\r\n:6\r\n"
    );
    assert_eq!(
        String::from_utf8(r.cmd(&["LCS", "a", "b", "IDX"])).unwrap(),
        "*4\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n\
         *2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n"
    );
    assert_eq!(
        err(&mut c, &["LCS", "a", "b", "LEN", "IDX"]),
        "ERR If you want both the length and indexes, please just use IDX."
    );
    assert_eq!(err(&mut c, &["LCS", "a", "b", "FOO"]), "ERR syntax error");
    assert_eq!(
        err(&mut c, &["LCS", "a", "b", "MINMATCHLEN"]),
        "ERR syntax error"
    );
}

#[test]
fn raw_replies_match_redis_bytes() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    assert_eq!(r.cmd(&["GET", "nokey"]), b"$-1\r\n");
    assert_eq!(r.cmd(&["SET", "k", "v", "NX"]), b"+OK\r\n");
    assert_eq!(r.cmd(&["SET", "k", "v", "NX"]), b"$-1\r\n");
    assert_eq!(r.cmd(&["INCRBYFLOAT", "f", "1"]), b"$1\r\n1\r\n");
    assert_eq!(r.cmd(&["MGET", "k", "x"]), b"*2\r\n$1\r\nv\r\n$-1\r\n");
}
