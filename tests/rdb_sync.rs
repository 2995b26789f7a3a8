//! A ferrodis master and peers that are not ferrodis replicas, which get a Redis RDB as their
//! full-sync payload (`formats/replication.md`): the payload's form on the wire for each
//! announced capability, `rdb-only` and `rdb-filter-only`; a real redis-server replica (full
//! sync disk-less and from a file, then the live stream of a mixed workload, a partial resync
//! after its link drops, a sync under concurrent writes); `redis-cli --rdb` and
//! `--functions-rdb`, whose files `redis-check-rdb` passes and redis-server loads.
//!
//! Tests that need redis-server (and its tools) print a skip notice without it, unless
//! `FERRODIS_REQUIRE_ORACLE=1` (CI) makes that a failure.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::oracle::{self, Oracle};
use common::{info_field, q, wait_until_for, RawConn, TestServer, REPL_DEBUG};
use redis::{Connection, Value as V};

use common::REPL_DISK as DISK;

/// A function library every dataset here holds.
const LIB: &str = "#!lua name=lib1\nredis.register_function('func1', function() return 123 end)";

// ---------------------------------------------------------------------------------------------
// comparing datasets

/// What a key holds, as replies show it, independent of the encoding and of the server (the
/// two servers' DEBUG DIGESTs differ): its type, its absolute expiry and its contents.
type KeyState = (String, i64, Vec<V>);

/// Every key of database `db` with its [`KeyState`].
fn db_state(c: &mut Connection, db: usize) -> BTreeMap<Vec<u8>, KeyState> {
    let _: () = q(c, &["SELECT", &db.to_string()]);
    let mut keys: Vec<Vec<u8>> = q(c, &["KEYS", "*"]);
    keys.sort();
    let mut out = BTreeMap::new();
    for chunk in keys.chunks(500) {
        let mut p = redis::pipe();
        for k in chunk {
            p.cmd("TYPE").arg(k).cmd("PEXPIRETIME").arg(k);
        }
        let meta: Vec<V> = p.query(c).unwrap();
        let mut p = redis::pipe();
        let mut types = Vec::new();
        for (k, m) in chunk.iter().zip(meta.chunks(2)) {
            let t = match &m[0] {
                V::SimpleString(s) => s.clone(),
                V::Okay => "OK".into(),
                other => panic!("TYPE reply {other:?}"),
            };
            let at = match m[1] {
                V::Int(n) => n,
                ref other => panic!("PEXPIRETIME reply {other:?}"),
            };
            content_commands(&mut p, k, &t);
            types.push((t, at));
        }
        let contents: Vec<V> = p.query(c).unwrap();
        let mut contents = contents.into_iter();
        for (k, (t, at)) in chunk.iter().zip(types) {
            let n = if t == "stream" { 3 } else { 1 };
            let mut v: Vec<V> = (&mut contents).take(n).collect();
            normalise(&t, &mut v);
            out.insert(k.clone(), (t, at, v));
        }
    }
    let _: () = q(c, &["SELECT", "0"]);
    out
}

/// The commands that read a key of type `t` (three for a stream, one otherwise).
fn content_commands(p: &mut redis::Pipeline, k: &[u8], t: &str) {
    match t {
        "string" => p.cmd("GET").arg(k),
        "list" => p.cmd("LRANGE").arg(k).arg(0).arg(-1),
        "hash" => p.cmd("HGETALL").arg(k),
        "set" => p.cmd("SMEMBERS").arg(k),
        "zset" => p.cmd("ZRANGE").arg(k).arg(0).arg(-1).arg("WITHSCORES"),
        "stream" => p
            .cmd("XRANGE")
            .arg(k)
            .arg("-")
            .arg("+")
            .cmd("XINFO")
            .arg("GROUPS")
            .arg(k)
            .cmd("XINFO")
            .arg("STREAM")
            .arg(k),
        other => panic!("type {other}"),
    };
}

/// Puts unordered replies in order and drops what legitimately differs (a stream's first and
/// last entries are compared through XRANGE already).
fn normalise(t: &str, v: &mut [V]) {
    match t {
        "set" => {
            if let V::Array(items) = &mut v[0] {
                items.sort_by_key(|i| format!("{i:?}"));
            }
        }
        "hash" => {
            if let V::Array(items) = &mut v[0] {
                let mut pairs: Vec<Vec<V>> = items.chunks(2).map(<[V]>::to_vec).collect();
                pairs.sort_by_key(|p| format!("{p:?}"));
                *items = pairs.concat();
            }
        }
        "stream" => {
            // XINFO STREAM: the entries are compared through XRANGE already, and the radix
            // tree's shape is each server's own.
            let dropped =
                |name: &[u8]| name.ends_with(b"-entry") || name.starts_with(b"radix-tree");
            if let V::Array(items) = &mut v[2] {
                let kept: Vec<V> = items
                    .chunks(2)
                    .filter(|p| !matches!(&p[0], V::BulkString(b) if dropped(b)))
                    .flat_map(<[V]>::to_vec)
                    .collect();
                *items = kept;
            }
        }
        _ => {}
    }
}

