//! Black-box tests for Redis-format DUMP payloads and MIGRATE: every type and encoding moves
//! ferrodis -> redis-server -> ferrodis with DUMP / RESTORE and keeps its value (when
//! redis-server is on `PATH`); MIGRATE into redis-server and into ferrodis, its replies and
//! errors, the bytes it sends (AUTH, SELECT only when the database changes, pipelined
//! RESTOREs), its cached connections, the DEL it propagates, and its redacted secrets.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::oracle::{self, Oracle};
use common::{err, q, wait_caught_up, TestServer, REPL_DEBUG};
use redis::{Connection, Value as V};

fn dump(c: &mut Connection, key: &str) -> Vec<u8> {
    redis::cmd("DUMP").arg(key).query(c).unwrap()
}

fn restore(c: &mut Connection, key: &str, payload: &[u8]) -> Result<String, String> {
    redis::cmd("RESTORE")
        .arg(key)
        .arg(0)
        .arg(payload)
        .arg("REPLACE")
        .query(c)
        .map_err(|e| e.to_string())
}

fn digest(c: &mut Connection, key: &str) -> String {
    q::<Vec<String>>(c, &["DEBUG", "DIGEST-VALUE", key]).concat()
}

/// A key's value as replies show it, in an order that does not depend on the encoding (the
/// two servers' DEBUG DIGEST-VALUE differ).
fn content(c: &mut Connection, key: &str) -> Vec<Vec<u8>> {
    let t: String = q(c, &["TYPE", key]);
    let mut v: Vec<Vec<u8>> = match t.as_str() {
        "string" => vec![q(c, &["GET", key])],
        "list" => q(c, &["LRANGE", key, "0", "-1"]),
        "zset" => q(c, &["ZRANGE", key, "0", "-1", "WITHSCORES"]),
        "set" => q(c, &["SMEMBERS", key]),
        "hash" => {
            let flat: Vec<Vec<u8>> = q(c, &["HGETALL", key]);
            let mut pairs: Vec<Vec<u8>> = flat.chunks(2).map(|p| p.concat()).collect();
            pairs.sort();
            return pairs;
        }
        other => panic!("{key}: type {other}"),
    };
    if t == "set" {
        v.sort();
    }
    v
}

fn words(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn run(c: &mut Connection, args: &[String]) {
    let mut cmd = redis::cmd(&args[0]);
    for a in &args[1..] {
        cmd.arg(a);
    }
    cmd.query::<V>(c).unwrap();
}

fn cmd(parts: &[&str], rest: &[String]) -> Vec<String> {
    let mut v: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
    v.extend_from_slice(rest);
    v
}

/// Keys of every type in every encoding, small and big.
fn fill_every_encoding(c: &mut Connection) -> Vec<&'static str> {
    let long = "x".repeat(100);
    let pairs = |n: usize| -> Vec<String> {
        (0..n)
            .flat_map(|i| [format!("field:{i}"), format!("value-{}", i * 7)])
            .collect()
    };
    let scored = |n: usize| -> Vec<String> {
        (0..n)
            .flat_map(|i| [format!("{}.25", i as i64 - 50), format!("member:{i}")])
            .collect()
    };
    let random: String = (0..20_000u32)
        .map(|i| char::from(b'!' + ((i * 7919) % 91) as u8))
        .collect();
    let cmds: Vec<Vec<String>> = vec![
        cmd(&["SET", "str:int", "-123456"], &[]),
        cmd(&["SET", "str:bigint", "9223372036854775807"], &[]),
        cmd(&["SET", "str:emb", "hello"], &[]),
        cmd(&["SET", "str:zip", &"ab".repeat(50_000)], &[]),
        cmd(&["SET", "str:random", &random], &[]),
        cmd(&["PFADD", "str:hll"], &words("e", 5000)),
        cmd(&["RPUSH", "list:small", "a", "1", "-70000", &long], &[]),
        cmd(&["RPUSH", "list:big"], &words("element-number-", 20_000)),
        cmd(&["LPUSH", "list:head"], &words("h", 3000)),
        cmd(&["HSET", "hash:small"], &pairs(5)),
        cmd(&["HSET", "hash:big"], &pairs(1000)),
        cmd(&["HSET", "hash:long", "f", &long], &[]),
        cmd(&["SADD", "set:int16"], &words("", 100)),
        cmd(
            &["SADD", "set:int64", "1", "-9223372036854775808", "77"],
            &[],
        ),
        cmd(&["SADD", "set:big"], &words("", 2000)),
        cmd(&["SADD", "set:str"], &words("m", 300)),
        cmd(&["ZADD", "zset:small"], &scored(10)),
        cmd(&["ZADD", "zset:big"], &scored(1000)),
        cmd(
            &["ZADD", "zset:long", "1", &long, "inf", "b", "-inf", "c"],
            &[],
        ),
    ];
    for c2 in &cmds {
        run(c, c2);
    }
    fill_stream(c);
    vec![
        "str:int",
        "str:bigint",
        "str:emb",
        "str:zip",
        "str:random",
        "str:hll",
        "list:small",
        "list:big",
        "list:head",
        "hash:small",
        "hash:big",
        "hash:long",
        "set:int16",
        "set:int64",
        "set:big",
        "set:str",
        "zset:small",
        "zset:big",
        "zset:long",
    ]
}

