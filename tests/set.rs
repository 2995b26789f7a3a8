//! Black-box tests for the set commands (SADD, SPOP, SINTER and friends) over TCP.

mod common;

use common::{q, err, TestServer};

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn intset_until_a_string_or_too_many_members() {
    let srv = TestServer::start(&["--set-max-intset-entries", "4"]);
    let mut c = srv.conn();
    assert_eq!(q::<i64>(&mut c, &["SADD", "s", "3", "1", "-2", "1"]), 3);
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "s"]), "intset");
    // Intsets reply in ascending order.
    assert_eq!(q::<Vec<String>>(&mut c, &["SMEMBERS", "s"]), vec!["-2", "1", "3"]);
    q::<i64>(&mut c, &["SADD", "s", "4"]);
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "s"]), "intset");
    q::<i64>(&mut c, &["SADD", "s", "5"]);
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "s"]), "hashtable");
    q::<i64>(&mut c, &["SADD", "t", "1", "x"]);
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "t"]), "hashtable");
    q::<i64>(&mut c, &["SADD", "u", "012"]);
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "u"]), "hashtable");
}

#[test]
fn membership_and_removal() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<i64>(&mut c, &["SADD", "s", "a", "b", "c"]);
    assert_eq!(q::<i64>(&mut c, &["SCARD", "s"]), 3);
    assert_eq!(q::<i64>(&mut c, &["SISMEMBER", "s", "b"]), 1);
    assert_eq!(q::<Vec<i64>>(&mut c, &["SMISMEMBER", "s", "a", "z"]), vec![1, 0]);
    assert_eq!(q::<Vec<i64>>(&mut c, &["SMISMEMBER", "none", "a"]), vec![0]);
    assert_eq!(q::<i64>(&mut c, &["SREM", "s", "a", "b", "c", "d"]), 3);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "s"]), 0);
    q::<()>(&mut c, &["SET", "str", "v"]);
    let wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value";
    assert_eq!(err(&mut c, &["SADD", "str", "a"]), wrongtype);
    assert_eq!(err(&mut c, &["SINTER", "none", "str"]), wrongtype);
    assert_eq!(err(&mut c, &["SADD", "s"]), "ERR wrong number of arguments for 'sadd' command");
}

#[test]
fn spop_and_srandmember() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<i64>(&mut c, &["SADD", "s", "a", "b", "c", "d", "e"]);
    let picks: Vec<String> = q(&mut c, &["SRANDMEMBER", "s", "3"]);
    assert_eq!(picks.len(), 3);
    assert_eq!(sorted(picks.clone()).windows(2).filter(|w| w[0] == w[1]).count(), 0);
    assert_eq!(q::<Vec<String>>(&mut c, &["SRANDMEMBER", "s", "-20"]).len(), 20);
    assert_eq!(q::<Vec<String>>(&mut c, &["SRANDMEMBER", "s", "50"]).len(), 5);
    let popped: Vec<String> = q(&mut c, &["SPOP", "s", "2"]);
    assert_eq!(popped.len(), 2);
    assert_eq!(q::<i64>(&mut c, &["SCARD", "s"]), 3);
    let rest: Vec<String> = q(&mut c, &["SPOP", "s", "100"]);
    let mut all = popped;
    all.extend(rest);
    assert_eq!(sorted(all), vec!["a", "b", "c", "d", "e"]);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "s"]), 0);
    assert_eq!(q::<Option<String>>(&mut c, &["SPOP", "s"]), None);
    assert_eq!(err(&mut c, &["SPOP", "s", "-1"]), "ERR value is out of range, must be positive");
    assert_eq!(err(&mut c, &["SPOP", "s", "1", "2"]), "ERR syntax error");
    assert_eq!(
        err(&mut c, &["SRANDMEMBER", "s", "-9223372036854775808"]),
        "ERR value is out of range, value must between -9223372036854775807 and \
         9223372036854775807"
    );
}