/// Asserts that `a` and `b` hold the same keys with the same types, expiries and contents in
/// the first `dbs` databases, and the same function libraries.
fn assert_same_data(a: &mut Connection, b: &mut Connection, dbs: usize) {
    for db in 0..dbs {
        let (sa, sb) = (db_state(a, db), db_state(b, db));
        let (ka, kb): (Vec<_>, Vec<_>) = (sa.keys().collect(), sb.keys().collect());
        if ka != kb {
            let only_a: Vec<_> = ka.iter().filter(|k| !sb.contains_key(**k)).take(5).collect();
            let only_b: Vec<_> = kb.iter().filter(|k| !sa.contains_key(**k)).take(5).collect();
            panic!(
                "db {db}: {} keys vs {}; only in the first: {only_a:?}; only in the second: \
                 {only_b:?}",
                ka.len(),
                kb.len()
            );
        }
        for (k, va) in &sa {
            let vb = &sb[k];
            assert_eq!(va, vb, "db {db}, key {:?}", String::from_utf8_lossy(k));
        }
    }
    assert_eq!(libraries(a), libraries(b), "function libraries");
}

/// FUNCTION LIST WITHCODE, in the order of the names (each server lists its own order).
fn libraries(c: &mut Connection) -> Vec<V> {
    let mut libs: Vec<V> = q(c, &["FUNCTION", "LIST", "WITHCODE"]);
    libs.sort_by_key(|l| format!("{l:?}"));
    libs
}

// ---------------------------------------------------------------------------------------------
// datasets and workloads

/// Every type in both encodings, several databases, expiries and a function library.
fn populate(c: &mut Connection) {
    let cmds: &[&[&str]] = &[
        &["SET", "str", "hello"],
        &["SET", "int", "12345"],
        &["SET", "neg", "-7"],
        &["SET", "big", &"x".repeat(5000)],
        &["SET", "ttl", "v", "PX", "100000000"],
        &["RPUSH", "list", "a", "b", "1", "2"],
        &["HSET", "hash", "f1", "v1", "f2", "2"],
        &["SADD", "ints", "1", "2", "3", "-100000"],
        &["SADD", "set", "a", "b", "c"],
        &["ZADD", "zset", "1", "a", "2.5", "b", "-inf", "c"],
        &["XADD", "stream", "1-1", "f", "v"],
        &["XADD", "stream", "2-1", "f", "w", "g", "x"],
        &["XGROUP", "CREATE", "stream", "grp", "0"],
        &["XREADGROUP", "GROUP", "grp", "alice", "COUNT", "1", "STREAMS", "stream", ">"],
        &["PFADD", "hll", "a", "b", "c"],
        &["SETBIT", "bits", "100", "1"],
        &["SELECT", "3"],
        &["SET", "in-db-3", "x", "EX", "10000"],
        &["HSET", "h3", "a", "1"],
        &["SELECT", "15"],
        &["SET", "in-db-15", "y"],
        &["SELECT", "0"],
    ];
    for c1 in cmds {
        let _: V = q(c, c1);
    }
    let mut p = redis::pipe();
    for i in 0..300 {
        p.cmd("RPUSH").arg("biglist").arg(format!("element-{i}")).ignore();
        p.cmd("HSET").arg("bighash").arg(format!("field-{i}")).arg(i).ignore();
        p.cmd("SADD").arg("bigset").arg(format!("member-{i}")).ignore();
        p.cmd("ZADD").arg("bigzset").arg(i as f64 / 3.0).arg(format!("m-{i}")).ignore();
        p.cmd("XADD").arg("bigstream").arg("*").arg("i").arg(i).ignore();
        p.cmd("SET").arg(format!("key:{i}")).arg(i).ignore();
        if i % 3 == 0 {
            p.cmd("PEXPIRE").arg(format!("key:{i}")).arg(10_000_000 + i).ignore();
        }
    }
    let _: () = p.query(c).unwrap();
    let _: V = q(c, &["FUNCTION", "LOAD", LIB]);
}