/// A stream over several nodes with deleted entries, two groups, pending entries of two
/// consumers (one claimed with a set time and count) and an idle consumer.
fn fill_stream(c: &mut Connection) {
    for i in 1..=300 {
        let (f, v) = if i % 3 == 0 {
            ("other", "field")
        } else {
            ("a", "1")
        };
        let id = format!("{i}-{}", i % 5);
        q::<String>(c, &["XADD", "stream", &id, f, v, "n", &i.to_string()]);
    }
    q::<i64>(c, &["XDEL", "stream", "2-2", "150-0", "151-1"]);
    q::<String>(c, &["XGROUP", "CREATE", "stream", "g1", "0"]);
    q::<String>(
        c,
        &[
            "XGROUP",
            "CREATE",
            "stream",
            "g2",
            "100-0",
            "ENTRIESREAD",
            "99",
        ],
    );
    q::<V>(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "alice",
            "COUNT",
            "5",
            "STREAMS",
            "stream",
            ">",
        ],
    );
    q::<V>(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "bob",
            "COUNT",
            "3",
            "STREAMS",
            "stream",
            ">",
        ],
    );
    q::<V>(
        c,
        &[
            "XCLAIM",
            "stream",
            "g1",
            "bob",
            "0",
            "1-1",
            "TIME",
            "1700000000000",
            "RETRYCOUNT",
            "7",
        ],
    );
    q::<i64>(c, &["XGROUP", "CREATECONSUMER", "stream", "g2", "idle"]);
}

