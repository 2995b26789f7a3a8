//! Black-box tests for the hash commands (HSET .. HSCAN) over TCP.

mod common;

use std::collections::{HashMap, HashSet};

use common::{q, err, TestServer};
use redis::Connection;

fn encoding(c: &mut Connection, key: &str) -> String {
    q(c, &["OBJECT", "ENCODING", key])
}

#[test]
fn set_get_and_listpack_order() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    assert_eq!(
        q::<i64>(&mut c, &["HSET", "h", "a", "1", "b", "2", "c", "3"]),
        3
    );
    assert_eq!(q::<i64>(&mut c, &["HSET", "h", "a", "10", "d", "4"]), 1);
    assert_eq!(q::<String>(&mut c, &["HMSET", "h", "e", "5"]), "OK");
    assert_eq!(q::<i64>(&mut c, &["HSETNX", "h", "a", "x"]), 0);
    assert_eq!(q::<i64>(&mut c, &["HSETNX", "h", "z", "26"]), 1);
    assert_eq!(
        q::<Option<String>>(&mut c, &["HGET", "h", "a"]).as_deref(),
        Some("10")
    );
    assert_eq!(q::<Option<String>>(&mut c, &["HGET", "h", "nope"]), None);
    assert_eq!(
        q::<Vec<Option<String>>>(&mut c, &["HMGET", "h", "b", "nope"]),
        vec![Some("2".to_string()), None]
    );
    assert_eq!(
        q::<Vec<Option<String>>>(&mut c, &["HMGET", "missing", "x"]),
        vec![None]
    );
    // A listpack keeps insertion order, updates in place.
    assert_eq!(
        q::<Vec<String>>(&mut c, &["HGETALL", "h"]),
        ["a", "10", "b", "2", "c", "3", "d", "4", "e", "5", "z", "26"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["HKEYS", "h"]),
        ["a", "b", "c", "d", "e", "z"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["HVALS", "h"]),
        ["10", "2", "3", "4", "5", "26"]
    );
    assert_eq!(q::<i64>(&mut c, &["HLEN", "h"]), 6);
    assert_eq!(q::<i64>(&mut c, &["HSTRLEN", "h", "a"]), 2);
    assert_eq!(q::<i64>(&mut c, &["HSTRLEN", "h", "nope"]), 0);
    assert_eq!(q::<i64>(&mut c, &["HEXISTS", "h", "z"]), 1);
    assert_eq!(q::<i64>(&mut c, &["HEXISTS", "h", "y"]), 0);
    assert_eq!(encoding(&mut c, "h"), "listpack");
    assert_eq!(
        q::<Vec<String>>(&mut c, &["HGETALL", "missing"]),
        Vec::<String>::new()
    );
}

#[test]
fn hdel_removes_the_emptied_key() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<i64>(&mut c, &["HSET", "h", "a", "1", "b", "2"]);
    assert_eq!(q::<i64>(&mut c, &["HDEL", "h", "a", "nope"]), 1);
    assert_eq!(q::<i64>(&mut c, &["HDEL", "h", "b", "b", "b"]), 1);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "h"]), 0);
    assert_eq!(q::<i64>(&mut c, &["HDEL", "h", "a"]), 0);
}

