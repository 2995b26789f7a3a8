//! Sorted set commands against a real ferrodis process.

mod common;

use common::{err, q, wait_blocked, TestServer};
use redis::Commands;

#[test]
fn zadd_flags_and_scores() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    assert_eq!(q::<i64>(&mut c, &["ZADD", "z", "1", "a", "2", "b"]), 2);
    assert_eq!(
        q::<i64>(&mut c, &["ZADD", "z", "CH", "GT", "0", "a", "5", "b"]),
        1
    );
    assert_eq!(
        q::<Option<String>>(&mut c, &["ZADD", "z", "NX", "INCR", "1", "a"]),
        None
    );
    assert_eq!(
        q::<String>(&mut c, &["ZINCRBY", "z", "0.1", "a"]),
        "1.1000000000000001"
    );
    assert_eq!(q::<String>(&mut c, &["ZSCORE", "z", "b"]), "5");
    assert_eq!(
        err(&mut c, &["ZADD", "z", "GT", "LT", "1", "a"]),
        "ERR GT, LT, and/or NX options at the same time are not compatible"
    );
    assert_eq!(
        err(&mut c, &["ZADD", "z", "INCR", "1", "a", "2", "b"]),
        "ERR INCR option supports a single increment-element pair"
    );
    q::<i64>(&mut c, &["ZADD", "inf", "inf", "x"]);
    assert_eq!(
        err(&mut c, &["ZINCRBY", "inf", "-inf", "x"]),
        "ERR resulting score is not a number (NaN)"
    );
    let _: () = c.set("str", "v").unwrap();
    assert!(err(&mut c, &["ZADD", "str", "1", "a"]).starts_with("WRONGTYPE"));
}

#[test]
fn ranges_by_rank_score_and_lex() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<i64>(
        &mut c,
        &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"],
    );
    let v: Vec<String> = q(&mut c, &["ZRANGE", "z", "(1", "3", "BYSCORE", "WITHSCORES"]);
    assert_eq!(v, ["b", "2", "c", "3"]);
    let v: Vec<String> = q(
        &mut c,
        &[
            "ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "1", "2",
        ],
    );
    assert_eq!(v, ["c", "b"]);
    let v: Vec<String> = q(&mut c, &["ZREVRANGE", "z", "0", "1"]);
    assert_eq!(v, ["d", "c"]);
    assert_eq!(q::<i64>(&mut c, &["ZCOUNT", "z", "-inf", "(3"]), 2);
    assert_eq!(q::<i64>(&mut c, &["ZRANK", "z", "c"]), 2);
    assert_eq!(q::<i64>(&mut c, &["ZREVRANK", "z", "c"]), 1);
    q::<i64>(&mut c, &["ZADD", "l", "0", "a", "0", "b", "0", "c"]);
    let v: Vec<String> = q(&mut c, &["ZRANGEBYLEX", "l", "(a", "+"]);
    assert_eq!(v, ["b", "c"]);
    assert_eq!(
        err(&mut c, &["ZRANGEBYLEX", "l", "a", "+"]),
        "ERR min or max not valid string range item"
    );
    assert_eq!(
        err(&mut c, &["ZCOUNT", "z", "x", "1"]),
        "ERR min or max is not a float"
    );
    assert_eq!(
        err(&mut c, &["ZRANGE", "z", "0", "1", "LIMIT", "0", "1"]),
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
    );
    assert_eq!(q::<i64>(&mut c, &["ZRANGESTORE", "dst", "z", "0", "1"]), 2);
    let v: Vec<String> = q(&mut c, &["ZRANGE", "dst", "0", "-1"]);
    assert_eq!(v, ["a", "b"]);
}

#[test]
fn large_sets_convert_to_skiplist_and_keep_order() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    for i in 0..300 {
        q::<i64>(
            &mut c,
            &["ZADD", "big", &(i * 7 % 300).to_string(), &format!("m{i}")],
        );
    }
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "big"]),
        "skiplist"
    );
    assert_eq!(q::<i64>(&mut c, &["ZCARD", "big"]), 300);
    let v: Vec<String> = q(&mut c, &["ZRANGE", "big", "100", "102", "WITHSCORES"]);
    assert_eq!(v[1], "100");
    assert_eq!(q::<i64>(&mut c, &["ZCOUNT", "big", "(10", "20"]), 10);
    assert_eq!(
        q::<i64>(&mut c, &["ZREMRANGEBYSCORE", "big", "0", "(100"]),
        100
    );
    assert_eq!(q::<Option<i64>>(&mut c, &["ZRANK", "big", "m0"]), None);
    let (cursor, items): (String, Vec<String>) = q(&mut c, &["ZSCAN", "big", "0", "COUNT", "1000"]);
    assert_eq!(cursor, "0");
    assert_eq!(items.len(), 400);
}