/// Every value DUMPed by ferrodis restores in redis-server to the same value, and redis-server's
/// DUMP of it restores in ferrodis to the same value again.
#[test]
fn every_type_round_trips_through_redis() {
    let Some(bin) = oracle::binary("every_type_round_trips_through_redis") else {
        return;
    };
    let o = Oracle::start(&bin, &["--enable-debug-command", "yes"]);
    let mut r = redis::Client::open(format!("redis://127.0.0.1:{}/", o.port))
        .unwrap()
        .get_connection()
        .unwrap();
    let s = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut c = s.conn();
    let keys = fill_every_encoding(&mut c);
    for k in keys {
        let payload = dump(&mut c, k);
        assert_eq!(restore(&mut r, k, &payload).as_deref(), Ok("OK"), "{k}");
        let want = digest(&mut c, k);
        assert!(
            content(&mut r, k) == content(&mut c, k),
            "{k} in redis-server"
        );
        let enc: String = q(&mut c, &["OBJECT", "ENCODING", k]);
        assert_eq!(q::<String>(&mut r, &["OBJECT", "ENCODING", k]), enc, "{k}");
        let back = dump(&mut r, k);
        let copy = format!("back:{k}");
        assert_eq!(restore(&mut c, &copy, &back).as_deref(), Ok("OK"), "{k}");
        assert_eq!(digest(&mut c, &copy), want, "{k} back in ferrodis");
    }
    // Streams: redis-server's digest covers the entries only, so compare what it reports.
    let payload = dump(&mut c, "stream");
    assert_eq!(restore(&mut r, "stream", &payload).as_deref(), Ok("OK"));
    for args in [
        &["XRANGE", "stream", "-", "+"][..],
        &["XPENDING", "stream", "g1"],
        &["XINFO", "GROUPS", "stream"],
        &["XLEN", "stream"],
    ] {
        assert_eq!(q::<V>(&mut r, args), q::<V>(&mut c, args), "{args:?}");
    }
    let full = |c: &mut Connection, k: &str| q::<V>(c, &["XINFO", "STREAM", k, "FULL"]);
    let back = dump(&mut r, "stream");
    assert_eq!(restore(&mut c, "back:stream", &back).as_deref(), Ok("OK"));
    assert_eq!(full(&mut c, "back:stream"), full(&mut c, "stream"));
    assert_eq!(digest(&mut c, "back:stream"), digest(&mut c, "stream"));
    // Lists cut into nodes by a count, and without compression.
    q::<String>(&mut c, &["CONFIG", "SET", "list-max-listpack-size", "7"]);
    q::<String>(&mut c, &["CONFIG", "SET", "rdbcompression", "no"]);
    for k in ["list:big", "str:zip", "hash:small"] {
        let payload = dump(&mut c, k);
        assert_eq!(restore(&mut r, k, &payload).as_deref(), Ok("OK"), "{k}");
        assert!(content(&mut r, k) == content(&mut c, k), "{k}");
    }
    // Elements stored as plain nodes.
    q::<String>(&mut c, &["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "100"]);
    q::<i64>(&mut c, &["RPUSH", "list:plain", "a", &"p".repeat(300), "b"]);
    let payload = dump(&mut c, "list:plain");
    assert_eq!(restore(&mut r, "list:plain", &payload).as_deref(), Ok("OK"));
    assert_eq!(content(&mut r, "list:plain"), content(&mut c, "list:plain"));
}

/// FUNCTION DUMP gives redis-server's payload: each side restores the other's libraries.
#[test]
fn function_payloads_move_both_ways() {
    let Some(bin) = oracle::binary("function_payloads_move_both_ways") else {
        return;
    };
    let o = Oracle::start(&bin, &[]);
    let mut r = redis::Client::open(format!("redis://127.0.0.1:{}/", o.port))
        .unwrap()
        .get_connection()
        .unwrap();
    let s = TestServer::start(&[]);
    let mut c = s.conn();
    for (i, conn) in [&mut c, &mut r].into_iter().enumerate() {
        let code = format!(
            "#!lua name=lib{i}\nredis.register_function('f{i}', function() return {i} end)"
        );
        q::<String>(conn, &["FUNCTION", "LOAD", &code]);
    }
    let ours: Vec<u8> = redis::cmd("FUNCTION").arg("DUMP").query(&mut c).unwrap();
    let theirs: Vec<u8> = redis::cmd("FUNCTION").arg("DUMP").query(&mut r).unwrap();
    for (conn, payload) in [(&mut r, &ours), (&mut c, &theirs)] {
        let ok: String = redis::cmd("FUNCTION")
            .arg("RESTORE")
            .arg(payload)
            .query(conn)
            .unwrap();
        assert_eq!(ok, "OK");
    }
    for conn in [&mut c, &mut r] {
        assert_eq!(q::<i64>(conn, &["FCALL", "f0", "0"]), 0);
        assert_eq!(q::<i64>(conn, &["FCALL", "f1", "0"]), 1);
    }
    // Not a function record under a valid checksum.
    let mut bad = b"\x00\x03abc\x0a\x00".to_vec();
    bad.extend_from_slice(&crc64(&bad).to_le_bytes());
    for conn in [&mut c, &mut r] {
        let e = redis::cmd("FUNCTION")
            .arg("RESTORE")
            .arg(&bad)
            .query::<()>(conn)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "An error was signalled by the server - ResponseError: given type is not a function"
        );
    }
}

/// Redis's CRC-64 (Jones, reflected), to forge payloads.
fn crc64(data: &[u8]) -> u64 {
    let mut crc = 0u64;
    for &b in data {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x95ac_9329_ac4b_c9b5
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// MIGRATE into redis-server: one key, several with KEYS, TTLs, COPY, REPLACE, and the target's
/// errors reported as Redis reports them.
#[test]
fn migrate_into_redis() {
    let Some(bin) = oracle::binary("migrate_into_redis") else {
        return;
    };
    let o = Oracle::start(&bin, &[]);
    let port = o.port.to_string();
    let mut r = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap();
    let s = TestServer::start(&[]);
    let mut c = s.conn();
    q::<i64>(&mut c, &["RPUSH", "l", "a", "b", "c"]);
    q::<String>(&mut c, &["SET", "t", "v", "PX", "100000"]);
    q::<i64>(&mut c, &["HSET", "h", "f", "v"]);
    assert_eq!(
        q::<String>(&mut c, &["MIGRATE", "127.0.0.1", &port, "l", "0", "5000"]),
        "OK"
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "l"]), 0);
    assert_eq!(
        q::<Vec<String>>(&mut r, &["LRANGE", "l", "0", "-1"]),
        ["a", "b", "c"]
    );
    let m = [
        "MIGRATE",
        "127.0.0.1",
        &port,
        "",
        "5",
        "5000",
        "COPY",
        "KEYS",
        "t",
        "h",
        "nokey",
    ];
    assert_eq!(q::<String>(&mut c, &m), "OK");
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "t", "h"]), 2);
    let _: () = redis::cmd("SELECT").arg(5).query(&mut r).unwrap();
    let pttl: i64 = q(&mut r, &["PTTL", "t"]);
    assert!(pttl > 90_000 && pttl <= 100_000, "{pttl}");
    assert_eq!(q::<i64>(&mut r, &["PTTL", "h"]), -1);
    // The keys exist there now: BUSYKEY, unless REPLACE.
    assert_eq!(
        err(
            &mut c,
            &["MIGRATE", "127.0.0.1", &port, "h", "5", "5000", "COPY"]
        ),
        "ERR Target instance replied with error: BUSYKEY Target key name already exists."
    );
    q::<i64>(&mut c, &["HSET", "h", "g", "w"]);
    assert_eq!(
        q::<String>(
            &mut c,
            &["MIGRATE", "127.0.0.1", &port, "h", "5", "5000", "REPLACE"]
        ),
        "OK"
    );
    assert_eq!(q::<i64>(&mut r, &["HLEN", "h"]), 2);
    assert_eq!(
        q::<String>(&mut c, &["MIGRATE", "127.0.0.1", &port, "h", "5", "5000"]),
        "NOKEY"
    );
    q::<String>(&mut c, &["SET", "k", "v"]);
    assert_eq!(
        err(
            &mut c,
            &[
                "MIGRATE",
                "127.0.0.1",
                &port,
                "k",
                "0",
                "5000",
                "AUTH",
                "pw"
            ]
        ),
        "ERR Target instance replied with error: ERR AUTH <password> called without any \
         password configured for the default user. Are you sure your configuration is correct?"
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "k"]), 1);
}

