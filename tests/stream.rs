//! Streams end to end: commands against the real binary (values, errors, blocking reads),
//! persistence (DEBUG RELOAD, DUMP/RESTORE, the RESP log rewrite), and, in process, what the
//! commands propagate (generated IDs, exact trims, group state as XCLAIM / XGROUP SETID), with
//! a replay of that stream rebuilding the same streams.

mod common;

use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{err, q, wait_blocked, TestServer};
use ferrodis::config::Config;
use ferrodis::dispatch::execute;
use ferrodis::protocol::decode::ArgSource;
use ferrodis::protocol::{ReplyBuf, RequestParser, Resp};
use ferrodis::server::client::{Client, ClientInfo, ClientShared};
use ferrodis::server::Server;
use redis::Value as V;

fn conn_debug() -> (TestServer, redis::Connection) {
    let s = TestServer::start(&["--enable-debug-command", "yes"]);
    let c = s.conn();
    (s, c)
}

fn ids(v: &V) -> Vec<String> {
    let V::Array(items) = v else { panic!("{v:?}") };
    items
        .iter()
        .map(|e| match e {
            V::Array(p) => match &p[0] {
                V::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                o => panic!("{o:?}"),
            },
            o => panic!("{o:?}"),
        })
        .collect()
}

#[test]
fn add_range_delete_and_errors() {
    let (_s, mut c) = conn_debug();
    let id: String = q(&mut c, &["XADD", "s", "1-1", "a", "1"]);
    assert_eq!(id, "1-1");
    let id: String = q(&mut c, &["XADD", "s", "1-*", "b", "2"]);
    assert_eq!(id, "1-2");
    let id: String = q(&mut c, &["XADD", "s", "*", "c", "3"]);
    let ms: u64 = id.split('-').next().unwrap().parse().unwrap();
    assert!(ms > 1_600_000_000_000, "{id}");
    assert_eq!(q::<i64>(&mut c, &["XLEN", "s"]), 3);
    assert_eq!(q::<String>(&mut c, &["TYPE", "s"]), "stream");
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "s"]), "stream");
    let all: V = q(&mut c, &["XRANGE", "s", "-", "+"]);
    assert_eq!(ids(&all), ["1-1", "1-2", id.as_str()]);
    let rev: V = q(&mut c, &["XREVRANGE", "s", "+", "(1-1", "COUNT", "5"]);
    assert_eq!(ids(&rev), [id.as_str(), "1-2"]);
    assert_eq!(
        err(&mut c, &["XADD", "s", "1-1", "x", "y"]),
        "ERR The ID specified in XADD is equal or smaller than the target stream top item"
    );
    assert_eq!(
        err(&mut c, &["XADD", "t", "0-0", "x", "y"]),
        "ERR The ID specified in XADD must be greater than 0-0"
    );
    assert_eq!(
        err(&mut c, &["XADD", "s", "x-1", "x", "y"]),
        "ERR Invalid stream ID specified as stream command argument"
    );
    assert_eq!(
        err(&mut c, &["XADD", "s", "*", "x"]),
        "ERR wrong number of arguments for 'xadd' command"
    );
    assert_eq!(q::<i64>(&mut c, &["XDEL", "s", "1-1", "9-9"]), 1);
    assert_eq!(q::<i64>(&mut c, &["XLEN", "s"]), 2);
    q::<()>(&mut c, &["SET", "str", "x"]);
    assert!(err(&mut c, &["XLEN", "str"]).starts_with("WRONGTYPE"));
    assert_eq!(
        q::<V>(&mut c, &["XADD", "nokey", "NOMKSTREAM", "*", "a", "1"]),
        V::Nil
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "nokey"]), 0);
}

#[test]
fn approximate_trims_remove_whole_nodes() {
    let (_s, mut c) = conn_debug();
    q::<()>(&mut c, &["CONFIG", "SET", "stream-node-max-entries", "10"]);
    for i in 1..=95 {
        let id = format!("{i}-0");
        q::<String>(&mut c, &["XADD", "s", &id, "f", "v"]);
    }
    // Nodes of 10: trimming to about 50 leaves the 55 entries of the nodes that must stay.
    assert_eq!(q::<i64>(&mut c, &["XTRIM", "s", "MAXLEN", "~", "50"]), 40);
    assert_eq!(q::<i64>(&mut c, &["XLEN", "s"]), 55);
    assert_eq!(q::<i64>(&mut c, &["XTRIM", "s", "MAXLEN", "50"]), 5);
    // Whole nodes only: the rest of 41-50, then 51-60 and 61-70; 71-80 holds 75.
    assert_eq!(q::<i64>(&mut c, &["XTRIM", "s", "MINID", "~", "75"]), 25);
    let first: V = q(&mut c, &["XRANGE", "s", "-", "+", "COUNT", "1"]);
    assert_eq!(ids(&first), ["71-0"]);
}

