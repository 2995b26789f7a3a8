//! Black-box tests for the HyperLogLog commands (PFADD, PFCOUNT, PFMERGE, PFDEBUG,
//! PFSELFTEST) over TCP: replies, the stored bytes, the cached cardinality, propagation to a
//! replica, keyspace events, hostile values, and HLLs moved between ferrodis and a real
//! redis-server with GET / SET (when one is on `PATH`).

mod common;

use common::oracle::{self, Oracle};
use common::{err, q, wait_caught_up, TestServer, REPL_DEBUG};
use redis::Connection;

const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
const CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";

fn get(c: &mut Connection, key: &str) -> Vec<u8> {
    redis::cmd("GET").arg(key).query(c).unwrap()
}

fn set(c: &mut Connection, key: &str, v: &[u8]) {
    redis::cmd("SET").arg(key).arg(v).query::<()>(c).unwrap()
}

fn pfadd(c: &mut Connection, key: &str, elements: &[String]) -> i64 {
    redis::cmd("PFADD").arg(key).arg(elements).query(c).unwrap()
}

fn elements(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[test]
fn add_count_and_the_stored_bytes() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    assert_eq!(q::<i64>(&mut c, &["PFADD", "h"]), 1);
    assert_eq!(q::<i64>(&mut c, &["PFADD", "h"]), 0);
    // Header (sparse; creation counts as a change, so the cache is marked stale) and one
    // XZERO covering the 16384 registers.
    assert_eq!(
        get(&mut c, "h"),
        b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80\x7f\xff"
    );
    assert_eq!(q::<String>(&mut c, &["TYPE", "h"]), "string");
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "h"]), "raw");
    assert_eq!(q::<i64>(&mut c, &["PFADD", "h", "a", "b", "c"]), 1);
    assert_eq!(q::<i64>(&mut c, &["PFADD", "h", "a", "b", "c"]), 0);
    // Bytes and registers as redis-server 7.0.15 builds them for `PFADD h a b c`.
    assert_eq!(
        q::<String>(&mut c, &["PFDEBUG", "DECODE", "h"]),
        "Z:8436 v:1,1 Z:4274 v:2,1 Z:3068 v:1,1 Z:603"
    );
    assert_eq!(
        q::<Vec<u8>>(&mut c, &["GETRANGE", "h", "15", "15"]),
        b"\x80"
    );
    assert_eq!(q::<i64>(&mut c, &["PFCOUNT", "h"]), 3);
    assert_eq!(
        get(&mut c, "h"),
        b"HYLL\x01\0\0\0\x03\0\0\0\0\0\0\0\x60\xf3\x80\x50\xb1\x84\x4b\xfb\x80\x42\x5a"
    );
    // An add that changes no register keeps the cache valid.
    assert_eq!(q::<i64>(&mut c, &["PFADD", "h", "a"]), 0);
    assert_eq!(
        q::<Vec<u8>>(&mut c, &["GETRANGE", "h", "15", "15"]),
        b"\x00"
    );
    assert_eq!(q::<i64>(&mut c, &["PFCOUNT", "nokey"]), 0);
    assert_eq!(q::<i64>(&mut c, &["PFCOUNT", "h", "nokey"]), 3);
}

#[test]
fn estimates_and_promotion_to_dense() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let mut n = 0;
    for round in 0..50 {
        pfadd(&mut c, "h", &elements(&format!("r{round}"), 200));
        n += 200;
        let card: i64 = q(&mut c, &["PFCOUNT", "h"]);
        assert!((card - n).abs() * 100 < n * 3, "{card} for {n}");
    }
    assert_eq!(q::<String>(&mut c, &["PFDEBUG", "ENCODING", "h"]), "dense");
    assert_eq!(q::<i64>(&mut c, &["STRLEN", "h"]), 16 + 12288);
    let _: () = q(&mut c, &["CONFIG", "SET", "hll-sparse-max-bytes", "30"]);
    pfadd(&mut c, "s", &elements("few", 5));
    assert_eq!(q::<String>(&mut c, &["PFDEBUG", "ENCODING", "s"]), "dense");
    let regs: Vec<i64> = q(&mut c, &["PFDEBUG", "GETREG", "s"]);
    assert_eq!(regs.len(), 16384);
    assert_eq!(regs.iter().filter(|&&r| r != 0).count(), 5);
}

