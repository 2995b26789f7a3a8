//! Black-box tests for SORT and SORT_RO over TCP (expected values checked against Redis 7.0).

mod common;

use common::{q, err, TestServer};
use redis::Connection;

fn strs(c: &mut Connection, args: &[&str]) -> Vec<String> {
    q::<Vec<String>>(c, args)
}

#[test]
fn numeric_alpha_desc_and_limit() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<i64>(&mut c, &["RPUSH", "l", "3", "1", "2", "10", "-5"]);
    assert_eq!(strs(&mut c, &["SORT", "l"]), ["-5", "1", "2", "3", "10"]);
    assert_eq!(strs(&mut c, &["SORT", "l", "DESC"]), ["10", "3", "2", "1", "-5"]);
    assert_eq!(strs(&mut c, &["SORT", "l", "ALPHA"]), ["-5", "1", "10", "2", "3"]);
    assert_eq!(strs(&mut c, &["SORT", "l", "LIMIT", "1", "2"]), ["1", "2"]);
    assert_eq!(strs(&mut c, &["SORT", "l", "LIMIT", "-1", "100"]).len(), 5);
    assert!(strs(&mut c, &["SORT", "l", "LIMIT", "10", "2"]).is_empty());
    assert_eq!(strs(&mut c, &["SORT_RO", "l", "DESC", "LIMIT", "0", "2"]), ["10", "3"]);
    assert!(strs(&mut c, &["SORT", "missing"]).is_empty());
}

#[test]
fn by_nosort_keeps_native_order() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<i64>(&mut c, &["RPUSH", "l", "3", "1", "2"]);
    assert_eq!(strs(&mut c, &["SORT", "l", "BY", "nosort"]), ["3", "1", "2"]);
    assert_eq!(strs(&mut c, &["SORT", "l", "BY", "nosort", "DESC"]), ["2", "1", "3"]);
    q::<i64>(&mut c, &["ZADD", "z", "1", "c", "2", "a", "3", "b", "0", "d"]);
    assert_eq!(strs(&mut c, &["SORT", "z", "BY", "nosort"]), ["d", "c", "a", "b"]);
    assert_eq!(strs(&mut c, &["SORT", "z", "BY", "nosort", "LIMIT", "1", "2"]), ["c", "a"]);
    let desc = strs(&mut c, &["SORT", "z", "BY", "nosort", "DESC", "LIMIT", "1", "2"]);
    assert_eq!(desc, ["a", "c"]);
    assert_eq!(strs(&mut c, &["SORT", "z", "ALPHA"]), ["a", "b", "c", "d"]);
}

#[test]
fn by_and_get_patterns() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<i64>(&mut c, &["RPUSH", "l", "1", "2", "3"]);
    q::<()>(&mut c, &["MSET", "w_1", "30", "w_2", "10", "w_3", "20"]);
    q::<i64>(&mut c, &["HSET", "h_1", "f", "b"]);
    q::<i64>(&mut c, &["HSET", "h_2", "f", "c"]);
    q::<i64>(&mut c, &["HSET", "h_3", "f", "a"]);
    assert_eq!(strs(&mut c, &["SORT", "l", "BY", "w_*"]), ["2", "3", "1"]);
    assert_eq!(strs(&mut c, &["SORT", "l", "BY", "h_*->f", "ALPHA"]), ["3", "1", "2"]);
    let got = strs(&mut c, &["SORT", "l", "BY", "w_*", "GET", "#", "GET", "h_*->f"]);
    assert_eq!(got, ["2", "c", "3", "a", "1", "b"]);
    let v: Vec<Option<String>> = q(&mut c, &["SORT", "l", "GET", "missing_*", "LIMIT", "0", "1"]);
    assert_eq!(v, [None]);
}

#[test]
fn store_replaces_or_deletes_destination() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<i64>(&mut c, &["SADD", "s", "5", "2", "9"]);
    q::<()>(&mut c, &["SET", "dst", "x", "EX", "100"]);
    assert_eq!(q::<i64>(&mut c, &["SORT", "s", "STORE", "dst"]), 3);
    assert_eq!(q::<String>(&mut c, &["TYPE", "dst"]), "list");
    assert_eq!(q::<i64>(&mut c, &["TTL", "dst"]), -1);
    assert_eq!(strs(&mut c, &["LRANGE", "dst", "0", "-1"]), ["2", "5", "9"]);
    // Sets stored with BY nosort are sorted (ALPHA) so the result is reproducible.
    q::<i64>(&mut c, &["SORT", "s", "BY", "nosort", "STORE", "dst"]);
    assert_eq!(strs(&mut c, &["LRANGE", "dst", "0", "-1"]), ["2", "5", "9"]);
    // Missing GET values are stored as empty strings.
    assert_eq!(q::<i64>(&mut c, &["SORT", "s", "GET", "nope_*", "STORE", "dst"]), 3);
    assert_eq!(strs(&mut c, &["LRANGE", "dst", "0", "-1"]), ["", "", ""]);
    assert_eq!(q::<i64>(&mut c, &["SORT", "s", "LIMIT", "5", "5", "STORE", "dst"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "dst"]), 0);
}

#[test]
fn errors() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<i64>(&mut c, &["RPUSH", "l", "1", "a"]);
    q::<()>(&mut c, &["SET", "str", "x"]);
    let conv = "ERR One or more scores can't be converted into double";
    assert_eq!(err(&mut c, &["SORT", "l"]), conv);
    assert_eq!(strs(&mut c, &["SORT", "l", "ALPHA"]), ["1", "a"]);
    assert_eq!(err(&mut c, &["SORT_RO", "l", "STORE", "d"]), "ERR syntax error");
    assert_eq!(err(&mut c, &["SORT", "l", "foo"]), "ERR syntax error");
    assert_eq!(err(&mut c, &["SORT", "l", "LIMIT", "1"]), "ERR syntax error");
    let not_int = "ERR value is not an integer or out of range";
    assert_eq!(err(&mut c, &["SORT", "l", "LIMIT", "x", "1"]), not_int);
    let wrong = "WRONGTYPE Operation against a key holding the wrong kind of value";
    assert_eq!(err(&mut c, &["SORT", "str"]), wrong);
    assert_eq!(
        err(&mut c, &["SORT"]),
        "ERR wrong number of arguments for 'sort' command"
    );
}

#[test]
fn resp3_nulls_for_missing_get() {
    let srv = TestServer::start(&[]);
    let mut raw = srv.raw();
    raw.cmd(&["RPUSH", "l", "1"]);
    raw.cmd(&["HELLO", "3"]);
    assert_eq!(raw.cmd(&["SORT", "l", "GET", "x_*", "GET", "#"]), b"*2\r\n_\r\n$1\r\n1\r\n");
}

#[test]
fn sorting_a_small_zset_converts_it_to_skiplist() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<i64>(&mut c, &["ZADD", "z", "2", "b", "1", "a"]);
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "z"]), "listpack");
    assert_eq!(strs(&mut c, &["SORT_RO", "z", "BY", "nosort", "DESC"]), ["b", "a"]);
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "z"]), "skiplist");
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "0", "-1", "WITHSCORES"]), ["a", "1", "b", "2"]);
}
