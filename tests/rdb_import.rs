//! Loading Redis RDB files: files written by the real redis-server 7.0 (generated at test
//! time, never committed) load into ferrodis with the same DEBUG DIGEST, encodings and expiry
//! times; damaged files are refused with an offset and a reason.

mod common;

use std::path::{Path, PathBuf};

use common::oracle::{self, Oracle};
use common::{q, TestServer};
use ferrodis::keyspace::Value;
use ferrodis::snapshot::codec::EncodingLimits;
use ferrodis::snapshot::file::{LoadSink, Meta};
use ferrodis::snapshot::rdb;

const LIB: &str = "#!lua name=rdblib\n\
    redis.register_function('rdbfunc', function(keys, args) return 'from-rdb' end)";

/// Fills db 0 with every type in every encoding Redis 7.0 writes, and dbs 1 and 5 a little.
fn fill(c: &mut redis::Connection) {
    let _: () = q(c, &["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "1000"]);
    for (k, v) in [
        ("s:small", "hello".to_string()),
        ("s:int8", "-100".into()),
        ("s:int16", "30000".into()),
        ("s:int32", "-2000000000".into()),
        ("s:bigint", "9223372036854775807".into()),
        ("s:lzf", "abcdefgh".repeat(50)),
        ("s:marker", "MARKER-0123456789-MARKER".into()),
        ("s:empty", String::new()),
    ] {
        let _: () = q(c, &["SET", k, &v]);
    }
    let ints = [
        "0",
        "5",
        "-1",
        "127",
        "4095",
        "-4096",
        "100000",
        "-8388608",
        "2147483647",
    ];
    let more = [
        "-9223372036854775808",
        "12345678901",
        "x",
        "a longer element",
    ];
    for e in ints.iter().chain(&more) {
        let _: () = q(c, &["RPUSH", "l:small", e]);
        let _: () = q(c, &["SADD", "set:mixed", e]);
        let _: () = q(c, &["HSET", "h:small", e, e]);
        let _: () = q(c, &["ZADD", "z:small", "1.5", e]);
    }
    for i in 0..2000 {
        let _: () = q(c, &["RPUSH", "l:big", &format!("element-{i}")]);
    }
    let _: () = q(c, &["RPUSH", "l:plain", "small", &"P".repeat(5000), "tail"]);
    for i in 0..300 {
        let s = i.to_string();
        let _: () = q(c, &["HSET", "h:big", &format!("f{i}"), &s]);
        let _: () = q(c, &["SADD", "set:bigints", &(i * 7 - 1000).to_string()]);
        let _: () = q(c, &["SADD", "set:strs", &format!("m{i}")]);
        let _: () = q(
            c,
            &[
                "ZADD",
                "z:big",
                &(i as f64 / 3.0).to_string(),
                &format!("m{i}"),
            ],
        );
    }
    for i in 0..600 {
        let _: () = q(c, &["SADD", "set:toomanyints", &i.to_string()]);
    }
    let _: () = q(c, &["SADD", "set:ints", "1", "-5", "70000", "5000000000"]);
    let _: () = q(c, &["HSET", "h:longval", "f", &"v".repeat(100)]);
    let _: () = q(
        c,
        &[
            "ZADD", "z:inf", "inf", "a", "-inf", "b", "0", "c", "-2.25", "d",
        ],
    );
    let _: () = q(c, &["ZADD", "z:longmember", "1", &"m".repeat(100)]);
    let _: () = q(c, &["PEXPIREAT", "s:small", "4102444800123"]);
    let _: () = q(c, &["EXPIREAT", "h:big", "4102444800"]);
    for db in ["1", "5"] {
        let _: () = q(c, &["SELECT", db]);
        let _: () = q(c, &["SET", "s:small", db]);
        let _: () = q(c, &["RPUSH", "l:small", "a", db]);
        let _: () = q(c, &["PEXPIREAT", "l:small", "4102444800999"]);
    }
    let _: () = q(c, &["SELECT", "0"]);
    let _: String = q(c, &["FUNCTION", "LOAD", LIB]);
}

/// A key's state to compare: db, key, encoding, absolute expiry, content.
type KeyState = (u32, String, String, i64, Vec<String>);

/// A key's content as replies (set members and hash pairs sorted: their order is internal).
fn content(c: &mut redis::Connection, k: &str) -> Vec<String> {
    let t: String = q(c, &["TYPE", k]);
    let mut v: Vec<String> = match t.as_str() {
        "string" => vec![q(c, &["GET", k])],
        "list" => q(c, &["LRANGE", k, "0", "-1"]),
        "zset" => q(c, &["ZRANGE", k, "0", "-1", "WITHSCORES"]),
        "set" => q(c, &["SMEMBERS", k]),
        _ => {
            let pairs: Vec<(String, String)> = q(c, &["HGETALL", k]);
            pairs.into_iter().map(|(f, v)| format!("{f}={v}")).collect()
        }
    };
    if t == "set" || t == "hash" {
        v.sort();
    }
    v.insert(0, t);
    v
}

fn key_states(c: &mut redis::Connection) -> Vec<KeyState> {
    let mut out = Vec::new();
    for db in [0u32, 1, 5] {
        let _: () = q(c, &["SELECT", &db.to_string()]);
        let mut keys: Vec<String> = q(c, &["KEYS", "*"]);
        keys.sort();
        for k in keys {
            let enc: String = q(c, &["OBJECT", "ENCODING", &k]);
            let at: i64 = q(c, &["PEXPIRETIME", &k]);
            let content = content(c, &k);
            out.push((db, k, enc, at, content));
        }
    }
    let _: () = q(c, &["SELECT", "0"]);
    out
}

/// The oracle's dump.rdb after `fill`, with its key states, and the DEBUG DIGEST of a ferrodis
/// filled by the same commands (ferrodis's digest is not Redis's algorithm, so the digests
/// compared are both ferrodis's).
struct Generated {
    rdb: Vec<u8>,
    digest: String,
    keys: Vec<KeyState>,
}

fn ferrodis_digest_of_fill() -> String {
    let s = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut c = s.conn();
    fill(&mut c);
    q(&mut c, &["DEBUG", "DIGEST"])
}

fn generate(test: &str, extra: &[&str]) -> Option<Generated> {
    let bin = oracle::binary(test)?;
    let mut args = vec!["--enable-debug-command", "yes"];
    args.extend_from_slice(extra);
    let o = Oracle::start(&bin, &args);
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{}/", o.port))
        .unwrap()
        .get_connection()
        .unwrap();
    fill(&mut c);
    let digest = ferrodis_digest_of_fill();
    let keys = key_states(&mut c);
    let _: () = q(&mut c, &["SAVE"]);
    let dir: Vec<String> = q(&mut c, &["CONFIG", "GET", "dir"]);
    let rdb = std::fs::read(PathBuf::from(&dir[1]).join("dump.rdb")).unwrap();
    Some(Generated { rdb, digest, keys })
}

fn start_with(rdb: &[u8]) -> (tempfile::TempDir, TestServer) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("dump.rdb"), rdb).unwrap();
    let s = TestServer::start_in(tmp.path(), &["--enable-debug-command", "yes"]);
    (tmp, s)
}