#[test]
fn merge_and_union_count() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    for (k, els) in [
        ("a", ["a", "b", "c"]),
        ("b", ["b", "c", "d"]),
        ("c", ["c", "d", "e"]),
    ] {
        let _: i64 = q(&mut c, &["PFADD", k, els[0], els[1], els[2]]);
    }
    assert_eq!(q::<i64>(&mut c, &["PFCOUNT", "a", "b", "c"]), 5);
    // A union count leaves the sources (and their caches) alone.
    assert_eq!(
        q::<Vec<u8>>(&mut c, &["GETRANGE", "a", "15", "15"]),
        b"\x80"
    );
    assert_eq!(q::<String>(&mut c, &["PFMERGE", "m", "a", "b", "c"]), "OK");
    assert_eq!(q::<i64>(&mut c, &["PFCOUNT", "m"]), 5);
    assert_eq!(q::<String>(&mut c, &["PFDEBUG", "ENCODING", "m"]), "sparse");
    // A dense input makes the destination dense.
    assert_eq!(q::<i64>(&mut c, &["PFDEBUG", "TODENSE", "a"]), 1);
    assert_eq!(q::<i64>(&mut c, &["PFDEBUG", "TODENSE", "a"]), 0);
    assert_eq!(q::<String>(&mut c, &["PFMERGE", "m2", "a", "b"]), "OK");
    assert_eq!(q::<String>(&mut c, &["PFDEBUG", "ENCODING", "m2"]), "dense");
    assert_eq!(q::<i64>(&mut c, &["PFCOUNT", "m2"]), 4);
    assert_eq!(q::<String>(&mut c, &["PFMERGE", "empty"]), "OK");
    assert_eq!(q::<i64>(&mut c, &["PFCOUNT", "empty"]), 0);
}

#[test]
fn errors_are_redis_exact() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    set(&mut c, "s", b"bar");
    assert_eq!(err(&mut c, &["PFADD", "s", "a"]), NOT_HLL);
    assert_eq!(err(&mut c, &["PFCOUNT", "s"]), NOT_HLL);
    assert_eq!(err(&mut c, &["PFCOUNT", "nokey", "s"]), NOT_HLL);
    assert_eq!(err(&mut c, &["PFMERGE", "d", "s"]), NOT_HLL);
    assert_eq!(err(&mut c, &["PFMERGE", "s"]), NOT_HLL);
    assert_eq!(err(&mut c, &["PFDEBUG", "GETREG", "s"]), NOT_HLL);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "d"]), 0);
    let _: i64 = q(&mut c, &["LPUSH", "l", "x"]);
    let wrong = "WRONGTYPE Operation against a key holding the wrong kind of value";
    assert_eq!(err(&mut c, &["PFADD", "l", "a"]), wrong);
    assert_eq!(err(&mut c, &["PFCOUNT", "l"]), wrong);
    assert_eq!(
        err(&mut c, &["PFDEBUG", "GETREG", "nokey"]),
        "ERR The specified key does not exist"
    );
    let _: i64 = q(&mut c, &["PFADD", "h", "x"]);
    assert_eq!(
        err(&mut c, &["PFDEBUG", "what", "h"]),
        "ERR Unknown PFDEBUG subcommand 'what'"
    );
    let _: i64 = q(&mut c, &["PFDEBUG", "TODENSE", "h"]);
    assert_eq!(
        err(&mut c, &["PFDEBUG", "DECODE", "h"]),
        "ERR HLL encoding is not sparse"
    );
    assert_eq!(
        err(&mut c, &["PFDEBUG", "GETREG"]),
        "ERR wrong number of arguments for 'pfdebug' command"
    );
    // Corruptions: extra opcodes, bad magic, unknown encoding, a dense value of the wrong size.
    let _: i64 = q(&mut c, &["PFADD", "t", "a", "b", "c"]);
    let _: i64 = q(&mut c, &["APPEND", "t", "hello"]);
    assert_eq!(err(&mut c, &["PFCOUNT", "t"]), CORRUPT);
    assert_eq!(err(&mut c, &["PFCOUNT", "t", "nokey"]), CORRUPT);
    assert_eq!(err(&mut c, &["PFMERGE", "d", "t"]), CORRUPT);
    for (pos, bytes) in [("0", "0123"), ("4", "x"), ("4", "\x00")] {
        let _: () = q(&mut c, &["DEL", "u"]);
        let _: i64 = q(&mut c, &["PFADD", "u", "a", "b", "c"]);
        let _: i64 = q(&mut c, &["SETRANGE", "u", pos, bytes]);
        assert_eq!(err(&mut c, &["PFCOUNT", "u"]), NOT_HLL, "{pos} {bytes:?}");
    }
}