#[test]
fn errors_match_redis() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<String>(&mut c, &["SET", "s", "v"]);
    let wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value";
    for cmd in [
        &["HSET", "s", "a", "b"][..],
        &["HGET", "s", "a"],
        &["HMGET", "s", "a"],
        &["HGETALL", "s"],
        &["HDEL", "s", "a"],
        &["HLEN", "s"],
        &["HINCRBY", "s", "a", "1"],
        &["HRANDFIELD", "s", "0"],
        &["HSCAN", "s", "0"],
    ] {
        assert_eq!(err(&mut c, cmd), wrongtype, "{cmd:?}");
    }
    assert_eq!(
        err(&mut c, &["HSET", "h", "a"]),
        "ERR wrong number of arguments for 'hset' command"
    );
    assert_eq!(
        err(&mut c, &["HMSET", "h", "a", "1", "b"]),
        "ERR wrong number of arguments for 'hmset' command"
    );
    assert_eq!(
        err(&mut c, &["HINCRBY", "s", "a", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&mut c, &["HINCRBYFLOAT", "s", "a", "x"]),
        "ERR value is not a valid float"
    );
    assert_eq!(err(&mut c, &["HSCAN", "s", "x"]), "ERR invalid cursor");
    assert_eq!(
        err(&mut c, &["HRANDFIELD", "h", "1", "foo"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["HRANDFIELD", "h", "-9223372036854775808"]),
        "ERR value is out of range, value must between -9223372036854775807 and \
         9223372036854775807"
    );
    assert_eq!(
        err(
            &mut c,
            &["HRANDFIELD", "h", "-9223372036854770000", "WITHVALUES"]
        ),
        "ERR value is out of range"
    );
}

#[test]
fn hincrby_and_hincrbyfloat() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    assert_eq!(q::<i64>(&mut c, &["HINCRBY", "h", "n", "5"]), 5);
    assert_eq!(q::<i64>(&mut c, &["HINCRBY", "h", "n", "-7"]), -2);
    q::<i64>(
        &mut c,
        &["HSET", "h", "sp", " 1", "max", "9223372036854775807"],
    );
    assert_eq!(
        err(&mut c, &["HINCRBY", "h", "sp", "1"]),
        "ERR hash value is not an integer"
    );
    assert_eq!(
        err(&mut c, &["HINCRBY", "h", "max", "1"]),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(
        q::<String>(&mut c, &["HINCRBYFLOAT", "h", "f", "1.23"]),
        "1.23"
    );
    assert_eq!(
        q::<String>(&mut c, &["HINCRBYFLOAT", "h", "f", "0.77"]),
        "2"
    );
    assert_eq!(
        q::<String>(&mut c, &["HINCRBYFLOAT", "h", "n", "1.5"]),
        "-0.5"
    );
    assert_eq!(
        err(&mut c, &["HINCRBYFLOAT", "h", "sp", "1"]),
        "ERR hash value is not a float"
    );
    assert_eq!(
        err(&mut c, &["HINCRBYFLOAT", "x", "f", "+inf"]),
        "ERR value is NaN or Infinity"
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "x"]), 0);
    q::<i64>(&mut c, &["HSET", "h", "big", "1e4932"]);
    assert_eq!(
        err(&mut c, &["HINCRBYFLOAT", "h", "big", "1e4932"]),
        "ERR increment would produce NaN or Infinity"
    );
}

#[test]
fn encoding_converts_at_the_configured_limits() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<String>(&mut c, &["CONFIG", "SET", "hash-max-listpack-entries", "3"]);
    q::<String>(&mut c, &["CONFIG", "SET", "hash-max-listpack-value", "8"]);
    q::<i64>(&mut c, &["HSET", "e", "a", "1", "b", "2", "c", "3"]);
    assert_eq!(encoding(&mut c, "e"), "listpack");
    q::<i64>(&mut c, &["HSET", "e", "d", "4"]);
    assert_eq!(encoding(&mut c, "e"), "hashtable");
    q::<i64>(&mut c, &["HDEL", "e", "a", "b", "c"]);
    assert_eq!(encoding(&mut c, "e"), "hashtable");
    q::<i64>(&mut c, &["HSET", "v", "f", "12345678"]);
    assert_eq!(encoding(&mut c, "v"), "listpack");
    q::<i64>(&mut c, &["HSET", "v", "f", "123456789"]);
    assert_eq!(encoding(&mut c, "v"), "hashtable");
    q::<String>(&mut c, &["HINCRBYFLOAT", "w", "abcdefghi", "1"]);
    assert_eq!(encoding(&mut c, "w"), "hashtable");
    assert_eq!(
        q::<Option<String>>(&mut c, &["HGET", "v", "f"]).as_deref(),
        Some("123456789")
    );
}