fn check_loaded(s: &TestServer, g: &Generated) {
    let mut c = s.conn();
    let keys = key_states(&mut c);
    for (got, want) in keys.iter().zip(&g.keys) {
        assert_eq!(got, want);
    }
    assert_eq!(keys.len(), g.keys.len());
    assert_eq!(q::<String>(&mut c, &["DEBUG", "DIGEST"]), g.digest);
    assert_eq!(q::<String>(&mut c, &["FCALL", "rdbfunc", "0"]), "from-rdb");
    assert_eq!(
        q::<String>(&mut c, &["GET", "s:lzf"]),
        "abcdefgh".repeat(50)
    );
}

#[test]
fn redis_dump_loads_with_the_same_digest_and_ttls() {
    let Some(g) = generate("redis_dump_loads_with_the_same_digest_and_ttls", &[]) else {
        return;
    };
    let (_tmp, s) = start_with(&g.rdb);
    check_loaded(&s, &g);
    // DEBUG RELOAD of the same file (copied over our own snapshot) loads it again.
    let mut c = s.conn();
    let _: () = q(&mut c, &["FLUSHALL"]);
    std::fs::write(s.dir.join("dump.rdb"), &g.rdb).unwrap();
    let _: () = q(&mut c, &["FUNCTION", "FLUSH"]);
    assert_eq!(q::<String>(&mut c, &["DEBUG", "RELOAD", "NOSAVE"]), "OK");
    check_loaded(&s, &g);
}

