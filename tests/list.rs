//! Black-box tests of the list family, including blocking pops across connections.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{err, info_blocked, q, wait_blocked, TestServer};

#[test]
fn push_range_and_index() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    assert_eq!(q::<i64>(&mut c, &["RPUSH", "l", "a", "b", "c"]), 3);
    assert_eq!(q::<i64>(&mut c, &["LPUSH", "l", "x", "y"]), 5);
    assert_eq!(q::<Vec<String>>(&mut c, &["LRANGE", "l", "0", "-1"]), ["y", "x", "a", "b", "c"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["LRANGE", "l", "-2", "100"]), ["b", "c"]);
    assert_eq!(q::<Option<String>>(&mut c, &["LINDEX", "l", "-1"]).as_deref(), Some("c"));
    assert_eq!(q::<Option<String>>(&mut c, &["LINDEX", "l", "9"]), None);
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "l"]), "quicklist");
    assert_eq!(q::<i64>(&mut c, &["LPUSHX", "nokey", "a"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "nokey"]), 0);
}

#[test]
fn many_elements_survive_chunking() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<()>(&mut c, &["CONFIG", "SET", "list-max-listpack-size", "4"]);
    for i in 0..500 {
        q::<i64>(&mut c, &["RPUSH", "l", &i.to_string()]);
    }
    assert_eq!(q::<Option<String>>(&mut c, &["LINDEX", "l", "321"]).as_deref(), Some("321"));
    q::<()>(&mut c, &["LSET", "l", "100", "X"]);
    assert_eq!(q::<i64>(&mut c, &["LINSERT", "l", "BEFORE", "X", "Y"]), 501);
    assert_eq!(q::<Vec<String>>(&mut c, &["LRANGE", "l", "99", "102"]), ["99", "Y", "X", "101"]);
    q::<()>(&mut c, &["LTRIM", "l", "98", "-3"]);
    assert_eq!(q::<i64>(&mut c, &["LLEN", "l"]), 401);
    assert_eq!(q::<Vec<String>>(&mut c, &["RPOP", "l", "2"]), ["497", "496"]);
}

#[test]
fn pops_delete_emptied_lists_and_use_redis_nulls() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<i64>(&mut c, &["RPUSH", "l", "a", "b"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["LPOP", "l", "5"]), ["a", "b"]);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "l"]), 0);
    let mut raw = srv.raw();
    assert_eq!(raw.cmd(&["LPOP", "l"]), b"$-1\r\n");
    assert_eq!(raw.cmd(&["LPOP", "l", "2"]), b"*-1\r\n");
    raw.cmd(&["HELLO", "3"]);
    assert_eq!(raw.cmd(&["LPOP", "l", "2"]), b"_\r\n");
    assert_eq!(raw.cmd(&["LMPOP", "1", "l", "LEFT"]), b"_\r\n");
}

#[test]
fn errors_match_redis() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<()>(&mut c, &["SET", "s", "v"]);
    q::<i64>(&mut c, &["RPUSH", "l", "a"]);
    let wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value";
    assert_eq!(err(&mut c, &["LPUSH", "s", "a"]), wrongtype);
    assert_eq!(err(&mut c, &["LMOVE", "l", "s", "LEFT", "LEFT"]), wrongtype);
    assert_eq!(err(&mut c, &["LPOP", "l", "-1"]), "ERR value is out of range, must be positive");
    assert_eq!(err(&mut c, &["LSET", "l", "5", "x"]), "ERR index out of range");
    assert_eq!(err(&mut c, &["LSET", "nokey", "0", "x"]), "ERR no such key");
    assert_eq!(err(&mut c, &["LPOS", "l", "a", "COUNT", "-1"]), "ERR COUNT can't be negative");
    assert_eq!(err(&mut c, &["LPOS", "l", "a", "MAXLEN", "-1"]), "ERR MAXLEN can't be negative");
    assert!(err(&mut c, &["LPOS", "l", "a", "RANK", "0"]).starts_with("ERR RANK can't be zero"));
    assert_eq!(err(&mut c, &["LMPOP", "0", "l", "LEFT"]), "ERR numkeys should be greater than 0");
    assert_eq!(
        err(&mut c, &["LMPOP", "1", "l", "LEFT", "COUNT", "0"]),
        "ERR count should be greater than 0"
    );
    assert_eq!(
        err(&mut c, &["BLPOP", "l", "abc"]),
        "ERR timeout is not a float or out of range"
    );
    assert_eq!(err(&mut c, &["BLPOP", "l", "-1"]), "ERR timeout is negative");
    assert_eq!(err(&mut c, &["LINSERT", "l", "MIDDLE", "a", "b"]), "ERR syntax error");
}