/// Argument errors and unreachable targets, with Redis's messages.
#[test]
fn migrate_errors() {
    let s = TestServer::start(&[]);
    let mut c = s.conn();
    q::<String>(&mut c, &["SET", "k", "v"]);
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let cases: &[(&[&str], &str)] = &[
        (
            &["MIGRATE", "h", "1", "k", "0"],
            "ERR wrong number of arguments for 'migrate' command",
        ),
        (
            &["MIGRATE", "h", "1", "k", "0", "10", "foo"],
            "ERR syntax error",
        ),
        (
            &["MIGRATE", "h", "1", "k", "0", "10", "AUTH"],
            "ERR syntax error",
        ),
        (
            &["MIGRATE", "h", "1", "k", "0", "10", "AUTH2", "u"],
            "ERR syntax error",
        ),
        (
            &["MIGRATE", "h", "1", "k", "0", "10", "KEYS", "k"],
            "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
        ),
        (
            &["MIGRATE", "h", "1", "k", "x", "10"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["MIGRATE", "h", "1", "k", "0", "x"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["MIGRATE", "no.such.host.invalid", "1", "k", "0", "100"],
            "IOERR error or timeout connecting to the client",
        ),
        (
            &["MIGRATE", "127.0.0.1", &closed, "k", "0", "100"],
            "IOERR error or timeout writing to target instance",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(err(&mut c, args), *want, "{args:?}");
    }
    assert_eq!(
        q::<String>(&mut c, &["MIGRATE", "h", "1", "nokey", "0", "10"]),
        "NOKEY"
    );
    assert_eq!(
        q::<String>(
            &mut c,
            &["MIGRATE", "h", "1", "", "0", "10", "KEYS", "a", "b"]
        ),
        "NOKEY"
    );
    // A target that never answers: a read timeout, not retried.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port().to_string();
    let started = Instant::now();
    assert_eq!(
        err(&mut c, &["MIGRATE", "127.0.0.1", &port, "k", "0", "300"]),
        "IOERR error or timeout reading to target instance"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "k"]), 1);
}

/// One command in RESP.
fn resp(argv: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", argv.len()).into_bytes();
    for a in argv {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads `want.len()` bytes on a fake target's connection, checks them and answers `+OK` to
/// each of `commands` commands.
fn serve_ok(conn: &mut TcpStream, want: &[u8], commands: usize) {
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = vec![0u8; want.len()];
    conn.read_exact(&mut got).unwrap();
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
    conn.write_all(&b"+OK\r\n".repeat(commands)).unwrap();
}

/// The bytes MIGRATE sends: AUTH2, SELECT only when the database changes on the cached
/// connection, pipelined RESTOREs with REPLACE; the connection is reused, then closed after
/// about 10 idle seconds.
#[test]
fn migrate_wire_format_and_cached_connection() {
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port().to_string();
    let s = TestServer::start(&[]);
    let mut c = s.conn();
    q::<String>(&mut c, &["SET", "k", "12345"]);
    q::<String>(&mut c, &["HSET", "j", "f", "v"]);
    let (pk, pj) = (dump(&mut c, "k"), dump(&mut c, "j"));
    let (url, p) = (s.url(), port.clone());
    let client = std::thread::spawn(move || {
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        let m = [
            "MIGRATE",
            "127.0.0.1",
            &p,
            "k",
            "3",
            "5000",
            "COPY",
            "AUTH2",
            "u",
            "pw",
        ];
        let a: String = q(&mut c, &m);
        let m = [
            "MIGRATE",
            "127.0.0.1",
            &p,
            "",
            "3",
            "5000",
            "REPLACE",
            "KEYS",
            "k",
            "j",
        ];
        let b: String = q(&mut c, &m);
        (a, b)
    });
    let (mut conn, _) = target.accept().unwrap();
    let mut first = resp(&[b"AUTH", b"u", b"pw"]);
    first.extend(resp(&[b"SELECT", b"3"]));
    first.extend(resp(&[b"RESTORE", b"k", b"0", &pk]));
    serve_ok(&mut conn, &first, 3);
    let mut second = resp(&[b"RESTORE", b"k", b"0", &pk, b"REPLACE"]);
    second.extend(resp(&[b"RESTORE", b"j", b"0", &pj, b"REPLACE"]));
    serve_ok(&mut conn, &second, 2);
    let (a, b) = client.join().unwrap();
    assert_eq!((a.as_str(), b.as_str()), ("OK", "OK"));
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "k", "j"]), 0);
    // Unused for more than 10 seconds, the connection is closed.
    let started = Instant::now();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    assert_eq!(conn.read(&mut [0u8; 16]).unwrap(), 0);
    let idle = started.elapsed();
    assert!(
        idle > Duration::from_secs(9) && idle < Duration::from_secs(14),
        "{idle:?}"
    );
}