/// Enough members for a deep tree: ZADD score changes, ranks and ranges agree with a model.
#[test]
fn large_set_score_updates_keep_ranks_and_ranges() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let n = 20_000u64;
    let score = |i: u64, round: u64| (i * 7919 + round * 104_729) % 5_000;
    for round in 0..2 {
        let mut p = redis::pipe();
        for i in 0..n {
            p.cmd("ZADD")
                .arg("big")
                .arg(score(i, round))
                .arg(format!("m{i:05}"))
                .ignore();
        }
        let () = p.query(&mut c).unwrap();
    }
    let mut model: Vec<(u64, String)> = (0..n).map(|i| (score(i, 1), format!("m{i:05}"))).collect();
    model.sort();
    assert_eq!(q::<u64>(&mut c, &["ZCARD", "big"]), n);
    for r in [0, 1, 4_999, 12_345, 19_999] {
        let (s, m) = &model[r];
        assert_eq!(q::<Option<usize>>(&mut c, &["ZRANK", "big", m]), Some(r));
        assert_eq!(
            q::<Option<usize>>(&mut c, &["ZREVRANK", "big", m]),
            Some(19_999 - r)
        );
        let got: Vec<String> = q(&mut c, &["ZRANGE", "big", &r.to_string(), &r.to_string()]);
        assert_eq!(got, vec![m.clone()]);
        assert_eq!(q::<String>(&mut c, &["ZSCORE", "big", m]), s.to_string());
    }
    let got: Vec<String> = q(&mut c, &["ZREVRANGE", "big", "100", "104"]);
    let want: Vec<String> = model
        .iter()
        .rev()
        .skip(100)
        .take(5)
        .map(|e| e.1.clone())
        .collect();
    assert_eq!(got, want);
    let below = model.iter().filter(|e| e.0 < 2_500).count();
    assert_eq!(
        q::<usize>(&mut c, &["ZCOUNT", "big", "-inf", "(2500"]),
        below
    );
    assert_eq!(
        q::<usize>(&mut c, &["ZREMRANGEBYRANK", "big", "0", "14999"]),
        15_000
    );
    let rest: Vec<String> = q(&mut c, &["ZRANGE", "big", "0", "-1"]);
    let want: Vec<String> = model[15_000..].iter().map(|e| e.1.clone()).collect();
    assert_eq!(rest, want);
}

#[test]
fn pops_and_set_algebra() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<i64>(&mut c, &["ZADD", "a", "1", "x", "2", "y", "3", "z"]);
    q::<i64>(&mut c, &["ZADD", "b", "10", "y", "20", "z", "30", "w"]);
    let v: Vec<String> = q(
        &mut c,
        &["ZINTER", "2", "a", "b", "WEIGHTS", "2", "1", "WITHSCORES"],
    );
    assert_eq!(v, ["y", "14", "z", "26"]);
    let v: Vec<String> = q(&mut c, &["ZUNION", "2", "a", "b", "AGGREGATE", "MAX"]);
    assert_eq!(v, ["x", "y", "z", "w"]);
    assert_eq!(q::<i64>(&mut c, &["ZDIFFSTORE", "d", "2", "a", "b"]), 1);
    assert_eq!(
        q::<i64>(&mut c, &["ZINTERCARD", "2", "a", "b", "LIMIT", "1"]),
        1
    );
    assert_eq!(
        err(&mut c, &["ZUNION", "0", "a"]),
        "ERR at least 1 input key is needed for 'zunion' command"
    );
    let v: Vec<String> = q(&mut c, &["ZPOPMIN", "a", "2"]);
    assert_eq!(v, ["x", "1", "y", "2"]);
    let v: redis::Value = q(&mut c, &["ZMPOP", "2", "nokey", "a", "MAX", "COUNT", "5"]);
    assert_eq!(
        redis::from_redis_value::<(String, Vec<(String, String)>)>(&v).unwrap(),
        ("a".to_string(), vec![("z".to_string(), "3".to_string())])
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "a"]), 0);
    assert_eq!(
        err(&mut c, &["ZMPOP", "0", "a", "MIN"]),
        "ERR numkeys should be greater than 0"
    );
    let v: Vec<String> = q(&mut c, &["ZRANDMEMBER", "b", "-5"]);
    assert_eq!(v.len(), 5);
    let mut v: Vec<String> = q(&mut c, &["ZRANDMEMBER", "b", "2"]);
    v.dedup();
    assert_eq!(v.len(), 2);
}