#[test]
fn algebra_and_store() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<i64>(&mut c, &["SADD", "a", "1", "2", "3", "x"]);
    q::<i64>(&mut c, &["SADD", "b", "2", "3", "4"]);
    assert_eq!(sorted(q(&mut c, &["SINTER", "a", "b"])), vec!["2", "3"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["SINTER", "a", "none"]).len(), 0);
    assert_eq!(sorted(q(&mut c, &["SUNION", "a", "b"])), vec!["1", "2", "3", "4", "x"]);
    assert_eq!(sorted(q(&mut c, &["SDIFF", "a", "b"])), vec!["1", "x"]);
    assert_eq!(q::<i64>(&mut c, &["SINTERCARD", "2", "a", "b"]), 2);
    assert_eq!(q::<i64>(&mut c, &["SINTERCARD", "2", "a", "b", "LIMIT", "1"]), 1);
    assert_eq!(err(&mut c, &["SINTERCARD", "0", "a"]), "ERR numkeys should be greater than 0");
    assert_eq!(
        err(&mut c, &["SINTERCARD", "3", "a", "b"]),
        "ERR Number of keys can't be greater than number of args"
    );
    let limit = err(&mut c, &["SINTERCARD", "1", "a", "LIMIT", "-1"]);
    assert_eq!(limit, "ERR LIMIT can't be negative");
    assert_eq!(q::<i64>(&mut c, &["SINTERSTORE", "d", "a", "b"]), 2);
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "d"]), "intset");
    assert_eq!(q::<i64>(&mut c, &["SUNIONSTORE", "d", "a", "b"]), 5);
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "d"]), "hashtable");
    assert_eq!(q::<i64>(&mut c, &["SDIFFSTORE", "d", "b", "a"]), 1);
    assert_eq!(q::<Vec<String>>(&mut c, &["SMEMBERS", "d"]), vec!["4"]);
    assert_eq!(q::<i64>(&mut c, &["SDIFFSTORE", "d", "a", "a"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "d"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "a", "b", "x"]), 1);
    assert_eq!(q::<i64>(&mut c, &["SISMEMBER", "b", "x"]), 1);
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "a", "b", "x"]), 0);
}

#[test]
fn resp3_replies_are_sets() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    r.cmd(&["HELLO", "3"]);
    r.cmd(&["SADD", "s", "1", "2"]);
    assert_eq!(r.cmd(&["SMEMBERS", "s"]), b"~2\r\n$1\r\n1\r\n$1\r\n2\r\n");
    assert_eq!(r.cmd(&["SUNION", "s", "none"]), b"~2\r\n$1\r\n1\r\n$1\r\n2\r\n");
    assert_eq!(r.cmd(&["SINTER", "none"]), b"~0\r\n");
    assert_eq!(r.cmd(&["SPOP", "none", "1"]), b"~0\r\n");
    assert_eq!(r.cmd(&["SRANDMEMBER", "none", "1"]), b"*0\r\n");
    assert_eq!(r.cmd(&["SPOP", "none"]), b"_\r\n");
}

#[test]
fn sscan_walks_a_large_set_with_a_cursor() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let members: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    let mut cmd = redis::cmd("SADD");
    cmd.arg("s").arg(&members);
    cmd.query::<i64>(&mut c).unwrap();
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    let mut calls = 0;
    loop {
        let (next, batch): (String, Vec<String>) =
            q(&mut c, &["SSCAN", "s", &cursor, "COUNT", "50"]);
        seen.extend(batch);
        calls += 1;
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    assert!(calls > 10);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 1000);
    let (next, batch): (String, Vec<String>) = q(&mut c, &["SSCAN", "none", "0", "COUNT", "0"]);
    assert_eq!((next.as_str(), batch.len()), ("0", 0));
    assert_eq!(err(&mut c, &["SSCAN", "s", "0", "COUNT", "0"]), "ERR syntax error");
    assert_eq!(err(&mut c, &["SSCAN", "s", "x"]), "ERR invalid cursor");
    q::<i64>(&mut c, &["SADD", "i", "1", "22", "3"]);
    let (next, batch): (String, Vec<String>) = q(&mut c, &["SSCAN", "i", "0", "MATCH", "2*"]);
    assert_eq!((next.as_str(), batch), ("0", vec!["22".to_string()]));
}