#[test]
fn lpos_and_lrem() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<i64>(&mut c, &["RPUSH", "l", "a", "b", "a", "c", "a"]);
    assert_eq!(q::<i64>(&mut c, &["LPOS", "l", "a", "RANK", "-1"]), 4);
    assert_eq!(q::<Vec<i64>>(&mut c, &["LPOS", "l", "a", "COUNT", "0", "RANK", "2"]), [2, 4]);
    assert_eq!(q::<Option<i64>>(&mut c, &["LPOS", "l", "c", "MAXLEN", "2"]), None);
    assert_eq!(q::<i64>(&mut c, &["LREM", "l", "-2", "a"]), 2);
    assert_eq!(q::<Vec<String>>(&mut c, &["LRANGE", "l", "0", "-1"]), ["a", "b", "c"]);
}

#[test]
fn lmove_and_lmpop() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<i64>(&mut c, &["RPUSH", "src", "1", "2", "3"]);
    assert_eq!(q::<String>(&mut c, &["LMOVE", "src", "dst", "LEFT", "RIGHT"]), "1");
    assert_eq!(q::<String>(&mut c, &["RPOPLPUSH", "src", "src"]), "3");
    assert_eq!(q::<Vec<String>>(&mut c, &["LRANGE", "src", "0", "-1"]), ["3", "2"]);
    let v: (String, Vec<String>) = q(&mut c, &["LMPOP", "2", "none", "src", "RIGHT", "COUNT", "5"]);
    assert_eq!(v, ("src".to_string(), vec!["2".to_string(), "3".to_string()]));
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "src"]), 0);
}

#[test]
fn blpop_is_served_by_a_later_push() {
    let srv = TestServer::start(&[]);
    let mut waiter = srv.raw();
    waiter.send(b"*3\r\n$5\r\nBLPOP\r\n$2\r\nbl\r\n$1\r\n0\r\n");
    let mut c = srv.conn();
    wait_blocked(&mut c, 1);
    assert_eq!(q::<i64>(&mut c, &["RPUSH", "bl", "foo", "bar"]), 2);
    assert_eq!(waiter.read_reply(), b"*2\r\n$2\r\nbl\r\n$3\r\nfoo\r\n");
    assert_eq!(q::<Vec<String>>(&mut c, &["LRANGE", "bl", "0", "-1"]), ["bar"]);
    assert!(info_blocked(&mut c) == 0);
    // The waiter processes commands again.
    assert_eq!(waiter.cmd(&["PING"]), b"+PONG\r\n");
}

#[test]
fn waiters_are_served_in_the_order_they_blocked() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let mut w1 = srv.raw();
    w1.send(b"*3\r\n$5\r\nBRPOP\r\n$1\r\nk\r\n$1\r\n0\r\n");
    wait_blocked(&mut c, 1);
    let mut w2 = srv.raw();
    w2.send(b"*4\r\n$5\r\nBLPOP\r\n$5\r\nother\r\n$1\r\nk\r\n$1\r\n0\r\n");
    wait_blocked(&mut c, 2);
    q::<i64>(&mut c, &["LPUSH", "k", "first"]);
    assert_eq!(w1.read_reply(), b"*2\r\n$1\r\nk\r\n$5\r\nfirst\r\n");
    q::<i64>(&mut c, &["LPUSH", "k", "second"]);
    assert_eq!(w2.read_reply(), b"*2\r\n$1\r\nk\r\n$6\r\nsecond\r\n");
}