#[test]
fn uncompressed_dump_without_checksum_loads() {
    let extra = ["--rdbcompression", "no", "--rdbchecksum", "no"];
    let Some(g) = generate("uncompressed_dump_without_checksum_loads", &extra) else {
        return;
    };
    assert_eq!(&g.rdb[g.rdb.len() - 8..], &[0; 8]);
    let (_tmp, s) = start_with(&g.rdb);
    check_loaded(&s, &g);
}

/// A sink that only counts, for reading files without a server.
#[derive(Default)]
struct Count(u64);

impl LoadSink for Count {
    fn meta(&mut self, _: &Meta) -> Result<(), String> {
        Ok(())
    }
    fn value(&mut self, _: u32, _: &[u8], _: Value) -> Result<(), String> {
        self.0 += 1;
        Ok(())
    }
    fn expire(&mut self, _: u32, _: &[u8], _: u64) -> Result<(), String> {
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).position(|w| w == needle).unwrap()
}

fn reload_fails(dir: &Path, s: &TestServer, bytes: &[u8], reason: &str) {
    std::fs::write(dir.join("dump.rdb"), bytes).unwrap();
    let mut c = s.conn();
    let e = common::err(&mut c, &["DEBUG", "RELOAD", "NOSAVE"]);
    assert_eq!(e, "ERR Error trying to load the RDB dump");
    assert!(s.log().contains(reason), "log lacks {reason:?}");
}

#[test]
fn damaged_dumps_are_refused_with_offset_and_reason() {
    let Some(g) = generate("damaged_dumps_are_refused_with_offset_and_reason", &[]) else {
        return;
    };
    let lim = EncodingLimits::default();
    let mut n = Count::default();
    rdb::load(&g.rdb, lim, &mut n).unwrap();
    assert_eq!(n.0 as usize, g.keys.len());

    let cut = g.rdb.len() / 2;
    let e = rdb::load(&g.rdb[..cut], lim, &mut Count::default()).unwrap_err();
    // Either the reader runs out of bytes, or (when the cut falls inside a collection) it
    // sees first that a count cannot fit in what is left: both say the file is cut short.
    assert!(
        e.reason.starts_with("unexpected end of file in ") || e.reason.contains("bytes left hold"),
        "{e}"
    );
    assert!(e.offset <= cut as u64, "{e}");

    let mut flipped = g.rdb.clone();
    flipped[find(&g.rdb, b"MARKER-0123456789") + 3] ^= 0x04;
    let e = rdb::load(&flipped, lim, &mut Count::default()).unwrap_err();
    assert_eq!(e.offset as usize, g.rdb.len() - 8);
    assert!(e.reason.starts_with("RDB CRC error (stored "), "{e}");

    let mut trailing = g.rdb.clone();
    trailing.extend_from_slice(b"xyz");
    let e = rdb::load(&trailing, lim, &mut Count::default()).unwrap_err();
    assert_eq!(
        (e.offset as usize, e.reason.as_str()),
        (g.rdb.len(), "3 bytes after the end of the RDB")
    );

    // With the checksum off (zeroed), damage reaches the decoders: whatever is flipped or cut,
    // loading ends in an error or a value, never a panic.
    let mut plain = g.rdb.clone();
    let n = plain.len();
    plain[n - 8..].fill(0);
    let step = (n / 300).max(1);
    for at in (9..n - 9).step_by(step) {
        let _ = rdb::load(&plain[..at], lim, &mut Count::default()).unwrap_err();
        for mask in [0x01u8, 0x40, 0x80, 0xff] {
            let mut bad = plain.clone();
            bad[at] ^= mask;
            let _ = rdb::load(&bad, lim, &mut Count::default());
        }
    }

    // Through the server: DEBUG RELOAD refuses them and logs where and why.
    let (tmp, s) = start_with(&g.rdb);
    reload_fails(tmp.path(), &s, &g.rdb[..cut], "unexpected end of file in ");
    let want = format!("dump.rdb: offset {}: RDB CRC error", g.rdb.len() - 8);
    reload_fails(tmp.path(), &s, &flipped, &want);
}