#[test]
fn self_test_passes() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    assert_eq!(q::<String>(&mut c, &["PFSELFTEST"]), "OK");
}

/// Random byte mutations of sparse and dense HLLs: every command answers (a count or Redis's
/// errors) and the server stays up.
#[test]
fn hostile_values_never_crash() {
    use rand::{Rng, SeedableRng};
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(9);
    for round in 0..300 {
        let _: () = q(&mut c, &["DEL", "h", "g"]);
        let n = rng.gen_range(0..2000);
        pfadd(&mut c, "h", &elements(&format!("{round}"), n));
        let len: usize = q(&mut c, &["STRLEN", "h"]);
        for _ in 0..rng.gen_range(1..5) {
            let pos = rng.gen_range(0..len).to_string();
            let byte = [rng.gen::<u8>()];
            redis::cmd("SETRANGE")
                .arg("h")
                .arg(pos)
                .arg(&byte[..])
                .query::<i64>(&mut c)
                .unwrap();
        }
        let cmds: [&[&str]; 5] = [
            &["PFCOUNT", "h"],
            &["PFADD", "h", "x", "y", "z"],
            &["PFCOUNT", "h", "g"],
            &["PFMERGE", "g", "h"],
            &["PFDEBUG", "GETREG", "h"],
        ];
        for cmd in cmds {
            let r: redis::RedisResult<redis::Value> =
                redis::cmd(cmd[0]).arg(&cmd[1..]).query(&mut c);
            if let Err(e) = r {
                let text = format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or(""));
                assert!(text == NOT_HLL || text == CORRUPT, "{cmd:?}: {text}");
            }
        }
    }
    assert_eq!(q::<String>(&mut c, &["PING"]), "PONG");
}

#[test]
fn keyspace_events() {
    let srv = TestServer::start(&["--notify-keyspace-events", "KEA"]);
    let mut c = srv.conn();
    let mut sub = srv.conn();
    let mut ps = sub.as_pubsub();
    ps.psubscribe("__keyevent@0__:*").unwrap();
    let _: i64 = q(&mut c, &["PFADD", "h", "a"]);
    let _: i64 = q(&mut c, &["PFADD", "h", "a"]);
    let _: i64 = q(&mut c, &["PFCOUNT", "h"]);
    let _: () = q(&mut c, &["PFMERGE", "m", "h"]);
    let _: () = q(&mut c, &["SET", "done", "1"]);
    let mut seen = Vec::new();
    loop {
        let msg = ps.get_message().unwrap();
        let key: String = msg.get_payload().unwrap();
        let event = msg
            .get_channel_name()
            .trim_start_matches("__keyevent@0__:")
            .to_string();
        if key == "done" {
            break;
        }
        seen.push(format!("{event} {key}"));
    }
    // No event for the add that changed nothing, nor for the count.
    assert_eq!(seen, ["pfadd h", "pfadd m"]);
}

/// PFCOUNT stores the refreshed cache in the value and sends itself to replicas, so the
/// replica holds the same bytes; PFADD and PFMERGE go verbatim.
#[test]
fn replica_receives_the_same_bytes() {
    let master = TestServer::start(&REPL_DEBUG);
    let port = master.port.to_string();
    let replica =
        TestServer::start(&[&REPL_DEBUG[..], &["--replicaof", "127.0.0.1", &port]].concat());
    let mut m = master.conn();
    wait_caught_up(&replica, &master);
    pfadd(&mut m, "h", &elements("x", 100));
    pfadd(&mut m, "g", &elements("y", 5000));
    let _: () = q(&mut m, &["PFMERGE", "u", "h", "g"]);
    let _: i64 = q(&mut m, &["PFCOUNT", "h"]);
    let _: i64 = q(&mut m, &["PFCOUNT", "u"]);
    let _: i64 = q(&mut m, &["PFCOUNT", "h", "g"]);
    wait_caught_up(&replica, &master);
    let mut r = replica.conn();
    for key in ["h", "g", "u"] {
        assert_eq!(get(&mut r, key), get(&mut m, key), "{key}");
    }
    assert_eq!(
        q::<Vec<u8>>(&mut r, &["GETRANGE", "h", "15", "15"]),
        b"\x00"
    );
}