#[test]
fn blmove_served_later_pushes_to_destination() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let mut w = srv.raw();
    w.send(b"*6\r\n$6\r\nBLMOVE\r\n$3\r\nsrc\r\n$3\r\ndst\r\n$4\r\nleft\r\n$5\r\nright\r\n$1\r\n0\r\n");
    wait_blocked(&mut c, 1);
    q::<i64>(&mut c, &["RPUSH", "src", "v"]);
    assert_eq!(w.read_reply(), b"$1\r\nv\r\n");
    assert_eq!(q::<Vec<String>>(&mut c, &["LRANGE", "dst", "0", "-1"]), ["v"]);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "src"]), 0);
}

#[test]
fn blocking_timeout_replies_null_array() {
    let srv = TestServer::start(&[]);
    let mut w = srv.raw();
    let start = Instant::now();
    assert_eq!(w.cmd(&["BLPOP", "nokey", "0.2"]), b"*-1\r\n");
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(190) && took < Duration::from_secs(3), "{took:?}");
    assert_eq!(w.cmd(&["BLMPOP", "0.05", "1", "nokey", "LEFT"]), b"*-1\r\n");
    w.cmd(&["HELLO", "3"]);
    assert_eq!(w.cmd(&["BRPOPLPUSH", "nokey", "d", "0.05"]), b"_\r\n");
}