#[test]
fn modules_are_refused_by_name_and_streams_are_read() {
    // A version 10 file holding one key of type 15 (stream listpacks), cut after its name:
    // streams are read (src/snapshot/rdb.rs tests a whole one), so this is a truncation.
    let mut f = b"REDIS0010".to_vec();
    f.extend_from_slice(&[0xfe, 0x00, 15, 2, b'x', b's']);
    let e = rdb::load(&f, EncodingLimits::default(), &mut Count::default()).unwrap_err();
    assert!(e.reason.starts_with("unexpected end of file in stream node count"), "{e}");
    let f = b"REDIS0010\xf7\x00";
    let e = rdb::load(f, EncodingLimits::default(), &mut Count::default()).unwrap_err();
    assert_eq!(
        (e.offset, e.reason.as_str()),
        (9, "module aux data is not supported (no modules)")
    );
}

/// Writes `fuzz/corpus/rdb_load/` from the oracle: small RDB files (with and without LZF
/// compression, with the checksum left out so that mutations reach the decoders) and the
/// object of a DUMP payload of every type in every encoding Redis 7.0 writes, with its version
/// and CRC-64 trailer cut off (RESTORE checks those before it decodes). Run with
/// `cargo test --test rdb_import -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "regenerates fuzz/corpus/rdb_load"]
fn write_fuzz_seeds() {
    let Some(bin) = oracle::binary("write_fuzz_seeds") else { return };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/rdb_load");
    std::fs::create_dir_all(&dir).unwrap();
    let put = |name: &str, b: &[u8]| std::fs::write(dir.join(name), b).unwrap();
    let o = Oracle::start(&bin, &["--enable-debug-command", "yes", "--rdbchecksum", "no"]);
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{}/", o.port))
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = q(&mut c, &["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "100"]);
    let cmds: &[&[&str]] = &[
        &["SET", "str-raw", "hello world"],
        &["SET", "str-int8", "-100"],
        &["SET", "str-int16", "30000"],
        &["SET", "str-int32", "-2000000000"],
        &["SET", "str-lzf", &"abcdefgh".repeat(12)],
        &["RPUSH", "list-listpack", "a", "1", "-70000", "12345678901", "b"],
        &["RPUSH", "list-plain-node", "x", &"P".repeat(120), "y"],
        &["HSET", "hash-listpack", "f", "v", "n", "7"],
        &["HSET", "hash-table", "f", &"v".repeat(70)],
        &["SADD", "set-intset", "1", "-5", "70000", "5000000000"],
        &["SADD", "set-table", "a", "b", "3"],
        &["ZADD", "zset-listpack", "1.5", "a", "-2", "b", "inf", "c"],
        &["ZADD", "zset-skiplist", "1", &"m".repeat(70), "2", "n"],
        &["XADD", "stream", "1-1", "f", "v", "g", "w"],
        &["XADD", "stream", "2-0", "f", "v2"],
        &["XADD", "stream", "3-5", "other", "x"],
        &["XDEL", "stream", "2-0"],
        &["XGROUP", "CREATE", "stream", "grp", "0"],
        &["XREADGROUP", "GROUP", "grp", "alice", "COUNT", "2", "STREAMS", "stream", ">"],
        &["XGROUP", "CREATECONSUMER", "stream", "grp", "bob"],
        &["XADD", "stream-empty", "5-5", "f", "v"],
        &["XDEL", "stream-empty", "5-5"],
        &["PEXPIREAT", "str-raw", "4102444800123"],
        &["FUNCTION", "LOAD", LIB],
    ];
    for cmd in cmds {
        let _: redis::Value = q(&mut c, cmd);
    }
    let mut keys: Vec<String> = q(&mut c, &["KEYS", "*"]);
    keys.sort();
    for k in &keys {
        let payload: Vec<u8> = q(&mut c, &["DUMP", k]);
        put(&format!("obj-{k}"), &payload[..payload.len() - 10]);
    }
    let fdump: Vec<u8> = q(&mut c, &["FUNCTION", "DUMP"]);
    put("functions", &fdump[..fdump.len() - 10]);
    let save = |c: &mut redis::Connection, compress: &str| -> Vec<u8> {
        let _: () = q(c, &["CONFIG", "SET", "rdbcompression", compress]);
        let _: () = q(c, &["SAVE"]);
        let dir: Vec<String> = q(c, &["CONFIG", "GET", "dir"]);
        std::fs::read(PathBuf::from(&dir[1]).join("dump.rdb")).unwrap()
    };
    put("file-every-type-lzf", &save(&mut c, "yes"));
    put("file-every-type-plain", &save(&mut c, "no"));
    let _: () = q(&mut c, &["FLUSHALL"]);
    let _: () = q(&mut c, &["FUNCTION", "FLUSH"]);
    let _: () = q(&mut c, &["SELECT", "3"]);
    let _: () = q(&mut c, &["SET", "k", "v"]);
    put("file-db3", &save(&mut c, "yes"));
}

/// RESTORE of a payload whose sorted set has a NaN score, with a correct CRC-64: both servers
/// refuse it with the same error, and ferrodis goes on serving.
#[test]
fn restore_refuses_a_nan_score_like_redis() {
    let Some(bin) = oracle::binary("restore_refuses_a_nan_score_like_redis") else { return };
    let o = Oracle::start(&bin, &[]);
    let mut r = redis::Client::open(format!("redis://127.0.0.1:{}/", o.port))
        .unwrap()
        .get_connection()
        .unwrap();
    // A skiplist sorted set (type 5: binary double scores) of one long member.
    let _: () = q(&mut r, &["CONFIG", "SET", "rdbcompression", "no"]);
    let member = "m".repeat(70);
    let _: () = q(&mut r, &["ZADD", "z", "2.5", &member]);
    let mut payload: Vec<u8> = q(&mut r, &["DUMP", "z"]);
    assert_eq!(payload[0], 5, "a ZSET_2 object");
    // The score follows the member; its 8 bytes become a NaN, and the CRC-64 is recomputed.
    let score = find(&payload, member.as_bytes()) + member.len();
    payload[score..score + 8].copy_from_slice(&f64::NAN.to_le_bytes());
    let body = payload.len() - 8;
    let crc = rdb::crc64(&payload[..body]);
    payload[body..].copy_from_slice(&crc.to_le_bytes());
    let restore = |c: &mut redis::Connection| -> String {
        match redis::cmd("RESTORE").arg("n").arg(0).arg(&payload).query::<String>(c) {
            Ok(v) => v,
            Err(e) => format!("{}: {}", e.code().unwrap_or("?"), e.detail().unwrap_or("")),
        }
    };
    let s = TestServer::start(&[]);
    let mut c = s.conn();
    let want = restore(&mut r);
    assert_eq!(want, "ERR: Bad data format");
    assert_eq!(restore(&mut c), want);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "n"]), 0);
    assert_eq!(q::<String>(&mut c, &["PING"]), "PONG");
}