/// Between two ferrodis servers: the source propagates the move as a DEL of the migrated keys
/// (its replica loses them too), COPY propagates nothing; the credentials are redacted in the
/// slow log.
#[test]
fn migrate_between_ferrodis_propagates_del() {
    let master = TestServer::start(&REPL_DEBUG);
    let mport = master.port.to_string();
    let replica =
        TestServer::start(&[&REPL_DEBUG[..], &["--replicaof", "127.0.0.1", &mport]].concat());
    let target = TestServer::start(&[]);
    let tport = target.port.to_string();
    let mut m = master.conn();
    wait_caught_up(&replica, &master);
    q::<i64>(&mut m, &["ZADD", "z", "1", "a", "2", "b"]);
    q::<String>(&mut m, &["SET", "s", "v"]);
    q::<String>(&mut m, &["SET", "c", "v"]);
    q::<String>(&mut m, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    let mv = [
        "MIGRATE",
        "127.0.0.1",
        &tport,
        "",
        "0",
        "5000",
        "KEYS",
        "z",
        "s",
        "nokey",
    ];
    assert_eq!(q::<String>(&mut m, &mv), "OK");
    let cp = [
        "MIGRATE",
        "127.0.0.1",
        &tport,
        "c",
        "0",
        "5000",
        "COPY",
        "AUTH2",
        "user",
        "secret",
    ];
    assert!(err(&mut m, &cp).starts_with("ERR Target instance replied with error: "));
    let log: V = q(&mut m, &["SLOWLOG", "GET", "1"]);
    let text = format!("{log:?}");
    assert!(
        text.contains("redacted") && !text.contains("secret") && !text.contains("user"),
        "{text}"
    );
    wait_caught_up(&replica, &master);
    let mut r = replica.conn();
    assert_eq!(q::<i64>(&mut r, &["EXISTS", "z", "s", "c"]), 1);
    let mut t = target.conn();
    assert_eq!(
        q::<Vec<String>>(&mut t, &["ZRANGE", "z", "0", "-1"]),
        ["a", "b"]
    );
    assert_eq!(q::<String>(&mut t, &["GET", "s"]), "v");
    // The AUTH error is reported, but the pipelined RESTORE still ran there (as with Redis).
    assert_eq!(q::<i64>(&mut t, &["EXISTS", "c"]), 1);
}