#[test]
fn plain_sets_are_inputs_with_score_one() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<i64>(&mut c, &["SADD", "si", "10", "2", "3"]);
    q::<i64>(&mut c, &["SADD", "sh", "b", "a", "2"]);
    q::<i64>(&mut c, &["ZADD", "z", "0.5", "b", "2", "x", "3", "3"]);
    let _: () = c.set("str", "v").unwrap();
    // Equal scores sort by member bytes: "10" < "2" < "3" < "a".
    let v: Vec<String> = q(
        &mut c,
        &["ZUNION", "3", "si", "sh", "z", "WEIGHTS", "1", "2", "3", "WITHSCORES"],
    );
    assert_eq!(v, ["10", "1", "a", "2", "2", "3", "b", "3.5", "x", "6", "3", "10"]);
    let v: Vec<String> = q(
        &mut c,
        &["ZINTER", "2", "si", "sh", "AGGREGATE", "MIN", "WITHSCORES"],
    );
    assert_eq!(v, ["2", "1"]);
    let v: Vec<String> = q(&mut c, &["ZDIFF", "2", "sh", "z", "WITHSCORES"]);
    assert_eq!(v, ["2", "1", "a", "1"]);
    assert_eq!(q::<i64>(&mut c, &["ZINTERCARD", "2", "si", "sh"]), 1);
    assert_eq!(q::<i64>(&mut c, &["ZUNIONSTORE", "d", "2", "si", "sh"]), 5);
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "d"]), "listpack");
    let v: Vec<String> = q(&mut c, &["ZRANGE", "d", "0", "-1", "WITHSCORES"]);
    assert_eq!(v, ["10", "1", "3", "1", "a", "1", "b", "1", "2", "2"]);
    let args = ["ZINTERSTORE", "d", "2", "z", "sh", "WEIGHTS", "2", "-1", "AGGREGATE", "MAX"];
    assert_eq!(q::<i64>(&mut c, &args), 1);
    let v: Vec<String> = q(&mut c, &["ZRANGE", "d", "0", "-1", "WITHSCORES"]);
    assert_eq!(v, ["b", "1"]);
    assert!(err(&mut c, &["ZUNION", "2", "si", "str"]).starts_with("WRONGTYPE"));
    // The source set may be the destination: it becomes a sorted set.
    assert_eq!(q::<i64>(&mut c, &["ZDIFFSTORE", "si", "2", "si", "z"]), 2);
    assert_eq!(q::<String>(&mut c, &["TYPE", "si"]), "zset");
}

#[test]
fn plain_set_results_convert_like_redis() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let mut big = vec!["SADD".to_string(), "big".to_string()];
    big.extend((0..200).map(|i| i.to_string()));
    let big: Vec<&str> = big.iter().map(String::as_str).collect();
    q::<i64>(&mut c, &big);
    assert_eq!(q::<i64>(&mut c, &["ZUNIONSTORE", "d", "1", "big"]), 200);
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "d"]), "skiplist");
    let long = "x".repeat(65);
    q::<i64>(&mut c, &["SADD", "long", &long, "a"]);
    assert_eq!(q::<i64>(&mut c, &["ZINTERSTORE", "d", "1", "long"]), 2);
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "d"]), "skiplist");
    q::<i64>(&mut c, &["SADD", "small", "5", "7"]);
    assert_eq!(q::<i64>(&mut c, &["ZINTERCARD", "2", "big", "small", "LIMIT", "1"]), 1);
    // RESP3 doubles for the set members' scores.
    let mut r = srv.raw();
    r.cmd(&["HELLO", "3"]);
    assert_eq!(
        r.cmd(&["ZINTER", "2", "small", "big", "WEIGHTS", "1.5", "2", "WITHSCORES"]),
        b"*2\r\n*2\r\n$1\r\n5\r\n,3.5\r\n*2\r\n$1\r\n7\r\n,3.5\r\n".to_vec()
    );
}