/// HLLs move between redis-server and ferrodis as plain strings: the same elements give the
/// same bytes, and each side counts the other's HLLs the same.
#[test]
fn hlls_move_between_redis_and_ferrodis() {
    let Some(bin) = oracle::binary("hlls_move_between_redis_and_ferrodis") else {
        return;
    };
    let redis = Oracle::start(&bin, &[]);
    let mut o = redis::Client::open(format!("redis://127.0.0.1:{}/", redis.port))
        .unwrap()
        .get_connection()
        .unwrap();
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    for (i, n) in [0usize, 1, 7, 90, 400, 1500, 30000].into_iter().enumerate() {
        let key = format!("h{i}");
        let els = elements(&key, n);
        for chunk in els.chunks(1000).chain(std::iter::once(&[][..])) {
            assert_eq!(
                pfadd(&mut o, &key, chunk),
                pfadd(&mut c, &key, chunk),
                "{key}"
            );
        }
        let (from_redis, from_us) = (get(&mut o, &key), get(&mut c, &key));
        assert_eq!(from_redis, from_us, "{key}: bytes");
        let copy = format!("copy{i}");
        set(&mut c, &copy, &from_redis);
        set(&mut o, &copy, &from_us);
        let counted: i64 = q(&mut o, &["PFCOUNT", &copy]);
        assert_eq!(
            q::<i64>(&mut c, &["PFCOUNT", &copy]),
            counted,
            "{key}: count"
        );
        assert_eq!(get(&mut c, &copy), get(&mut o, &copy), "{key}: cached");
        let union = [&copy[..], "copy0", "h1"];
        let u: i64 = redis::cmd("PFCOUNT").arg(&union[..]).query(&mut o).unwrap();
        assert_eq!(
            redis::cmd("PFCOUNT")
                .arg(&union[..])
                .query::<i64>(&mut c)
                .unwrap(),
            u
        );
        let _: () = redis::cmd("PFMERGE")
            .arg("m")
            .arg(&copy)
            .arg("h1")
            .query(&mut o)
            .unwrap();
        let _: () = redis::cmd("PFMERGE")
            .arg("m")
            .arg(&copy)
            .arg("h1")
            .query(&mut c)
            .unwrap();
        assert_eq!(get(&mut c, "m"), get(&mut o, "m"), "{key}: merge");
    }
}

/// The append-only log replays to the same bytes: PFADD, PFMERGE, PFDEBUG TODENSE and the
/// PFCOUNT that refreshed a cache are all in it (a PFCOUNT served from the cache is not).
#[test]
fn log_replays_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start_in(
        dir.path(),
        &["--appendonly", "yes", "--enable-debug-command", "yes"],
    );
    let mut c = srv.conn();
    pfadd(&mut c, "a", &elements("a", 50));
    pfadd(&mut c, "b", &elements("b", 4000));
    let _: () = q(&mut c, &["PFMERGE", "m", "a", "b"]);
    let _: i64 = q(&mut c, &["PFCOUNT", "a"]);
    let _: i64 = q(&mut c, &["PFCOUNT", "a"]);
    let _: i64 = q(&mut c, &["PFCOUNT", "m", "b"]);
    pfadd(&mut c, "d", &elements("d", 3));
    let _: i64 = q(&mut c, &["PFDEBUG", "TODENSE", "d"]);
    let _: i64 = q(&mut c, &["PFCOUNT", "d"]);
    let before: Vec<Vec<u8>> = ["a", "b", "m", "d"]
        .iter()
        .map(|k| get(&mut c, k))
        .collect();
    let _: () = q(&mut c, &["DEBUG", "LOADAOF"]);
    let after: Vec<Vec<u8>> = ["a", "b", "m", "d"]
        .iter()
        .map(|k| get(&mut c, k))
        .collect();
    assert_eq!(before, after);
    assert_eq!(
        q::<Vec<u8>>(&mut c, &["GETRANGE", "a", "15", "15"]),
        b"\x00"
    );
    assert_eq!(q::<String>(&mut c, &["PFDEBUG", "ENCODING", "d"]), "dense");
}