/// Reads one reply from a raw connection, waiting up to `ms`.
fn read_within(r: &mut common::RawConn, ms: u64) -> Vec<u8> {
    r.read_some(Duration::from_millis(ms))
}

#[test]
fn blocking_xread_waits_for_entries_after_the_id_it_blocked_on() {
    let (s, mut c) = conn_debug();
    q::<String>(&mut c, &["XADD", "s", "1-0", "a", "1"]);
    let mut r = s.raw();
    r.send(b"XREAD BLOCK 0 STREAMS s $\r\n");
    wait_blocked(&mut c, 1);
    // Another write to the key that adds nothing after `$` does not serve it.
    q::<i64>(&mut c, &["XDEL", "s", "1-0"]);
    assert!(read_within(&mut r, 100).is_empty());
    q::<String>(&mut c, &["XADD", "s", "2-0", "b", "2"]);
    let got = read_within(&mut r, 2000);
    assert_eq!(
        got,
        b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"
    );
    // A timeout answers a null array.
    let t = Instant::now();
    r.send(b"XREAD BLOCK 100 STREAMS s $\r\n");
    assert_eq!(read_within(&mut r, 2000), b"*-1\r\n");
    assert!(t.elapsed() >= Duration::from_millis(90));
    // Without BLOCK, nothing new is a null array at once.
    assert_eq!(r.cmd(&["XREAD", "STREAMS", "s", "$"]), b"*-1\r\n");
}

#[test]
fn one_xadd_wakes_every_reader() {
    let (s, mut c) = conn_debug();
    let mut readers: Vec<_> = (0..3).map(|_| s.raw()).collect();
    for r in &mut readers {
        r.send(b"XREAD BLOCK 0 STREAMS s 0\r\n");
    }
    wait_blocked(&mut c, 3);
    q::<String>(&mut c, &["XADD", "s", "5-0", "k", "v"]);
    for r in &mut readers {
        let got = read_within(r, 2000);
        assert!(
            got.starts_with(b"*1\r\n*2\r\n$1\r\ns\r\n"),
            "{:?}",
            String::from_utf8_lossy(&got)
        );
    }
}

#[test]
fn a_reader_waiting_for_later_entries_does_not_hold_up_the_others() {
    let (s, mut c) = conn_debug();
    q::<String>(&mut c, &["XADD", "s", "1-0", "a", "1"]);
    let mut late = s.raw();
    late.send(b"XREAD BLOCK 0 STREAMS s 100-0\r\n");
    wait_blocked(&mut c, 1);
    let mut now = s.raw();
    now.send(b"XREAD BLOCK 0 STREAMS s $\r\n");
    wait_blocked(&mut c, 2);
    q::<String>(&mut c, &["XADD", "s", "2-0", "b", "2"]);
    let got = read_within(&mut now, 2000);
    assert!(got.starts_with(b"*1\r\n*2\r\n$1\r\ns\r\n"), "{got:?}");
    assert!(read_within(&mut late, 100).is_empty());
    q::<String>(&mut c, &["XADD", "s", "101-0", "c", "3"]);
    let got = read_within(&mut late, 2000);
    assert!(got.ends_with(b"$5\r\n101-0\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n"), "{got:?}");
}