#[test]
fn blocking_pops_with_data_and_errors() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let mut r = srv.raw();
    r.cmd(&["ZADD", "z", "1", "a", "2", "b", "3", "c"]);
    assert_eq!(r.cmd(&["BZPOPMIN", "none", "z", "0"]), b"*3\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\n1\r\n");
    assert_eq!(r.cmd(&["BZPOPMAX", "z", "0"]), b"*3\r\n$1\r\nz\r\n$1\r\nc\r\n$1\r\n3\r\n");
    assert_eq!(
        r.cmd(&["BZMPOP", "0", "2", "none", "z", "MIN", "COUNT", "10"]),
        b"*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "z"]), 0);
    r.cmd(&["HELLO", "3"]);
    r.cmd(&["ZADD", "z", "1.5", "a"]);
    assert_eq!(r.cmd(&["BZPOPMIN", "z", "0"]), b"*3\r\n$1\r\nz\r\n$1\r\na\r\n,1.5\r\n");
    let bad = "ERR timeout is not a float or out of range";
    assert_eq!(err(&mut c, &["BZPOPMIN", "z", "abc"]), bad);
    assert_eq!(err(&mut c, &["BZMPOP", "x", "1", "z", "MIN"]), bad);
    assert_eq!(err(&mut c, &["BZPOPMAX", "z", "-1"]), "ERR timeout is negative");
    assert_eq!(err(&mut c, &["BZMPOP", "-1", "1", "z", "MAX"]), "ERR timeout is negative");
    // The arguments are checked before the timeout.
    assert_eq!(err(&mut c, &["BZMPOP", "x", "1", "z", "FOO"]), "ERR syntax error");
    assert_eq!(
        err(&mut c, &["BZMPOP", "0", "0", "z", "MIN"]),
        "ERR numkeys should be greater than 0"
    );
    assert_eq!(
        err(&mut c, &["BZMPOP", "0", "1", "z", "MIN", "COUNT", "0"]),
        "ERR count should be greater than 0"
    );
    q::<()>(&mut c, &["SET", "s", "x"]);
    assert_eq!(
        err(&mut c, &["BZPOPMIN", "none", "s", "0"]),
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    );
}

#[test]
fn bzpopmin_is_woken_by_zadd_from_another_client() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let mut w = srv.raw();
    w.send(b"*4\r\n$8\r\nBZPOPMIN\r\n$2\r\nw1\r\n$2\r\nw2\r\n$1\r\n0\r\n");
    wait_blocked(&mut c, 1);
    assert_eq!(q::<i64>(&mut c, &["ZADD", "w2", "7", "m", "8", "n"]), 2);
    assert_eq!(w.read_reply(), b"*3\r\n$2\r\nw2\r\n$1\r\nm\r\n$1\r\n7\r\n");
    assert_eq!(q::<Vec<String>>(&mut c, &["ZRANGE", "w2", "0", "-1"]), ["n"]);
    assert_eq!(w.cmd(&["PING"]), b"+PONG\r\n");
}

#[test]
fn bzmpop_and_bzpopmax_are_woken_by_zadd_and_store() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let mut w = srv.raw();
    w.send(b"*7\r\n$6\r\nBZMPOP\r\n$1\r\n0\r\n$1\r\n1\r\n$1\r\nk\r\n");
    w.send(b"$3\r\nMAX\r\n$5\r\nCOUNT\r\n$1\r\n5\r\n");
    wait_blocked(&mut c, 1);
    q::<i64>(&mut c, &["ZADD", "k", "1", "a", "2", "b"]);
    assert_eq!(
        w.read_reply(),
        b"*2\r\n$1\r\nk\r\n*2\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "k"]), 0);
    w.send(b"*3\r\n$8\r\nBZPOPMAX\r\n$1\r\nd\r\n$1\r\n0\r\n");
    wait_blocked(&mut c, 1);
    q::<i64>(&mut c, &["ZADD", "src", "4", "x"]);
    q::<i64>(&mut c, &["ZUNIONSTORE", "d", "1", "src"]);
    assert_eq!(w.read_reply(), b"*3\r\n$1\r\nd\r\n$1\r\nx\r\n$1\r\n4\r\n");
}

#[test]
fn blocking_zset_pops_time_out_with_null() {
    let srv = TestServer::start(&[]);
    let mut w = srv.raw();
    let start = std::time::Instant::now();
    assert_eq!(w.cmd(&["BZPOPMIN", "nokey", "0.2"]), b"*-1\r\n");
    assert!(start.elapsed() >= std::time::Duration::from_millis(190));
    assert_eq!(w.cmd(&["BZMPOP", "0.05", "1", "nokey", "MIN"]), b"*-1\r\n");
    w.cmd(&["HELLO", "3"]);
    assert_eq!(w.cmd(&["BZPOPMAX", "nokey", "0.05"]), b"_\r\n");
}