#[test]
fn hrandfield_counts_and_shapes() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    assert_eq!(
        q::<Option<String>>(&mut c, &["HRANDFIELD", "missing"]),
        None
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["HRANDFIELD", "missing", "5"]).len(),
        0
    );
    for entries in ["128", "0"] {
        q::<String>(
            &mut c,
            &["CONFIG", "SET", "hash-max-listpack-entries", entries],
        );
        q::<i64>(&mut c, &["DEL", "h"]);
        let all: HashMap<String, String> = (0..10)
            .map(|i| (format!("f{i}"), format!("v{i}")))
            .collect();
        for (f, v) in &all {
            q::<i64>(&mut c, &["HSET", "h", f, v]);
        }
        let one: String = q(&mut c, &["HRANDFIELD", "h"]);
        assert!(all.contains_key(&one));
        let many: Vec<String> = q(&mut c, &["HRANDFIELD", "h", "-25"]);
        assert_eq!(many.len(), 25);
        assert!(many.iter().all(|f| all.contains_key(f)));
        for n in [2usize, 8, 10, 20] {
            let got: Vec<String> = q(&mut c, &["HRANDFIELD", "h", &n.to_string()]);
            let distinct: HashSet<_> = got.iter().collect();
            assert_eq!((got.len(), distinct.len()), (n.min(10), n.min(10)));
            let pairs: Vec<String> = q(&mut c, &["HRANDFIELD", "h", &n.to_string(), "WITHVALUES"]);
            assert_eq!(pairs.len(), 2 * n.min(10));
            for p in pairs.chunks(2) {
                assert_eq!(all[&p[0]], p[1]);
            }
        }
        assert_eq!(q::<Vec<String>>(&mut c, &["HRANDFIELD", "h", "0"]).len(), 0);
    }
}

#[test]
fn resp3_shapes() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    r.cmd(&["HELLO", "3"]);
    r.cmd(&["HSET", "h", "a", "1", "b", "2"]);
    assert_eq!(
        r.cmd(&["HGETALL", "h"]),
        b"%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"
    );
    assert_eq!(r.cmd(&["HGETALL", "missing"]), b"%0\r\n");
    assert_eq!(r.cmd(&["HKEYS", "h"]), b"*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert_eq!(r.cmd(&["HGET", "h", "zz"]), b"_\r\n");
    assert_eq!(r.cmd(&["HRANDFIELD", "missing"]), b"_\r\n");
    assert_eq!(r.cmd(&["HRANDFIELD", "missing", "3"]), b"*0\r\n");
    assert_eq!(
        r.cmd(&["HRANDFIELD", "h", "5", "WITHVALUES"]),
        b"*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"
    );
    let neg = r.cmd(&["HRANDFIELD", "h", "-3", "WITHVALUES"]);
    assert!(neg.starts_with(b"*3\r\n*2\r\n"));
    assert_eq!(
        r.cmd(&["HSCAN", "h", "0"]),
        b"*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"
    );
}

#[test]
fn hscan_walks_a_hashtable_once() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    for i in 0..1000 {
        q::<i64>(&mut c, &["HSET", "big", &format!("f{i}"), &i.to_string()]);
    }
    assert_eq!(encoding(&mut c, "big"), "hashtable");
    let mut cursor = "0".to_string();
    let mut seen = HashMap::new();
    loop {
        let (next, items): (String, Vec<String>) =
            q(&mut c, &["HSCAN", "big", &cursor, "COUNT", "50"]);
        for p in items.chunks(2) {
            assert!(
                seen.insert(p[0].clone(), p[1].clone()).is_none(),
                "{} twice",
                p[0]
            );
        }
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 1000);
    assert_eq!(seen["f7"], "7");
    let (_, items): (String, Vec<String>) = q(&mut c, &["HSCAN", "small", "0"]);
    assert!(items.is_empty());
    q::<i64>(&mut c, &["HSET", "small", "ab", "1", "cd", "2"]);
    let (next, items): (String, Vec<String>) = q(&mut c, &["HSCAN", "small", "0", "MATCH", "a*"]);
    assert_eq!(
        (next.as_str(), items),
        ("0", vec!["ab".to_string(), "1".to_string()])
    );
    assert_eq!(
        err(&mut c, &["HSCAN", "small", "0", "COUNT", "0"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["HSCAN", "small", "0", "TYPE", "hash"]),
        "ERR syntax error"
    );
}