#[test]
fn blocking_xreadgroup_gets_new_entries_and_errors_when_the_group_goes() {
    let (s, mut c) = conn_debug();
    q::<()>(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let mut r = s.raw();
    r.send(b"XREADGROUP GROUP g alice BLOCK 0 STREAMS s >\r\n");
    wait_blocked(&mut c, 1);
    q::<String>(&mut c, &["XADD", "s", "3-0", "f", "v"]);
    let got = read_within(&mut r, 2000);
    assert_eq!(
        got,
        b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n3-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
    );
    let pending: V = q(&mut c, &["XPENDING", "s", "g"]);
    let V::Array(p) = pending else { panic!() };
    assert_eq!(p[0], V::Int(1));
    r.send(b"XREADGROUP GROUP g alice BLOCK 0 STREAMS s >\r\n");
    wait_blocked(&mut c, 1);
    assert_eq!(q::<i64>(&mut c, &["XGROUP", "DESTROY", "s", "g"]), 1);
    let got = read_within(&mut r, 2000);
    assert_eq!(
        got,
        b"-NOGROUP the consumer group this client was blocked on no longer exists\r\n"
    );
}

#[test]
fn groups_claims_and_pending() {
    let (_s, mut c) = conn_debug();
    for i in 1..=3 {
        q::<String>(&mut c, &["XADD", "s", &format!("{i}-0"), "f", "v"]);
    }
    q::<()>(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
    let got: V = q(
        &mut c,
        &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"],
    );
    let V::Array(streams) = got else { panic!() };
    let V::Array(pair) = &streams[0] else {
        panic!()
    };
    assert_eq!(ids(&pair[1]), ["1-0", "2-0", "3-0"]);
    let claimed: V = q(&mut c, &["XCLAIM", "s", "g", "b", "0", "2-0", "JUSTID"]);
    assert_eq!(claimed, V::Array(vec![V::BulkString(b"2-0".to_vec())]));
    q::<i64>(&mut c, &["XDEL", "s", "3-0"]);
    let auto: V = q(&mut c, &["XAUTOCLAIM", "s", "g", "b", "0", "0", "JUSTID"]);
    let V::Array(parts) = auto else { panic!() };
    assert_eq!(parts[0], V::BulkString(b"0-0".to_vec()));
    assert_eq!(parts[2], V::Array(vec![V::BulkString(b"3-0".to_vec())]));
    assert_eq!(
        q::<i64>(&mut c, &["XACK", "s", "g", "1-0", "2-0", "3-0"]),
        2
    );
    let info: V = q(&mut c, &["XINFO", "GROUPS", "s"]);
    let V::Array(groups) = info else { panic!() };
    let V::Array(g) = &groups[0] else { panic!() };
    assert_eq!(g[5], V::Int(0), "pending");
    assert_eq!(
        err(
            &mut c,
            &["XREADGROUP", "GROUP", "nog", "a", "STREAMS", "s", ">"]
        ),
        "NOGROUP No such key 's' or consumer group 'nog' in XREADGROUP with GROUP option"
    );
    assert_eq!(
        err(&mut c, &["XGROUP", "CREATE", "s", "g", "$"]),
        "BUSYGROUP Consumer Group name already exists"
    );
}

#[test]
fn streams_survive_reload_and_dump_restore() {
    let (s, mut c) = conn_debug();
    for i in 1..=5 {
        q::<String>(
            &mut c,
            &["XADD", "s", &format!("{i}-0"), "f", &i.to_string()],
        );
    }
    q::<i64>(&mut c, &["XDEL", "s", "5-0"]);
    q::<()>(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
    q::<V>(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "a",
            "COUNT",
            "2",
            "STREAMS",
            "s",
            ">",
        ],
    );
    q::<i64>(&mut c, &["XGROUP", "CREATECONSUMER", "s", "g", "idle"]);
    q::<()>(&mut c, &["XGROUP", "CREATE", "empty", "g", "$", "MKSTREAM"]);
    let full = |c: &mut redis::Connection, k: &str| -> V { q(c, &["XINFO", "STREAM", k, "FULL"]) };
    let before = (full(&mut c, "s"), full(&mut c, "empty"));
    let digest = common::digest(&mut c);
    q::<()>(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!((full(&mut c, "s"), full(&mut c, "empty")), before);
    assert_eq!(common::digest(&mut c), digest);
    let payload: Vec<u8> = redis::cmd("DUMP").arg("s").query(&mut c).unwrap();
    redis::cmd("RESTORE")
        .arg("s2")
        .arg(0)
        .arg(payload)
        .query::<()>(&mut c)
        .unwrap();
    assert_eq!(full(&mut c, "s2"), before.0);
    drop(s);
}

#[test]
fn resp_log_rewrite_rebuilds_streams_with_groups() {
    let s = TestServer::start(&[
        "--enable-debug-command",
        "yes",
        "--appendonly",
        "yes",
        "--aof-use-rdb-preamble",
        "no",
    ]);
    let mut c = s.conn();
    for i in 1..=4 {
        q::<String>(
            &mut c,
            &["XADD", "s", &format!("{i}-0"), "f", &i.to_string()],
        );
    }
    q::<i64>(&mut c, &["XDEL", "s", "4-0"]);
    q::<()>(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
    q::<V>(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "a",
            "COUNT",
            "2",
            "STREAMS",
            "s",
            ">",
        ],
    );
    q::<i64>(&mut c, &["XGROUP", "CREATECONSUMER", "s", "g", "idle"]);
    q::<String>(&mut c, &["XADD", "e", "MAXLEN", "0", "9-9", "x", "y"]);
    let pending: V = q(&mut c, &["XPENDING", "s", "g", "-", "+", "10"]);
    let digest = common::digest(&mut c);
    q::<String>(&mut c, &["BGREWRITEAOF"]);
    common::wait_until("rewrite done", || {
        common::info_field(&mut c, "persistence", "aof_rewrite_in_progress") == "0"
    });
    q::<()>(&mut c, &["DEBUG", "LOADAOF"]);
    assert_eq!(common::digest(&mut c), digest);
    let after: V = q(&mut c, &["XPENDING", "s", "g", "-", "+", "10"]);
    // Idle times moved on; owners and delivery counts did not.
    let strip = |v: &V| -> Vec<(V, V, V)> {
        let V::Array(a) = v else { panic!() };
        a.iter()
            .map(|e| {
                let V::Array(f) = e else { panic!() };
                (f[0].clone(), f[1].clone(), f[3].clone())
            })
            .collect()
    };
    assert_eq!(strip(&after), strip(&pending));
    let info: V = q(&mut c, &["XINFO", "STREAM", "e"]);
    let V::Array(f) = info else { panic!() };
    assert_eq!(f[1], V::Int(0));
    assert_eq!(f[7], V::BulkString(b"9-9".to_vec()));
}

// ---------------------------------------------------------------------------------------------
// propagation, in process

struct Harness {
    server: Server,
    client: Client,
    out: ReplyBuf,
}

impl Harness {
    fn new() -> Harness {
        let addr = "127.0.0.1:1".parse().unwrap();
        let shared = Rc::new(ClientShared::new(ClientInfo::new(1, addr, addr, -1)));
        Harness {
            server: Server::new(Config::default()),
            client: Client::new(1, shared, true),
            out: ReplyBuf::new(Resp::V2),
        }
    }

    fn run(&mut self, args: &[&str]) -> Vec<u8> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.run_bytes(&args)
    }

    fn run_bytes(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.out.buf.clear();
        execute(&mut self.server, &mut self.client, &mut self.out, args);
        self.out.buf.to_vec()
    }

    /// The commands propagated since the last call.
    fn propagated(&mut self) -> Vec<Vec<String>> {
        let bytes = self.server.state.journal.take_pending();
        let mut p = RequestParser::default();
        let mut cmds = Vec::new();
        while p.parse(&bytes, false).unwrap() {
            assert!(matches!(p.args_source(), ArgSource::Buffer));
            cmds.push(
                p.ranges()
                    .iter()
                    .map(|r| String::from_utf8_lossy(&bytes[r.clone()]).into_owned())
                    .collect(),
            );
        }
        cmds
    }
}

fn sv(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn generated_ids_and_approximate_trims_propagate_exactly() {
    let mut h = Harness::new();
    h.server.state.journal.attach();
    let reply = h.run(&["XADD", "s", "*", "a", "1"]);
    let id = String::from_utf8_lossy(&reply[reply.len() - 2 - 15..reply.len() - 2]).into_owned();
    let cmds = h.propagated();
    assert_eq!(cmds.last().unwrap(), &sv(&["XADD", "s", &id, "a", "1"]));
    h.run(&["XADD", "s", "9999999999999-*", "b", "2"]);
    assert_eq!(
        h.propagated().last().unwrap(),
        &sv(&["XADD", "s", "9999999999999-0", "b", "2"])
    );
    h.run(&["XADD", "s", "MAXLEN", "~", "1", "9999999999999-5", "c", "3"]);
    // Nodes hold 100 entries: nothing goes, and the trim propagates as the exact length kept.
    assert_eq!(
        h.propagated().last().unwrap(),
        &sv(&["XADD", "s", "MAXLEN", "=", "3", "9999999999999-5", "c", "3"])
    );
    h.run(&["XTRIM", "s", "MINID", "~", "0"]);
    assert!(
        h.propagated().is_empty(),
        "a trim that removes nothing propagates nothing"
    );
    h.run(&["XTRIM", "s", "MAXLEN", "1"]);
    assert_eq!(
        h.propagated().last().unwrap(),
        &sv(&["XTRIM", "s", "MAXLEN", "1"])
    );
}

#[test]
fn group_reads_propagate_as_claims_and_setid() {
    let mut h = Harness::new();
    h.server.state.journal.attach();
    h.run(&["XADD", "s", "1-0", "a", "1"]);
    h.run(&["XADD", "s", "2-0", "b", "2"]);
    h.run(&["XGROUP", "CREATE", "s", "g", "0"]);
    h.propagated();
    h.run(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "COUNT",
        "1",
        "STREAMS",
        "s",
        ">",
    ]);
    let cmds = h.propagated();
    let claim: Vec<&String> = cmds
        .iter()
        .find(|c| c[0] == "XCLAIM")
        .unwrap()
        .iter()
        .collect();
    assert_eq!(claim[1..6], ["s", "g", "alice", "0", "1-0"]);
    assert_eq!(
        claim[6..],
        [
            "TIME",
            &claim[7].clone(),
            "RETRYCOUNT",
            "1",
            "FORCE",
            "JUSTID",
            "LASTID",
            "1-0"
        ]
    );
    h.run(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "bob",
        "NOACK",
        "STREAMS",
        "s",
        ">",
    ]);
    let cmds = h.propagated();
    let names: Vec<&str> = cmds.iter().map(|c| c[0].as_str()).collect();
    assert_eq!(names, ["MULTI", "XGROUP", "XGROUP", "EXEC"]);
    assert_eq!(cmds[1], sv(&["XGROUP", "CREATECONSUMER", "s", "g", "bob"]));
    assert_eq!(
        cmds[2],
        sv(&["XGROUP", "SETID", "s", "g", "2-0", "ENTRIESREAD", "2"])
    );
    // A read that delivers nothing propagates nothing.
    h.run(&["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"]);
    assert!(h.propagated().is_empty());
}

#[test]
fn replaying_the_write_stream_rebuilds_the_streams() {
    let mut h = Harness::new();
    h.server.state.journal.attach();
    let script: &[&[&str]] = &[
        &["XADD", "s", "*", "a", "1"],
        &["XADD", "s", "*", "b", "2"],
        &["XADD", "s", "MAXLEN", "~", "1", "*", "c", "3"],
        &["XGROUP", "CREATE", "s", "g", "0"],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "a",
            "COUNT",
            "2",
            "STREAMS",
            "s",
            ">",
        ],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "b",
            "NOACK",
            "STREAMS",
            "s",
            ">",
        ],
        &["XCLAIM", "s", "g", "c", "0", "0-1", "FORCE"],
        &["XACK", "s", "g", "0-1"],
        &["XDEL", "s", "0-1"],
        &[
            "XSETID",
            "s",
            "99999999999999-0",
            "ENTRIESADDED",
            "10",
            "MAXDELETEDID",
            "1-0",
        ],
        &["XGROUP", "CREATE", "t", "g", "$", "MKSTREAM"],
        &["XGROUP", "CREATECONSUMER", "t", "g", "x"],
    ];
    for cmd in script {
        h.run(cmd);
    }
    let cmds = h.propagated();
    let mut replica = Harness::new();
    replica.server.ks.loading = true;
    for c in &cmds {
        if c[0] == "MULTI" || c[0] == "EXEC" {
            continue;
        }
        let args: Vec<&str> = c.iter().map(String::as_str).collect();
        let reply = replica.run(&args);
        assert!(
            !reply.starts_with(b"-"),
            "{c:?}: {}",
            String::from_utf8_lossy(&reply)
        );
    }
    replica.server.ks.loading = false;
    for key in ["s", "t"] {
        let want = h.run(&["XINFO", "STREAM", key, "FULL"]);
        let got = replica.run(&["XINFO", "STREAM", key, "FULL"]);
        // Consumers' seen times differ (they are the replay's clock); everything else matches.
        let clean = |b: &[u8]| {
            let s = String::from_utf8_lossy(b).into_owned();
            s.split("seen-time")
                .next()
                .map(str::to_string)
                .unwrap_or_default()
        };
        assert_eq!(clean(&got), clean(&want), "{key}");
    }
}