/// A write workload touching what the stream may carry: every type, relative expiries,
/// GETEX, SPOP/SRANDMEMBER, scripts and functions, MULTI/EXEC, stream consumer groups, blocked
/// pops served, several databases, FLUSHDB, keys expiring on the master (lazily and actively)
/// and eviction.
fn workload(master: &TestServer) {
    let mut c = master.conn();
    let cmds: &[&[&str]] = &[
        &["SET", "w:ex", "v", "EX", "1000"],
        &["SET", "w:px", "v", "PX", "1000000", "GET"],
        &["SET", "w:keep", "1"],
        &["EXPIRE", "w:keep", "500"],
        &["PEXPIRE", "str", "900000"],
        &["EXPIREAT", "int", "4000000000"],
        &["PERSIST", "ttl"],
        &["GETEX", "w:keep", "EX", "800"],
        &["GETEX", "w:ex", "PERSIST"],
        &["GETDEL", "neg"],
        &["INCRBYFLOAT", "w:float", "1.25"],
        &["INCRBY", "int", "5"],
        &["APPEND", "str", " world"],
        &["SETRANGE", "big", "10", "yyy"],
        &["LPUSH", "list", "head"],
        &["LPOP", "list"],
        &["LINSERT", "list", "BEFORE", "b", "ins"],
        &["LSET", "list", "0", "zero"],
        &["LTRIM", "biglist", "0", "250"],
        &["HINCRBY", "hash", "f2", "3"],
        &["HINCRBYFLOAT", "hash", "f3", "0.5"],
        &["HDEL", "bighash", "field-7"],
        &["SPOP", "bigset"],
        &["SPOP", "bigset", "5"],
        &["SRANDMEMBER", "bigset", "3"],
        &["SMOVE", "set", "ints", "a"],
        &["SINTERSTORE", "w:inter", "bigset", "bigset"],
        &["ZINCRBY", "zset", "2", "a"],
        &["ZPOPMIN", "bigzset", "2"],
        &["ZREMRANGEBYRANK", "bigzset", "0", "3"],
        &["ZUNIONSTORE", "w:zu", "2", "zset", "bigzset"],
        &["XADD", "stream", "*", "f", "new"],
        &["XADD", "bigstream", "MAXLEN", "~", "100", "*", "i", "x"],
        &["XREADGROUP", "GROUP", "grp", "bob", "COUNT", "5", "STREAMS", "stream", ">"],
        &["XCLAIM", "stream", "grp", "carol", "0", "1-1"],
        &["XAUTOCLAIM", "stream", "grp", "dave", "0", "0-0", "COUNT", "1"],
        &["XACK", "stream", "grp", "2-1"],
        &["XGROUP", "CREATE", "bigstream", "g2", "$", "MKSTREAM"],
        &["XGROUP", "SETID", "bigstream", "g2", "0"],
        &["XDEL", "bigstream", "0-1"],
        &["XTRIM", "bigstream", "MAXLEN", "90"],
        &["PFADD", "hll", "d", "e"],
        &["PFMERGE", "w:hll", "hll"],
        &["SETBIT", "bits", "7", "1"],
        &["BITOP", "OR", "w:bits", "bits", "bits"],
        &["EVAL", "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCR', KEYS[2])",
            "2", "w:script", "w:counter", "sv"],
        &["EVAL", "redis.call('SET', 'w:time', redis.call('TIME')[1]); return 1", "0"],
        &["FCALL", "func1", "0"],
        &["FUNCTION", "LOAD", "#!lua name=lib2\nredis.register_function('setter', \
            function(keys, args) return redis.call('SET', keys[1], args[1]) end)"],
        &["FCALL", "setter", "1", "w:fcall", "via-function"],
        &["RENAME", "key:1", "w:renamed"],
        &["COPY", "key:2", "w:copied"],
        &["MOVE", "key:4", "3"],
        &["SELECT", "3"],
        &["SET", "w:db3", "x", "PX", "70000000"],
        &["SWAPDB", "3", "4"],
        &["SELECT", "5"],
        &["SET", "w:db5", "1"],
        &["FLUSHDB"],
        &["SET", "w:after-flush", "1"],
        &["SELECT", "0"],
        &["SORT", "list", "ALPHA", "STORE", "w:sorted"],
        &["SETEX", "w:setex", "100", "v"],
        &["PSETEX", "w:psetex", "100000", "v"],
        &["SETNX", "w:setnx", "v"],
        &["MSETNX", "w:m1", "1", "w:m2", "2"],
        &["GETSET", "w:m1", "3"],
        &["SET", "w:exat", "v", "EXAT", "4100000000"],
        &["SET", "w:past", "v", "PXAT", "1000"],
        &["SET", "w:gone", "v"],
        &["EXPIRE", "w:gone", "-5"],
        &["GETEX", "w:m2", "PXAT", "1000"],
        &["EXPIRE", "w:m1", "100", "NX"],
        &["DECRBY", "w:counter", "7"],
        &["BITFIELD", "w:bf", "SET", "u8", "0", "200", "INCRBY", "u8", "0", "100"],
        &["UNLINK", "key:7", "key:8"],
        &["DEL", "key:9", "key:10", "nonexistent"],
        &["LMOVE", "biglist", "w:lm", "LEFT", "RIGHT"],
        &["RPOPLPUSH", "biglist", "w:lm"],
        &["LMPOP", "2", "nolist", "biglist", "RIGHT", "COUNT", "3"],
        &["ZMPOP", "1", "bigzset", "MAX", "COUNT", "2"],
        &["ZADD", "zset", "GT", "CH", "0", "b", "10", "c"],
        &["ZRANGESTORE", "w:zrs", "bigzset", "0", "9"],
        &["ZDIFFSTORE", "w:zd", "2", "bigzset", "w:zrs"],
        &["SDIFFSTORE", "w:sd", "bigset", "set"],
        &["SUNIONSTORE", "w:su", "set", "ints"],
        &["HSETNX", "hash", "f9", "new"],
        &["HSET", "w:small", "a", "1"],
        &["GEOADD", "w:geo", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669",
            "Catania"],
        &["GEOSEARCHSTORE", "w:geo2", "w:geo", "FROMMEMBER", "Palermo", "BYRADIUS", "200",
            "km", "ASC"],
        &["PFCOUNT", "hll"],
        &["SPOP", "set", "100"],
        &["XADD", "w:xs", "NOMKSTREAM", "*", "a", "1"],
        &["XADD", "w:xs", "MAXLEN", "=", "5", "*", "a", "1"],
        &["XADD", "w:xs", "*", "a", "2"],
        &["XGROUP", "CREATE", "w:xs", "g", "0"],
        &["XGROUP", "CREATECONSUMER", "w:xs", "g", "erin"],
        &["XREADGROUP", "GROUP", "g", "erin", "STREAMS", "w:xs", ">"],
        &["XREADGROUP", "GROUP", "g", "frank", "NOACK", "STREAMS", "w:xs", "0"],
        &["XCLAIM", "w:xs", "g", "frank", "0", "0-1", "JUSTID"],
        &["XSETID", "w:xs", "9999999999999-0"],
        &["XGROUP", "DELCONSUMER", "w:xs", "g", "frank"],
        &["XTRIM", "bigstream", "MINID", "0-1"],
        &["XGROUP", "DESTROY", "bigstream", "g2"],
        &["SCRIPT", "LOAD", "return redis.call('INCR', KEYS[1])"],
        &["EVALSHA", "6d7f8ba0ec7d56c1fbd3bc9d7c7e8a5b7b27c6a0", "1", "w:nosuch"],
        &["EVAL", "redis.set_repl(redis.REPL_ALL); redis.call('SET', KEYS[1], 'x'); \
            redis.call('DEL', KEYS[1]); return 0", "1", "w:set-then-del"],
        &["EVAL", "return redis.call('GET', KEYS[1])", "1", "str"],
        &["FUNCTION", "DELETE", "lib2"],
    ];
    for c1 in cmds {
        let r: redis::RedisResult<V> = redis::cmd(c1[0]).arg(&c1[1..]).query(&mut c);
        // An unknown script sha is the one error the list means to send.
        match r {
            Err(e) if c1[0] != "EVALSHA" => panic!("{c1:?}: {e}"),
            _ => {}
        }
    }
    let payload: Vec<u8> = q(&mut c, &["DUMP", "bighash"]);
    let restore = redis::cmd("RESTORE").arg("w:restored").arg(5_000_000).arg(payload).clone();
    let _: () = restore.query(&mut c).unwrap();
    let _: V = redis::pipe()
        .cmd("MULTI")
        .cmd("SET")
        .arg("w:t1")
        .arg("1")
        .cmd("SELECT")
        .arg("6")
        .cmd("INCR")
        .arg("w:t2")
        .cmd("LPUSH")
        .arg("w:t3")
        .arg("a")
        .cmd("EXEC")
        .query(&mut c)
        .unwrap();
    // Blocked pops, served by later pushes.
    let port = master.port;
    let waiters: Vec<_> = [
        vec!["BLPOP", "w:bl", "10"],
        vec!["BLMOVE", "w:bm", "w:bm-dst", "LEFT", "RIGHT", "10"],
        vec!["BZPOPMIN", "w:bz", "10"],
        vec!["XREADGROUP", "GROUP", "g", "gina", "BLOCK", "10000", "STREAMS", "w:xs", ">"],
    ]
    .into_iter()
    .map(|args| {
        std::thread::spawn(move || {
            let url = format!("redis://127.0.0.1:{port}/");
            let mut w = redis::Client::open(url).unwrap().get_connection().unwrap();
            let _: V = redis::cmd(args[0]).arg(&args[1..]).query(&mut w).unwrap();
        })
    })
    .collect();
    wait_until_for(10, "four blocked clients", || common::info_blocked(&mut c) == 4);
    let pushes: [&[&str]; 4] = [
        &["RPUSH", "w:bl", "a", "b"],
        &["RPUSH", "w:bm", "x"],
        &["ZADD", "w:bz", "1", "z"],
        &["XADD", "w:xs", "*", "late", "1"],
    ];
    for c1 in pushes {
        let _: V = q(&mut c, c1);
    }
    for w in waiters {
        w.join().unwrap();
    }
    // Keys expiring on the master: one found expired by a read, the others by the cycle.
    for i in 0..20 {
        let _: V = q(&mut c, &["SET", &format!("w:short:{i}"), "v", "PX", "30"]);
    }
    std::thread::sleep(Duration::from_millis(60));
    let _: V = q(&mut c, &["GET", "w:short:0"]);
    wait_until_for(10, "the active expire cycle", || {
        let expired: u64 = info_field(&mut c, "stats", "expired_keys").parse().unwrap();
        expired >= 20
    });
    // Eviction: a memory limit under what a new database needs.
    let used: u64 = info_field(&mut c, "memory", "used_memory").parse().unwrap();
    let _: () = q(&mut c, &["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "maxmemory", &(used + (2 << 20)).to_string()]);
    let _: () = q(&mut c, &["SELECT", "9"]);
    let value = "e".repeat(2000);
    for i in 0..3000 {
        // Refused with -OOM once nothing is left to evict in time: that is fine too.
        let set = redis::cmd("SET").arg(format!("w:evict:{i}")).arg(&value).clone();
        let _: V = set.query(&mut c).unwrap_or(V::Nil);
    }
    let _: () = q(&mut c, &["CONFIG", "SET", "maxmemory", "0"]);
    let evicted: u64 = info_field(&mut c, "stats", "evicted_keys").parse().unwrap();
    assert!(evicted > 0, "the workload evicted nothing");
    let _: () = q(&mut c, &["SELECT", "0"]);
}

// ---------------------------------------------------------------------------------------------
// the payload on the wire

/// Reads up to the end of a `\r\n` line, skipping the bare newlines a master sends while the
/// payload is prepared.
fn read_line(r: &mut RawConn) -> Vec<u8> {
    let mut line = Vec::new();
    while !line.ends_with(b"\r\n") {
        let b = r.read_exact_n(1)[0];
        if !(line.is_empty() && b == b'\n') {
            line.push(b);
        }
    }
    line.truncate(line.len() - 2);
    line
}

/// Reads a full-sync payload in either form (`$<len>` or `$EOF:<mark>`). Returns it and
/// whether it was disk-less.
fn read_payload(r: &mut RawConn) -> (Vec<u8>, bool) {
    let head = read_line(r);
    assert_eq!(head[0], b'$', "{}", String::from_utf8_lossy(&head));
    if let Some(mark) = head.strip_prefix(b"$EOF:") {
        let mut body = Vec::new();
        while !body.ends_with(mark) {
            body.push(r.read_exact_n(1)[0]);
        }
        body.truncate(body.len() - mark.len());
        return (body, true);
    }
    let len: usize = std::str::from_utf8(&head[1..]).unwrap().parse().unwrap();
    (r.read_exact_n(len), false)
}

/// Sends one command on a raw connection and returns its reply line.
fn raw_cmd(r: &mut RawConn, args: &[&str]) -> String {
    String::from_utf8(r.cmd(args)).unwrap()
}

/// An RDB's keys per database, and its aux fields.
type RdbContents = (BTreeMap<u32, Vec<Vec<u8>>>, Vec<(String, Vec<u8>)>);

/// Loads an RDB payload with ferrodis's own RDB reader (which checks its CRC-64).
fn parse_rdb(bytes: &[u8]) -> RdbContents {
    use ferrodis::keyspace::Value;
    use ferrodis::snapshot::file::{LoadSink, Meta};
    #[derive(Default)]
    struct Keys(BTreeMap<u32, Vec<Vec<u8>>>);
    impl LoadSink for Keys {
        fn meta(&mut self, _: &Meta) -> Result<(), String> {
            Ok(())
        }
        fn value(&mut self, db: u32, key: &[u8], _: Value) -> Result<(), String> {
            self.0.entry(db).or_default().push(key.to_vec());
            Ok(())
        }
        fn expire(&mut self, _: u32, _: &[u8], _: u64) -> Result<(), String> {
            Ok(())
        }
    }
    let limits = ferrodis::snapshot::codec::EncodingLimits {
        hash: ferrodis::keyspace::hash::HashLimits { max_entries: 128, max_value: 64 },
        zset: ferrodis::keyspace::zset::Limits { max_entries: 128, max_value: 64 },
        set_max_intset: 512,
        list_fill: -2,
    };
    let mut keys = Keys::default();
    let meta = ferrodis::snapshot::rdb::load(bytes, limits, &mut keys).unwrap();
    (keys.0, meta.aux)
}

#[test]
fn the_payload_is_our_snapshot_only_for_peers_announcing_capa_ferrodis() {
    let master = TestServer::start(&REPL_DEBUG);
    let mut m = master.conn();
    let _: () = q(&mut m, &["SET", "a", "1"]);
    let _: () = q(&mut m, &["SET", "b", "2", "EX", "100"]);
    let _: V = q(&mut m, &["FUNCTION", "LOAD", LIB]);
    let cases: [(&[&str], &[u8], bool); 4] = [
        // A ferrodis replica: our format, disk-less.
        (&["capa", "eof", "capa", "psync2", "capa", "ferrodis"], b"FERRODIS", true),
        // A redis-server replica: an RDB, disk-less.
        (&["capa", "eof", "capa", "psync2"], b"REDIS0010", true),
        // No capability at all: an RDB from a file.
        (&[], b"REDIS0010", false),
        // capa ferrodis without eof: our format from a file.
        (&["capa", "ferrodis"], b"FERRODIS", false),
    ];
    for (capa, magic, diskless) in cases {
        let mut r = master.raw();
        if !capa.is_empty() {
            let mut args = vec!["REPLCONF"];
            args.extend_from_slice(capa);
            assert_eq!(raw_cmd(&mut r, &args), "+OK\r\n");
        }
        r.send(b"PSYNC ? -1\r\n");
        let full = String::from_utf8(read_line(&mut r)).unwrap();
        assert!(full.starts_with("+FULLRESYNC "), "{full}");
        let (payload, eof) = read_payload(&mut r);
        assert!(payload.starts_with(magic), "{capa:?}: {:?}", &payload[..10]);
        assert_eq!(eof, diskless, "{capa:?}");
        if magic.starts_with(b"REDIS") {
            let (keys, aux) = parse_rdb(&payload);
            assert_eq!(keys[&0].len(), 2);
            let offset = full.split(' ').nth(2).unwrap().trim().as_bytes().to_vec();
            let get = |k: &str| aux.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            assert_eq!(get("repl-offset"), Some(offset));
            assert_eq!(get("redis-ver").as_deref(), Some(&b"7.0.15"[..]));
            assert!(get("functions").is_some(), "the function library");
        }
    }
    // The same for SYNC, which gets no +FULLRESYNC line (redis-cli --replica).
    let mut r = master.raw();
    assert_eq!(raw_cmd(&mut r, &["REPLCONF", "capa", "eof"]), "+OK\r\n");
    r.send(b"SYNC\r\n");
    let (payload, eof) = read_payload(&mut r);
    assert!(payload.starts_with(b"REDIS0010") && eof);
}

#[test]
fn rdb_only_gets_no_stream_and_a_filter_keeps_only_the_functions() {
    let master = TestServer::start(&REPL_DEBUG);
    let mut m = master.conn();
    let _: () = q(&mut m, &["SET", "a", "1"]);
    let _: V = q(&mut m, &["FUNCTION", "LOAD", LIB]);
    for diskless in ["yes", "no"] {
        let _: () = q(&mut m, &["CONFIG", "SET", "repl-diskless-sync", diskless]);
        for filter in [None, Some("functions"), Some("")] {
            let mut r = master.raw();
            assert_eq!(raw_cmd(&mut r, &["REPLCONF", "capa", "eof"]), "+OK\r\n");
            assert_eq!(raw_cmd(&mut r, &["REPLCONF", "rdb-only", "1"]), "+OK\r\n");
            if let Some(f) = filter {
                assert_eq!(raw_cmd(&mut r, &["REPLCONF", "rdb-filter-only", f]), "+OK\r\n");
            }
            r.send(b"SYNC\r\n");
            let (payload, eof) = read_payload(&mut r);
            // A filtered RDB is always sent disk-less.
            assert_eq!(eof, diskless == "yes" || filter.is_some(), "{diskless} {filter:?}");
            let (keys, aux) = parse_rdb(&payload);
            assert_eq!(keys.is_empty(), filter.is_some(), "{diskless} {filter:?}");
            let functions = aux.iter().any(|(k, _)| k == "functions");
            assert_eq!(functions, filter != Some(""), "{diskless} {filter:?}");
            // No stream after the payload: the connection ends, whatever is written.
            let _: () = q(&mut m, &["SET", "after", "1"]);
            assert_eq!(r.read_some(Duration::from_millis(300)), b"");
        }
    }
    let mut r = master.raw();
    let out_of_range = "-ERR value is out of range, value must between 0 and 1\r\n";
    assert_eq!(raw_cmd(&mut r, &["REPLCONF", "rdb-only", "2"]), out_of_range);
    let bad = raw_cmd(&mut r, &["REPLCONF", "rdb-filter-only", "keys"]);
    assert_eq!(bad, "-ERR Unsupported rdb-filter-only option: keys\r\n");
    assert_eq!(raw_cmd(&mut r, &["REPLCONF", "rdb-filter-only", "functions"]), "+OK\r\n");
    let refused = "-ERR Filtered replica requires EOF capability\r\n";
    assert_eq!(raw_cmd(&mut r, &["SYNC"]), refused);
    assert_eq!(raw_cmd(&mut r, &["PSYNC", "?", "-1"]), refused);
    // Nothing was left behind in `dir` (the RDB files of disk-based syncs are removed).
    let leftovers: Vec<_> = std::fs::read_dir(&master.dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".rdb"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_ferrodis_replica_still_gets_and_keeps_our_format() {
    for args in [&REPL_DEBUG[..], &DISK[..]] {
        let master = TestServer::start(args);
        let replica = TestServer::start(&REPL_DEBUG);
        let mut m = master.conn();
        populate(&mut m);
        let port = master.port.to_string();
        let _: () = q(&mut replica.conn(), &["REPLICAOF", "127.0.0.1", &port]);
        common::wait_caught_up(&replica, &master);
        // The replica keeps the payload as its own snapshot file.
        let file = std::fs::read(replica.dir.join("dump.rdb")).unwrap();
        assert!(file.starts_with(b"FERRODIS"), "{:?}", &file[..10]);
        assert_same_data(&mut m, &mut replica.conn(), 16);
    }
}

// ---------------------------------------------------------------------------------------------
// a redis-server replica

/// Makes a redis-server a replica of `master` and waits until it has caught up.
fn redis_replica(bin: &std::path::Path, master: &TestServer) -> Oracle {
    let port = master.port.to_string();
    let r = Oracle::start(bin, &["--replicaof", "127.0.0.1", &port]);
    caught_up(&r, master);
    r
}

/// Waits until the redis-server replica's link is up and its offset is the master's.
fn caught_up(replica: &Oracle, master: &TestServer) {
    let (mut r, mut m) = (replica.conn(), master.conn());
    wait_until_for(30, "redis replica in sync", || {
        common::info_opt(&mut r, "replication", "master_link_status").as_deref() == Some("up")
            && info_field(&mut r, "replication", "master_repl_offset")
                == info_field(&mut m, "replication", "master_repl_offset")
    });
}

#[test]
fn a_redis_replica_syncs_follows_the_stream_and_resumes_partially() {
    let Some(bin) = oracle::binary("a_redis_replica_syncs_follows_the_stream") else { return };
    for (args, diskless) in [(&REPL_DEBUG[..], true), (&DISK[..], false)] {
        let master = TestServer::start(args);
        let mut m = master.conn();
        populate(&mut m);
        let replica = redis_replica(&bin, &master);
        let mut r = replica.conn();
        assert_same_data(&mut m, &mut r, 16);
        assert_eq!(info_field(&mut m, "stats", "sync_full"), "1");
        let log = master.log();
        let how = if diskless { "replicas sockets" } else { "disk" };
        assert!(log.contains(&format!("Starting BGSAVE for SYNC with target: {how}")), "{log}");

        workload(&master);
        let acked: i64 = q(&mut m, &["WAIT", "1", "5000"]);
        assert_eq!(acked, 1);
        caught_up(&replica, &master);
        assert_same_data(&mut m, &mut r, 16);
        // The replica executed every command of the stream: it answered none with an error
        // (which it logs, as it sends its master no replies).
        let log = replica.log();
        assert!(!log.contains("CRITICAL"), "the replica refused commands of the stream: {log}");

        // The link drops; the replica asks to continue and gets +CONTINUE.
        let _: V = q(&mut m, &["CLIENT", "KILL", "TYPE", "replica"]);
        let _: () = q(&mut m, &["SET", "while-away", "1"]);
        wait_until_for(20, "a partial resync", || {
            info_field(&mut m, "stats", "sync_partial_ok") == "1"
        });
        let _: () = q(&mut m, &["SET", "after-resync", "1"]);
        caught_up(&replica, &master);
        assert_same_data(&mut m, &mut r, 16);
        assert_eq!(info_field(&mut m, "stats", "sync_full"), "1");
    }
}

#[test]
fn a_ferrodis_replica_of_a_redis_master_announces_its_capability_harmlessly() {
    let Some(bin) = oracle::binary("a_ferrodis_replica_of_a_redis_master") else { return };
    let master = Oracle::start(&bin, &["--repl-diskless-sync-delay", "0"]);
    let mut m = master.conn();
    populate(&mut m);
    let replica = TestServer::start(&REPL_DEBUG);
    let mut r = replica.conn();
    let _: () = q(&mut r, &["REPLICAOF", "127.0.0.1", &master.port.to_string()]);
    let _: () = q(&mut m, &["SET", "after", "1"]);
    wait_until_for(30, "the ferrodis replica in sync", || {
        common::info_opt(&mut r, "replication", "master_link_status").as_deref() == Some("up")
            && info_field(&mut r, "replication", "master_repl_offset")
                == info_field(&mut m, "replication", "master_repl_offset")
    });
    assert_same_data(&mut m, &mut r, 16);
    // redis-server ignored `capa ferrodis` and sent its RDB. It says so once it has the
    // replica's first acknowledgement, which may come after the offsets already match.
    wait_until_for(10, "redis-server to log the sync", || {
        master.log().contains("Synchronization with replica")
    });
}

#[test]
fn a_redis_replica_loading_from_the_socket_syncs_too() {
    let Some(bin) = oracle::binary("a_redis_replica_loading_from_the_socket_syncs_too") else {
        return;
    };
    for load in ["swapdb", "on-empty-db"] {
        let master = TestServer::start(&REPL_DEBUG);
        let mut m = master.conn();
        populate(&mut m);
        let port = master.port.to_string();
        let args = ["--replicaof", "127.0.0.1", &port, "--repl-diskless-load", load];
        let replica = Oracle::start(&bin, &args);
        caught_up(&replica, &master);
        let mut r = replica.conn();
        assert_same_data(&mut m, &mut r, 16);
        let _: () = q(&mut m, &["SET", "after", "1"]);
        let _: () = q(&mut m, &["SELECT", "2"]);
        let _: () = q(&mut m, &["LPUSH", "l2", "x"]);
        caught_up(&replica, &master);
        assert_same_data(&mut m, &mut r, 16);
        let log = replica.log();
        assert!(log.contains("Loading RDB produced by version 7.0.15"), "{log}");
    }
}

#[test]
fn a_redis_replica_of_a_ferrodis_replica_starts_in_its_stream_database() {
    let Some(bin) = oracle::binary("a_redis_replica_of_a_ferrodis_replica") else { return };
    let master = TestServer::start(&REPL_DEBUG);
    let mut m = master.conn();
    populate(&mut m);
    // The stream to the ferrodis replica has database 3 selected when the Redis one joins.
    let _: () = q(&mut m, &["SELECT", "3"]);
    let _: () = q(&mut m, &["SET", "in-3", "a"]);
    let middle = TestServer::start(&REPL_DEBUG);
    let port = master.port.to_string();
    let _: () = q(&mut middle.conn(), &["REPLICAOF", "127.0.0.1", &port]);
    common::wait_caught_up(&middle, &master);
    let _: () = q(&mut m, &["SET", "in-3-again", "b"]);
    common::wait_caught_up(&middle, &master);
    let leaf = redis_replica(&bin, &middle);
    // No SELECT comes before this write: the leaf applies it in the database its payload's
    // `repl-stream-db` named.
    let _: () = q(&mut m, &["SET", "in-3-later", "c"]);
    common::wait_caught_up(&middle, &master);
    caught_up(&leaf, &middle);
    let mut l = leaf.conn();
    let _: () = q(&mut l, &["SELECT", "3"]);
    let v: Option<String> = q(&mut l, &["GET", "in-3-later"]);
    assert_eq!(v.as_deref(), Some("c"));
    let _: () = q(&mut l, &["SELECT", "0"]);
    assert_same_data(&mut m, &mut l, 16);
}

#[test]
fn a_redis_replica_gets_the_point_in_time_payload_under_concurrent_writes() {
    let Some(bin) = oracle::binary("a_redis_replica_gets_the_point_in_time_payload") else {
        return;
    };
    // A snapshot slow enough (50 µs a key) for the writes to race it.
    let args = ["--repl-diskless-sync-delay", "0", "--rdb-key-save-delay", "50"];
    for diskless in ["yes", "no"] {
        let master = TestServer::start(&args);
        let mut m = master.conn();
        let _: () = q(&mut m, &["CONFIG", "SET", "repl-diskless-sync", diskless]);
        let mut p = redis::pipe();
        for i in 0..20_000 {
            p.cmd("SET").arg(format!("k{i}")).arg(i).ignore();
            if i % 2 == 0 {
                p.cmd("PEXPIRE").arg(format!("k{i}")).arg(100_000_000 + i).ignore();
            }
            if i % 1000 == 0 {
                p.cmd("RPUSH").arg(format!("l{i}")).arg("a").arg("b").ignore();
            }
        }
        let _: () = p.query(&mut m).unwrap();
        let port = master.port;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let writer = std::thread::spawn(move || {
            use rand::Rng;
            let url = format!("redis://127.0.0.1:{port}/");
            let mut w = redis::Client::open(url).unwrap().get_connection().unwrap();
            let mut rng = rand::thread_rng();
            let mut n = 0u64;
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                let k = format!("k{}", rng.gen_range(0..20_000));
                let c = match rng.gen_range(0..7) {
                    0 => redis::cmd("SET").arg(&k).arg(n).clone(),
                    1 => redis::cmd("PEXPIRE").arg(&k).arg(200_000_000 + n).clone(),
                    2 => redis::cmd("PERSIST").arg(&k).clone(),
                    3 => redis::cmd("DEL").arg(&k).clone(),
                    4 => redis::cmd("SET").arg(&k).arg("x").arg("PX").arg(300_000_000 + n).clone(),
                    5 => {
                        let list = format!("l{}", rng.gen_range(0..20) * 1000);
                        redis::cmd("RPUSH").arg(list).arg(n).clone()
                    }
                    _ => redis::cmd("INCR").arg(&k).clone(),
                };
                let _: V = c.query(&mut w).unwrap_or(V::Nil);
                n += 1;
            }
            n
        });
        std::thread::sleep(Duration::from_millis(100));
        let replica = Oracle::start(&bin, &["--replicaof", "127.0.0.1", &port.to_string()]);
        let mut r = replica.conn();
        wait_until_for(30, "the sync", || {
            common::info_opt(&mut r, "replication", "master_link_status").as_deref() == Some("up")
        });
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let writes = writer.join().unwrap();
        assert!(writes > 100, "only {writes} writes raced the snapshot");
        caught_up(&replica, &master);
        assert_same_data(&mut m, &mut r, 1);
    }
}

// ---------------------------------------------------------------------------------------------
// redis-cli --rdb

/// Runs `redis-cli -p <port> <args>`; returns its combined output after checking it succeeded.
fn redis_cli(port: u16, args: &[&str]) -> String {
    let cli = oracle::find_on_path("redis-cli").expect("redis-cli");
    let out = Command::new(cli).args(["-p", &port.to_string()]).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "redis-cli {args:?}: {text}");
    text
}

/// `redis-check-rdb FILE`, which must pass.
fn check_rdb(file: &std::path::Path) {
    let Some(check) = oracle::find_on_path("redis-check-rdb") else {
        eprintln!("redis-check-rdb not found: the file is not checked");
        return;
    };
    let out = Command::new(check).arg(file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && text.contains("RDB looks OK"), "{text}");
}

#[test]
fn redis_cli_rdb_writes_a_file_redis_server_loads() {
    let Some(bin) = oracle::binary("redis_cli_rdb_writes_a_file_redis_server_loads") else {
        return;
    };
    for args in [&REPL_DEBUG[..], &DISK[..]] {
        let master = TestServer::start(args);
        let mut m = master.conn();
        populate(&mut m);
        for functions_only in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let file: PathBuf = dir.path().join("dump.rdb");
            let flag = if functions_only { "--functions-rdb" } else { "--rdb" };
            let out = redis_cli(master.port, &[flag, file.to_str().unwrap()]);
            assert!(out.contains("Transfer finished with success"), "{out}");
            check_rdb(&file);
            let loaded = Oracle::start_in(&bin, dir.path(), &["--dbfilename", "dump.rdb"]);
            let mut l = loaded.conn();
            if functions_only {
                let size: i64 = q(&mut l, &["DBSIZE"]);
                assert_eq!(size, 0);
                assert_eq!(libraries(&mut m), libraries(&mut l));
            } else {
                // A loading master drops the keys already expired: so does ours.
                assert_same_data(&mut m, &mut l, 16);
            }
        }
    }
}

#[test]
fn redis_cli_replica_mode_reads_the_stream() {
    if oracle::binary("redis_cli_replica_mode_reads_the_stream").is_none() {
        return;
    }
    let master = TestServer::start(&REPL_DEBUG);
    let mut m = master.conn();
    // redis-cli acknowledges nothing after its first ACK: a SYNC peer is not timed out.
    let _: () = q(&mut m, &["CONFIG", "SET", "repl-timeout", "1"]);
    let cli = oracle::find_on_path("redis-cli").expect("redis-cli");
    let mut child = Command::new(cli)
        .args(["-p", &master.port.to_string(), "--replica"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // It gets an empty payload (rdb-filter-only ""), acknowledges it a second later, and the
    // stream follows.
    let start = Instant::now();
    let mut last = 0;
    while start.elapsed() < Duration::from_secs(4) {
        last += 1;
        let _: () = q(&mut m, &["SET", "seen", &last.to_string()]);
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(300));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("\"SET\",\"seen\",\"{last}\"")), "{text}");
}