#[test]
fn commands_pipelined_after_a_blocking_one_wait_for_it() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let mut w = srv.raw();
    w.send(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n*1\r\n$4\r\nPING\r\n");
    wait_blocked(&mut c, 1);
    q::<i64>(&mut c, &["RPUSH", "q", "x"]);
    assert_eq!(w.read_reply(), b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n");
    assert_eq!(w.read_reply(), b"+PONG\r\n");
}

#[test]
fn disconnected_waiter_is_forgotten() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    {
        let mut w = srv.raw();
        w.send(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nz\r\n$1\r\n0\r\n");
        wait_blocked(&mut c, 1);
    }
    let start = Instant::now();
    while info_blocked(&mut c) != 0 {
        assert!(start.elapsed() < Duration::from_secs(5));
        thread::sleep(Duration::from_millis(10));
    }
    q::<i64>(&mut c, &["RPUSH", "z", "kept"]);
    assert_eq!(q::<i64>(&mut c, &["LLEN", "z"]), 1);
}

#[test]
fn debug_packed_threshold_makes_plain_nodes_with_identical_results() {
    let srv = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut c = srv.conn();
    let bad = "ERR argument must be a memory value bigger than 1 and smaller than 4gb";
    for v in ["abc", "-1", "4gb", "1.5", "4294967295"] {
        assert_eq!(err(&mut c, &["DEBUG", "QUICKLIST-PACKED-THRESHOLD", v]), bad);
    }
    for v in ["", "b", "4095mb", "0"] {
        assert_eq!(q::<String>(&mut c, &["DEBUG", "QUICKLIST-PACKED-THRESHOLD", v]), "OK");
    }
    assert_eq!(q::<String>(&mut c, &["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "5b"]), "OK");
    q::<i64>(&mut c, &["RPUSH", "l", "aa", "bb", "cc", "dd", "ee"]);
    q::<String>(&mut c, &["LSET", "l", "2", "eeeeeeeeee"]);
    q::<i64>(&mut c, &["LINSERT", "l", "BEFORE", "eeeeeeeeee", "xxxxxxx"]);
    q::<i64>(&mut c, &["LPUSH", "l", "yyyyyyyyyyyy"]);
    q::<String>(&mut c, &["LSET", "l", "0", "y"]);
    let all = ["y", "aa", "bb", "xxxxxxx", "eeeeeeeeee", "dd", "ee"];
    assert_eq!(q::<Vec<String>>(&mut c, &["LRANGE", "l", "0", "-1"]), all);
    assert_eq!(q::<i64>(&mut c, &["LPOS", "l", "eeeeeeeeee"]), 4);
    assert_eq!(q::<String>(&mut c, &["LINDEX", "l", "3"]), "xxxxxxx");
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "l"]), "quicklist");
    assert_eq!(q::<i64>(&mut c, &["LREM", "l", "0", "xxxxxxx"]), 1);
    q::<String>(&mut c, &["LTRIM", "l", "1", "-1"]);
    assert_eq!(q::<String>(&mut c, &["LMOVE", "l", "m", "LEFT", "RIGHT"]), "aa");
    assert_eq!(q::<String>(&mut c, &["RPOP", "l"]), "ee");
    assert_eq!(q::<Vec<String>>(&mut c, &["LRANGE", "l", "0", "-1"]), ["bb", "eeeeeeeeee", "dd"]);
    assert_eq!(q::<String>(&mut c, &["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "0"]), "OK");
}

#[test]
fn swapdb_wakes_clients_blocked_on_keys_it_brings() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<String>(&mut c, &["SELECT", "1"]);
    q::<i64>(&mut c, &["RPUSH", "k", "hello"]);
    let mut waiter = srv.raw();
    assert_eq!(waiter.cmd(&["SELECT", "9"]), b"+OK\r\n");
    waiter.send(b"*3\r\n$5\r\nBRPOP\r\n$1\r\nk\r\n$1\r\n5\r\n");
    wait_blocked(&mut c, 1);
    assert_eq!(q::<String>(&mut c, &["SWAPDB", "1", "9"]), "OK");
    assert_eq!(waiter.read_reply(), b"*2\r\n$1\r\nk\r\n$5\r\nhello\r\n");
    assert_eq!(info_blocked(&mut c), 0);
}

#[test]
fn swapdb_leaves_client_blocked_when_the_key_expired() {
    let srv = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut c = srv.conn();
    q::<String>(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    q::<String>(&mut c, &["SELECT", "1"]);
    q::<i64>(&mut c, &["RPUSH", "k", "hello"]);
    q::<i64>(&mut c, &["PEXPIRE", "k", "100"]);
    let mut waiter = srv.raw();
    assert_eq!(waiter.cmd(&["SELECT", "9"]), b"+OK\r\n");
    waiter.send(b"*3\r\n$5\r\nBRPOP\r\n$1\r\nk\r\n$1\r\n0\r\n");
    wait_blocked(&mut c, 1);
    thread::sleep(Duration::from_millis(150));
    assert_eq!(q::<String>(&mut c, &["SWAPDB", "1", "9"]), "OK");
    thread::sleep(Duration::from_millis(100));
    assert_eq!(info_blocked(&mut c), 1);
    q::<String>(&mut c, &["SELECT", "9"]);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "k"]), 0);
    q::<i64>(&mut c, &["RPUSH", "k", "again"]);
    assert_eq!(waiter.read_reply(), b"*2\r\n$1\r\nk\r\n$5\r\nagain\r\n");
}

/// A client blocked in a pop shows the `b` flag in CLIENT LIST, as in Redis.
#[test]
fn blocked_client_has_the_b_flag() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let mut blocked = srv.raw();
    let id = String::from_utf8(blocked.cmd(&["CLIENT", "ID"])).unwrap();
    let id = id.trim_start_matches(':').trim().to_string();
    blocked.send(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n");
    common::wait_blocked(&mut c, 1);
    let line: String = common::q(&mut c, &["CLIENT", "LIST", "ID", &id]);
    assert!(line.contains(" flags=b "), "{line}");
    let _: i64 = common::q(&mut c, &["RPUSH", "q", "x"]);
    assert_eq!(blocked.read_reply(), b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n".to_vec());
    let line: String = common::q(&mut c, &["CLIENT", "LIST", "ID", &id]);
    assert!(line.contains(" flags=N "), "{line}");
}