/// SADDs `from..to` as `m<i>` in batches of 1000 (separate commands, so the set grows by
/// segment splits rather than being sized up front).
fn add_range(c: &mut redis::Connection, key: &str, from: usize, to: usize) {
    for lo in (from..to).step_by(1000) {
        let members: Vec<String> = (lo..(lo + 1000).min(to)).map(|i| format!("m{i}")).collect();
        redis::cmd("SADD").arg(key).arg(&members).query::<i64>(c).unwrap();
    }
}

#[test]
fn a_set_grown_past_several_segment_splits_stays_whole() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    add_range(&mut c, "big", 0, 20_000);
    // Scan while the set keeps growing: every member present from the start comes back once.
    let (mut cursor, mut seen, mut next_add) = ("0".to_string(), Vec::new(), 20_000);
    loop {
        let (next, batch): (String, Vec<String>) =
            q(&mut c, &["SSCAN", "big", &cursor, "COUNT", "500"]);
        seen.extend(batch);
        if next_add < 50_000 {
            add_range(&mut c, "big", next_add, next_add + 2000);
            next_add += 2000;
        }
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    let mut old: Vec<String> = seen
        .into_iter()
        .filter(|m| m[1..].parse::<usize>().unwrap() < 20_000)
        .collect();
    old.sort();
    let n = old.len();
    old.dedup();
    assert_eq!((n, old.len()), (20_000, 20_000));
    add_range(&mut c, "big", next_add, 50_000);
    assert_eq!(q::<i64>(&mut c, &["SCARD", "big"]), 50_000);
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "big"]), "hashtable");
    let all: Vec<String> = q(&mut c, &["SMEMBERS", "big"]);
    let expected: Vec<String> = (0..50_000).map(|i| format!("m{i}")).collect();
    assert_eq!(sorted(all), sorted(expected));
    assert_eq!(q::<i64>(&mut c, &["SISMEMBER", "big", "m49999"]), 1);
    assert_eq!(q::<i64>(&mut c, &["SISMEMBER", "big", "m50000"]), 0);
    // DUMP / RESTORE and DEBUG DIGEST-VALUE see the same content.
    let dump: Vec<u8> = redis::cmd("DUMP").arg("big").query(&mut c).unwrap();
    redis::cmd("RESTORE").arg("copy").arg(0).arg(dump).query::<()>(&mut c).unwrap();
    assert_eq!(q::<i64>(&mut c, &["SINTERCARD", "2", "big", "copy"]), 50_000);
    // Pop a few thousand distinct members, then most of the rest.
    let popped: Vec<String> = q(&mut c, &["SPOP", "big", "3000"]);
    let mut distinct = popped.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3000);
    assert_eq!(q::<i64>(&mut c, &["SCARD", "big"]), 47_000);
    for m in popped.iter().take(50) {
        assert_eq!(q::<i64>(&mut c, &["SISMEMBER", "big", m]), 0);
        assert_eq!(q::<i64>(&mut c, &["SISMEMBER", "copy", m]), 1);
    }
    let rest: Vec<String> = q(&mut c, &["SPOP", "big", "46990"]);
    assert_eq!(rest.len(), 46_990);
    let left: Vec<String> = q(&mut c, &["SMEMBERS", "big"]);
    assert_eq!(left.len(), 10);
    let picks: Vec<String> = q(&mut c, &["SRANDMEMBER", "big", "-100"]);
    assert!(picks.iter().all(|p| left.contains(p)));
    assert_eq!(q::<i64>(&mut c, &["SCARD", "copy"]), 50_000);
}
