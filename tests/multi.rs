//! Transactions: MULTI / EXEC / DISCARD / WATCH / UNWATCH against the real binary (replies
//! byte for byte, WATCH invalidation from every source, blocking commands inside MULTI,
//! atomicity, wake-ups after EXEC, CLIENT PAUSE, MONITOR), plus the write stream of a
//! transaction observed in process through the journal.

mod common;

use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{q, RawConn, TestServer};
use ferrodis::config::Config;
use ferrodis::dispatch::execute;
use ferrodis::protocol::{ReplyBuf, Resp};
use ferrodis::server::client::{Client, ClientInfo, ClientShared};
use ferrodis::server::Server;

fn s(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

fn cmd(c: &mut RawConn, args: &[&str]) -> String {
    s(c.cmd(args))
}

/// Runs `args` in one transaction on `c` and returns EXEC's reply.
fn transaction(c: &mut RawConn, cmds: &[&[&str]]) -> String {
    assert_eq!(cmd(c, &["MULTI"]), "+OK\r\n");
    for a in cmds {
        assert_eq!(cmd(c, a), "+QUEUED\r\n", "{a:?}");
    }
    cmd(c, &["EXEC"])
}

#[test]
fn queued_commands_run_in_order_with_errors_in_place() {
    let srv = TestServer::start(&[]);
    let mut c = srv.raw();
    let r = transaction(
        &mut c,
        &[
            &["SET", "a", "x"],
            &["INCR", "a"],
            &["GET", "a"],
            &["LPUSH", "a", "1"],
        ],
    );
    assert_eq!(
        r,
        "*4\r\n+OK\r\n-ERR value is not an integer or out of range\r\n$1\r\nx\r\n\
         -WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
    assert_eq!(transaction(&mut c, &[]), "*0\r\n");
    // Nothing left of the transaction afterwards.
    assert_eq!(cmd(&mut c, &["EXEC"]), "-ERR EXEC without MULTI\r\n");
    assert_eq!(cmd(&mut c, &["DISCARD"]), "-ERR DISCARD without MULTI\r\n");
}

#[test]
fn queue_time_errors_abort_exec() {
    let srv = TestServer::start(&[]);
    let mut c = srv.raw();
    assert_eq!(cmd(&mut c, &["MULTI"]), "+OK\r\n");
    assert_eq!(cmd(&mut c, &["SET", "a", "1"]), "+QUEUED\r\n");
    assert_eq!(
        cmd(&mut c, &["NOPE", "x"]),
        "-ERR unknown command 'NOPE', with args beginning with: 'x' \r\n"
    );
    assert_eq!(
        cmd(&mut c, &["GET"]),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(cmd(&mut c, &["SET", "b", "2"]), "+QUEUED\r\n");
    assert_eq!(
        cmd(&mut c, &["MULTI"]),
        "-ERR MULTI calls can not be nested\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["WATCH", "a"]),
        "-ERR WATCH inside MULTI is not allowed\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["EXEC"]),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(cmd(&mut c, &["EXISTS", "a", "b"]), ":0\r\n");
    // NO_MULTI commands are refused at queue time.
    assert_eq!(cmd(&mut c, &["MULTI"]), "+OK\r\n");
    assert_eq!(
        cmd(&mut c, &["SHUTDOWN"]),
        "-ERR Command not allowed inside a transaction\r\n"
    );
    assert!(cmd(&mut c, &["EXEC"]).starts_with("-EXECABORT"));
    // Nesting errors alone do not doom the transaction.
    assert_eq!(cmd(&mut c, &["MULTI"]), "+OK\r\n");
    assert_eq!(
        cmd(&mut c, &["MULTI"]),
        "-ERR MULTI calls can not be nested\r\n"
    );
    assert_eq!(cmd(&mut c, &["EXEC"]), "*0\r\n");
}

#[test]
fn discard_drops_the_queue_and_the_watches() {
    let srv = TestServer::start(&[]);
    let mut c = srv.raw();
    let mut other = srv.raw();
    assert_eq!(cmd(&mut c, &["WATCH", "k"]), "+OK\r\n");
    assert_eq!(cmd(&mut c, &["MULTI"]), "+OK\r\n");
    assert_eq!(cmd(&mut c, &["SET", "k", "1"]), "+QUEUED\r\n");
    assert_eq!(cmd(&mut c, &["DISCARD"]), "+OK\r\n");
    assert_eq!(cmd(&mut c, &["GET", "k"]), "$-1\r\n");
    // No longer watched: another client's write does not fail the next transaction.
    assert_eq!(cmd(&mut other, &["SET", "k", "2"]), "+OK\r\n");
    assert_eq!(transaction(&mut c, &[&["GET", "k"]]), "*1\r\n$1\r\n2\r\n");
}

#[test]
fn watch_is_invalidated_by_other_clients_and_own_writes() {
    let srv = TestServer::start(&[]);
    let mut a = srv.raw();
    let mut b = srv.raw();
    cmd(&mut a, &["SET", "k", "1"]);
    // Another client's write.
    cmd(&mut a, &["WATCH", "k", "other"]);
    cmd(&mut b, &["INCR", "k"]);
    assert_eq!(transaction(&mut a, &[&["SET", "k", "x"]]), "*-1\r\n");
    assert_eq!(cmd(&mut a, &["GET", "k"]), "$1\r\n2\r\n");
    // Another client's EXEC.
    cmd(&mut a, &["WATCH", "k"]);
    assert_eq!(transaction(&mut b, &[&["INCR", "k"]]), "*1\r\n:3\r\n");
    assert_eq!(transaction(&mut a, &[&["INCR", "k"]]), "*-1\r\n");
    // The client's own write outside MULTI.
    cmd(&mut a, &["WATCH", "k"]);
    cmd(&mut a, &["DEL", "k"]);
    assert_eq!(transaction(&mut a, &[&["PING"]]), "*-1\r\n");
    // Untouched: it runs, and it unwatches.
    cmd(&mut a, &["WATCH", "k"]);
    assert_eq!(transaction(&mut a, &[&["SET", "k", "5"]]), "*1\r\n+OK\r\n");
    cmd(&mut b, &["SET", "k", "6"]);
    assert_eq!(transaction(&mut a, &[&["GET", "k"]]), "*1\r\n$1\r\n6\r\n");
    // UNWATCH forgets a doomed watch too.
    cmd(&mut a, &["WATCH", "k"]);
    cmd(&mut b, &["SET", "k", "7"]);
    assert_eq!(cmd(&mut a, &["UNWATCH"]), "+OK\r\n");
    assert_eq!(transaction(&mut a, &[&["PING"]]), "*1\r\n+PONG\r\n");
    // RESP3 null.
    cmd(&mut a, &["HELLO", "3"]);
    cmd(&mut a, &["WATCH", "k"]);
    cmd(&mut b, &["SET", "k", "8"]);
    assert_eq!(transaction(&mut a, &[&["PING"]]), "_\r\n");
}

#[test]
fn watch_is_invalidated_by_flush_swapdb_and_database_of_the_key() {
    let srv = TestServer::start(&[]);
    let mut a = srv.raw();
    let mut b = srv.raw();
    for flush in ["FLUSHDB", "FLUSHALL"] {
        cmd(&mut a, &["SET", "k", "1"]);
        cmd(&mut a, &["WATCH", "k"]);
        cmd(&mut b, &[flush]);
        assert_eq!(transaction(&mut a, &[&["PING"]]), "*-1\r\n", "{flush}");
        // A watched key that does not exist is not touched by a flush.
        cmd(&mut a, &["WATCH", "k"]);
        cmd(&mut b, &[flush]);
        assert_eq!(
            transaction(&mut a, &[&["PING"]]),
            "*1\r\n+PONG\r\n",
            "{flush}"
        );
    }
    // SWAPDB touches keys that exist on either side.
    cmd(&mut b, &["SELECT", "1"]);
    cmd(&mut b, &["SET", "k", "in1"]);
    cmd(&mut a, &["WATCH", "k"]);
    cmd(&mut b, &["SWAPDB", "0", "1"]);
    assert_eq!(transaction(&mut a, &[&["GET", "k"]]), "*-1\r\n");
    assert_eq!(cmd(&mut a, &["GET", "k"]), "$3\r\nin1\r\n");
    // The key is watched in the database it was watched in.
    cmd(&mut a, &["WATCH", "k"]);
    cmd(&mut b, &["SET", "k", "db1"]);
    assert_eq!(transaction(&mut a, &[&["PING"]]), "*1\r\n+PONG\r\n");
}

#[test]
fn watch_is_invalidated_by_expiry() {
    let srv = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut a = srv.raw();
    cmd(&mut a, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    // Expired since WATCH, but nothing deleted it yet: Redis 7.0 fails EXEC anyway.
    cmd(&mut a, &["SET", "k", "1", "PX", "30"]);
    cmd(&mut a, &["WATCH", "k"]);
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(transaction(&mut a, &[&["INCR", "k"]]), "*-1\r\n");
    // Already expired when watched: its deletion is no change.
    cmd(&mut a, &["SET", "k", "1", "PX", "10"]);
    std::thread::sleep(Duration::from_millis(30));
    cmd(&mut a, &["WATCH", "k"]);
    assert_eq!(cmd(&mut a, &["EXISTS", "k"]), ":0\r\n");
    assert_eq!(transaction(&mut a, &[&["PING"]]), "*1\r\n+PONG\r\n");
    // Deleted by the active expire cycle.
    cmd(&mut a, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    cmd(&mut a, &["SET", "k", "1", "PX", "20"]);
    cmd(&mut a, &["WATCH", "k"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while cmd(&mut a, &["DBSIZE"]) != ":0\r\n" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(transaction(&mut a, &[&["PING"]]), "*-1\r\n");
}

#[test]
fn blocking_commands_answer_at_once_inside_multi() {
    let srv = TestServer::start(&[]);
    let mut c = srv.raw();
    let r = transaction(
        &mut c,
        &[
            &["BLPOP", "l", "0"],
            &["BRPOP", "l", "0"],
            &["BLMOVE", "l", "d", "LEFT", "LEFT", "0"],
            &["BRPOPLPUSH", "l", "d", "0"],
            &["BLMPOP", "0", "1", "l", "LEFT"],
            &["BZPOPMIN", "z", "0"],
            &["BZPOPMAX", "z", "0"],
            &["BZMPOP", "0", "1", "z", "MIN"],
        ],
    );
    assert_eq!(
        r,
        "*8\r\n*-1\r\n*-1\r\n$-1\r\n$-1\r\n*-1\r\n*-1\r\n*-1\r\n*-1\r\n"
    );
    cmd(&mut c, &["RPUSH", "l", "a"]);
    assert_eq!(
        transaction(&mut c, &[&["BLPOP", "l", "0"], &["BLPOP", "l", "0"]]),
        "*2\r\n*2\r\n$1\r\nl\r\n$1\r\na\r\n*-1\r\n"
    );
}

#[test]
fn pushes_inside_exec_wake_blocked_clients_after_exec() {
    let srv = TestServer::start(&[]);
    let mut waiter = srv.raw();
    let mut c = srv.raw();
    waiter.send(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nl\r\n$1\r\n0\r\n");
    std::thread::sleep(Duration::from_millis(100));
    // Pushed then deleted inside one EXEC: the waiter never sees the list.
    assert_eq!(
        transaction(&mut c, &[&["RPUSH", "l", "a"], &["DEL", "l"]]),
        "*2\r\n:1\r\n:1\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["CLIENT", "LIST"])
            .matches("cmd=blpop")
            .count(),
        1
    );
    // Two pushes: the waiter is served once EXEC completes, from the final list.
    assert_eq!(
        transaction(&mut c, &[&["RPUSH", "l", "x"], &["LPUSH", "l", "y"]]),
        "*2\r\n:1\r\n:2\r\n"
    );
    assert_eq!(s(waiter.read_reply()), "*2\r\n$1\r\nl\r\n$1\r\ny\r\n");
    assert_eq!(
        cmd(&mut c, &["LRANGE", "l", "0", "-1"]),
        "*1\r\n$1\r\nx\r\n"
    );
}

#[test]
fn blocked_client_ignores_a_key_that_exec_left_with_another_type() {
    let srv = TestServer::start(&[]);
    let mut waiter = srv.raw();
    let mut c = srv.raw();
    waiter.send(b"*3\r\n$5\r\nBLPOP\r\n$4\r\nlist\r\n$1\r\n0\r\n");
    std::thread::sleep(Duration::from_millis(100));
    let r = transaction(
        &mut c,
        &[
            &["LPUSH", "list", "a"],
            &["DEL", "list"],
            &["SET", "list", "foo"],
        ],
    );
    assert_eq!(r, "*3\r\n:1\r\n:1\r\n+OK\r\n");
    cmd(&mut c, &["DEL", "list"]);
    cmd(&mut c, &["LPUSH", "list", "b"]);
    assert_eq!(s(waiter.read_reply()), "*2\r\n$4\r\nlist\r\n$1\r\nb\r\n");
}

#[test]
fn exec_is_atomic_for_other_clients() {
    let srv = TestServer::start(&[]);
    let mut a = srv.raw();
    let mut reader = srv.conn();
    let n = 2000;
    let mut req = Vec::new();
    req.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n");
    for _ in 0..n {
        req.extend_from_slice(b"*2\r\n$4\r\nINCR\r\n$1\r\nx\r\n");
    }
    req.extend_from_slice(b"*1\r\n$4\r\nEXEC\r\n");
    let t = std::thread::spawn(move || {
        a.send(&req);
        let _ = a.read_reply();
        for _ in 0..n {
            assert_eq!(a.read_reply(), b"+QUEUED\r\n");
        }
        a.read_reply()
    });
    let mut seen = Vec::new();
    for _ in 0..200 {
        let v: Option<i64> = q(&mut reader, &["GET", "x"]);
        seen.push(v.unwrap_or(0));
    }
    let exec = t.join().unwrap();
    assert!(exec.starts_with(format!("*{n}\r\n:1\r\n").as_bytes()));
    assert!(
        seen.iter().all(|&v| v == 0 || v == n),
        "partial transaction seen: {seen:?}"
    );
    let v: i64 = q(&mut reader, &["GET", "x"]);
    assert_eq!(v, n);
}

#[test]
fn client_list_shows_the_transaction() {
    let srv = TestServer::start(&[]);
    let mut c = srv.raw();
    let mut other = srv.conn();
    let id: i64 = {
        let r = cmd(&mut c, &["CLIENT", "ID"]);
        r[1..r.len() - 2].parse().unwrap()
    };
    let line = |other: &mut redis::Connection| -> String {
        let all: String = q(other, &["CLIENT", "LIST"]);
        all.lines()
            .find(|l| l.starts_with(&format!("id={id} ")))
            .unwrap()
            .to_string()
    };
    assert!(line(&mut other).contains(" flags=N "));
    assert!(line(&mut other).contains(" multi=-1 "));
    cmd(&mut c, &["MULTI"]);
    cmd(&mut c, &["SET", "a", "1"]);
    cmd(&mut c, &["SET", "b", "2"]);
    let l = line(&mut other);
    assert!(l.contains(" flags=x ") && l.contains(" multi=2 "), "{l}");
    cmd(&mut c, &["EXEC"]);
    let l = line(&mut other);
    assert!(l.contains(" flags=N ") && l.contains(" multi=-1 "), "{l}");
}

#[test]
fn client_pause_write_holds_exec_with_writes_only() {
    let srv = TestServer::start(&[]);
    let mut c = srv.raw();
    let mut admin = srv.raw();
    // A read-only transaction runs during a WRITE pause.
    cmd(&mut c, &["MULTI"]);
    cmd(&mut c, &["GET", "k"]);
    assert_eq!(
        cmd(&mut admin, &["CLIENT", "PAUSE", "100000", "WRITE"]),
        "+OK\r\n"
    );
    assert_eq!(cmd(&mut c, &["EXEC"]), "*1\r\n$-1\r\n");
    cmd(&mut admin, &["CLIENT", "UNPAUSE"]);
    // One with a write waits for the pause to end.
    cmd(&mut c, &["MULTI"]);
    cmd(&mut c, &["SET", "k", "v"]);
    cmd(&mut admin, &["CLIENT", "PAUSE", "100000", "WRITE"]);
    c.send(b"*1\r\n$4\r\nEXEC\r\n");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(cmd(&mut admin, &["GET", "k"]), "$-1\r\n");
    cmd(&mut admin, &["CLIENT", "UNPAUSE"]);
    assert_eq!(s(c.read_reply()), "*1\r\n+OK\r\n");
    assert_eq!(cmd(&mut admin, &["GET", "k"]), "$1\r\nv\r\n");
}

#[test]
fn monitor_and_commandstats_see_the_queued_commands_at_exec() {
    let srv = TestServer::start(&[]);
    let mut mon = srv.raw();
    let mut c = srv.raw();
    assert_eq!(cmd(&mut mon, &["MONITOR"]), "+OK\r\n");
    cmd(&mut c, &["CONFIG", "RESETSTAT"]);
    cmd(&mut c, &["MULTI"]);
    cmd(&mut c, &["SET", "foo", "bar"]);
    let stats = cmd(&mut c, &["EXEC"]);
    assert_eq!(stats, "*1\r\n+OK\r\n");
    let lines = s(mon.read_some(Duration::from_millis(300)));
    let cmds: Vec<&str> = lines.lines().filter_map(|l| l.split("] ").nth(1)).collect();
    assert_eq!(
        cmds,
        vec!["\"MULTI\"", "\"SET\" \"foo\" \"bar\"", "\"EXEC\""]
    );
    let info = cmd(&mut c, &["INFO", "COMMANDSTATS"]);
    assert!(info.contains("cmdstat_set:calls=1,"), "{info}");
    assert!(info.contains("cmdstat_exec:calls=1,"), "{info}");
    assert!(info.contains("cmdstat_multi:calls=1,"), "{info}");
}

#[test]
fn exec_is_refused_when_out_of_memory_only_with_denyoom_commands() {
    let srv = TestServer::start(&[]);
    let mut c = srv.raw();
    let mut admin = srv.raw();
    cmd(&mut c, &["SET", "x", "value"]);
    cmd(&mut c, &["MULTI"]);
    cmd(&mut c, &["GET", "x"]);
    cmd(&mut admin, &["CONFIG", "SET", "maxmemory", "1"]);
    assert_eq!(cmd(&mut c, &["EXEC"]), "*1\r\n$5\r\nvalue\r\n");
    cmd(&mut admin, &["CONFIG", "SET", "maxmemory", "0"]);
    cmd(&mut c, &["MULTI"]);
    cmd(&mut c, &["SET", "x", "1"]);
    cmd(&mut admin, &["CONFIG", "SET", "maxmemory", "1"]);
    assert_eq!(
        cmd(&mut c, &["EXEC"]),
        "-EXECABORT Transaction discarded because of: OOM command not allowed when used \
         memory > 'maxmemory'.\r\n"
    );
    // Queueing is refused too, but DISCARD works.
    cmd(&mut c, &["MULTI"]);
    assert!(cmd(&mut c, &["GET", "x"]).starts_with("-OOM "));
    assert_eq!(cmd(&mut c, &["DISCARD"]), "+OK\r\n");
    cmd(&mut admin, &["CONFIG", "SET", "maxmemory", "0"]);
    assert_eq!(cmd(&mut c, &["GET", "x"]), "$5\r\nvalue\r\n");
}

// ---------------------------------------------------------------------------------------------
// The write stream, in process.

fn journal_of(cmds: &[&[&str]]) -> String {
    let mut server = Server::new(Config::default());
    let addr = "127.0.0.1:1".parse().unwrap();
    let shared = Rc::new(ClientShared::new(ClientInfo::new(1, addr, addr, -1)));
    let mut client = Client::new(1, shared, true);
    let mut out = ReplyBuf::new(Resp::V2);
    server.state.journal.attach();
    for c in cmds {
        let argv: Vec<&[u8]> = c.iter().map(|a| a.as_bytes()).collect();
        execute(&mut server, &mut client, &mut out, &argv);
    }
    let bytes = server.state.journal.take_pending();
    // One command per line, arguments separated by spaces.
    let mut p = ferrodis::protocol::RequestParser::default();
    let mut lines = Vec::new();
    let mut rest: &[u8] = &bytes;
    while p.parse(rest, false).unwrap() {
        let args: Vec<String> = p
            .ranges()
            .iter()
            .map(|r| String::from_utf8_lossy(&rest[r.clone()]).into())
            .collect();
        lines.push(args.join(" "));
        let used = p.consumed();
        rest = &rest[used..];
        p.discard_front(used);
    }
    lines.join("\n")
}

#[test]
fn transactions_are_journalled_atomically() {
    assert_eq!(
        journal_of(&[
            &["MULTI"],
            &["SET", "a", "1"],
            &["GET", "a"],
            &["INCR", "a"],
            &["EXEC"]
        ]),
        "SELECT 0\nMULTI\nSET a 1\nINCR a\nEXEC"
    );
    // A single write is propagated bare; a read-only or empty transaction not at all.
    assert_eq!(
        journal_of(&[&["MULTI"], &["SET", "a", "1"], &["GET", "a"], &["EXEC"]]),
        "SELECT 0\nSET a 1"
    );
    assert_eq!(journal_of(&[&["MULTI"], &["GET", "a"], &["EXEC"]]), "");
    assert_eq!(journal_of(&[&["MULTI"], &["EXEC"]]), "");
    // A write with no effect propagates nothing; SELECT inside moves the stream's database.
    assert_eq!(
        journal_of(&[
            &["MULTI"],
            &["DEL", "nothing"],
            &["SET", "a", "1"],
            &["SELECT", "3"],
            &["SET", "b", "2"],
            &["EXEC"]
        ]),
        "SELECT 0\nMULTI\nSET a 1\nSELECT 3\nSET b 2\nEXEC"
    );
    // An aborted or discarded transaction writes nothing.
    assert_eq!(
        journal_of(&[&["MULTI"], &["SET", "a", "1"], &["GET"], &["EXEC"]]),
        ""
    );
    assert_eq!(
        journal_of(&[&["MULTI"], &["SET", "a", "1"], &["DISCARD"]]),
        ""
    );
}

#[test]
fn exec_rechecks_replication_refusals_changed_since_queueing() {
    let srv = TestServer::start(&[]);
    let mut c = srv.raw();
    let mut admin = srv.raw();
    cmd(&mut c, &["SET", "xx", "1"]);
    cmd(&mut c, &["MULTI"]);
    cmd(&mut c, &["INCR", "xx"]);
    cmd(&mut admin, &["CONFIG", "SET", "min-replicas-to-write", "2"]);
    assert_eq!(
        cmd(&mut c, &["EXEC"]),
        "-EXECABORT Transaction discarded because of: NOREPLICAS Not enough good replicas to \
         write.\r\n"
    );
    cmd(&mut admin, &["CONFIG", "SET", "min-replicas-to-write", "0"]);
    assert_eq!(cmd(&mut c, &["GET", "xx"]), "$1\r\n1\r\n");
    // A replica that became stale after PING was queued refuses the EXEC; queued while stale,
    // GET dooms the transaction itself.
    cmd(&mut c, &["CONFIG", "SET", "replica-serve-stale-data", "no"]);
    cmd(&mut c, &["MULTI"]);
    cmd(&mut c, &["PING"]);
    cmd(&mut admin, &["REPLICAOF", "localhost", "0"]);
    assert_eq!(
        cmd(&mut c, &["EXEC"]),
        "-EXECABORT Transaction discarded because of: MASTERDOWN Link with MASTER is down and \
         replica-serve-stale-data is set to 'no'.\r\n"
    );
    cmd(&mut c, &["MULTI"]);
    assert!(cmd(&mut c, &["GET", "xx"]).starts_with("-MASTERDOWN "));
    cmd(&mut admin, &["REPLICAOF", "NO", "ONE"]);
    assert_eq!(
        cmd(&mut c, &["EXEC"]),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    cmd(&mut c, &["MULTI"]);
    cmd(&mut c, &["GET", "xx"]);
    assert_eq!(cmd(&mut c, &["EXEC"]), "*1\r\n$1\r\n1\r\n");
}

/// Attaches to the replication stream the way an old replica does (`SYNC`) and skips the
/// snapshot payload.
fn attach_sync(srv: &TestServer) -> RawConn {
    let mut r = srv.raw();
    r.send(b"SYNC\r\n");
    let mut line = Vec::new();
    while !line.ends_with(b"\r\n") {
        let b = r.read_exact_n(1)[0];
        // Bare newlines keep the link alive while the snapshot is prepared.
        if !(line.is_empty() && b == b'\n') {
            line.push(b);
        }
    }
    let len: usize = std::str::from_utf8(&line[1..line.len() - 2]).unwrap().parse().unwrap();
    assert_eq!(line[0], b'$');
    r.read_exact_n(len);
    r
}

#[test]
fn publish_goes_to_the_replicas_and_joins_the_transaction() {
    let srv = TestServer::start(&["--repl-diskless-sync-delay", "0"]);
    let mut c = srv.raw();
    cmd(&mut c, &["CONFIG", "SET", "repl-ping-replica-period", "3600"]);
    let mut r = attach_sync(&srv);
    cmd(&mut c, &["PUBLISH", "ch", "m1"]);
    transaction(&mut c, &[&["SET", "a", "1"], &["PUBLISH", "ch", "m2"]]);
    transaction(&mut c, &[&["PUBLISH", "ch", "m3"]]);
    cmd(&mut c, &["SELECT", "2"]);
    cmd(&mut c, &["SPUBLISH", "ch", "m4"]);
    let expected = "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$2\r\nm1\r\n\
        *1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n\
        *3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$2\r\nm2\r\n*1\r\n$4\r\nEXEC\r\n\
        *3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$2\r\nm3\r\n\
        *2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n*3\r\n$8\r\nSPUBLISH\r\n$2\r\nch\r\n$2\r\nm4\r\n";
    assert_eq!(s(r.read_exact_n(expected.len())), expected);
}

#[test]
fn publish_never_reaches_the_append_only_log() {
    assert_eq!(journal_of(&[&["PUBLISH", "ch", "m"]]), "");
    // Without replicas it does not count in the transaction either: one write, unwrapped.
    assert_eq!(
        journal_of(&[
            &["MULTI"],
            &["SET", "a", "1"],
            &["PUBLISH", "ch", "m"],
            &["EXEC"]
        ]),
        "SELECT 0\nSET a 1"
    );
}

#[test]
fn scripts_pick_the_readers_of_their_writes_with_set_repl() {
    let srv = TestServer::start(&["--repl-diskless-sync-delay", "0"]);
    let mut c = srv.raw();
    cmd(&mut c, &["CONFIG", "SET", "repl-ping-replica-period", "3600"]);
    let mut r = attach_sync(&srv);
    let script = "redis.call('set','a','1'); redis.set_repl(redis.REPL_NONE); \
        redis.call('set','b','2'); redis.set_repl(redis.REPL_AOF); redis.call('set','c','3'); \
        redis.call('publish','ch','m'); redis.set_repl(redis.REPL_ALL); redis.call('set','d','4')";
    assert_eq!(cmd(&mut c, &["EVAL", script, "0"]), "$-1\r\n");
    // Without a log, a write for the log alone does not count: no wrapping around one write.
    let script = "redis.set_repl(redis.REPL_AOF); redis.call('set','e','5'); \
        redis.set_repl(redis.REPL_REPLICA); redis.call('select','1'); redis.call('set','f','6')";
    assert_eq!(cmd(&mut c, &["EVAL", script, "0"]), "$-1\r\n");
    let expected = "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*1\r\n$5\r\nMULTI\r\n\
        *3\r\n$3\r\nset\r\n$1\r\na\r\n$1\r\n1\r\n*3\r\n$3\r\nset\r\n$1\r\nd\r\n$1\r\n4\r\n\
        *1\r\n$4\r\nEXEC\r\n\
        *2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n*3\r\n$3\r\nset\r\n$1\r\nf\r\n$1\r\n6\r\n";
    assert_eq!(s(r.read_exact_n(expected.len())), expected);
    // The master has every write.
    assert_eq!(cmd(&mut c, &["MGET", "a", "b", "c", "d", "e"]).matches('$').count(), 5);
}

#[test]
fn lazy_expiries_join_the_unit_of_the_command_that_found_them() {
    let srv = TestServer::start(&["--repl-diskless-sync-delay", "0", "--enable-debug-command", "yes"]);
    let mut c = srv.raw();
    cmd(&mut c, &["CONFIG", "SET", "repl-ping-replica-period", "3600"]);
    cmd(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    for k in ["k", "j", "m", "s"] {
        cmd(&mut c, &["SET", k, "1", "PX", "1"]);
    }
    std::thread::sleep(Duration::from_millis(20));
    let mut r = attach_sync(&srv);
    // Alone, the deletion is bare; with the write that found it, both are wrapped, in order,
    // also inside a transaction and from a script that replicates nothing of its own.
    assert_eq!(cmd(&mut c, &["GET", "s"]), "$-1\r\n");
    assert_eq!(cmd(&mut c, &["INCR", "k"]), ":1\r\n");
    transaction(&mut c, &[&["GET", "j"], &["SET", "x", "1"]]);
    let script = "redis.set_repl(redis.REPL_NONE); redis.call('get','m'); redis.call('set','y','1')";
    assert_eq!(cmd(&mut c, &["EVAL", script, "0"]), "$-1\r\n");
    let del = |k: &str| format!("*2\r\n$3\r\nDEL\r\n$1\r\n{k}\r\n");
    let (multi, exec) = ("*1\r\n$5\r\nMULTI\r\n", "*1\r\n$4\r\nEXEC\r\n");
    let expected = format!(
        "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n{}{multi}{}*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n{exec}\
         {multi}{}*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n1\r\n{exec}{}",
        del("s"),
        del("k"),
        del("j"),
        del("m"),
    );
    assert_eq!(s(r.read_exact_n(expected.len())), expected);
    // A command that may touch any key sends each deletion on its own.
    for k in ["p", "q"] {
        cmd(&mut c, &["SET", k, "1", "PX", "1"]);
    }
    std::thread::sleep(Duration::from_millis(20));
    let set_len = "*5\r\n$3\r\nSET\r\n$1\r\np\r\n$1\r\n1\r\n$4\r\nPXAT\r\n$13\r\n".len() + 15;
    let sets = s(r.read_exact_n(2 * set_len));
    assert!(sets.starts_with("*5\r\n$3\r\nSET\r\n$1\r\np\r\n"), "{sets}");
    cmd(&mut c, &["SCAN", "0"]);
    let got = s(r.read_exact_n(2 * del("p").len()));
    assert!(got == del("p") + &del("q") || got == del("q") + &del("p"), "{got}");
}

#[test]
fn publish_to_replicas_does_not_hold_replies_for_the_log() {
    let srv = TestServer::start(&["--appendonly", "yes", "--repl-diskless-sync-delay", "0"]);
    let mut c = srv.raw();
    cmd(&mut c, &["SET", "x", "1"]);
    let _r = attach_sync(&srv);
    // The log never gets the PUBLISH, so nothing it must write is outstanding.
    assert_eq!(cmd(&mut c, &["PUBLISH", "ch", "m"]), ":0\r\n");
    assert_eq!(cmd(&mut c, &["WAITAOF", "1", "0", "0"]), "*2\r\n:1\r\n:0\r\n");
    assert_eq!(cmd(&mut c, &["GET", "x"]), "$1\r\n1\r\n");
}
