//! Primary/replica replication across real processes: full and partial resync, the live
//! stream, chained replicas, promotion, WAIT, read-only replicas, INFO and ROLE.

mod common;

use std::time::{Duration, Instant};

use common::{digest, err, info_field, q, wait_caught_up, wait_until, TestServer};
use common::REPL_DEBUG as DEBUG;

/// Full syncs start at once (Redis's default waits 5 s for more replicas to share one).
const NO_DELAY: [&str; 2] = ["--repl-diskless-sync-delay", "0"];
use common::REPL_DISK as DISK;

/// Makes `replica` a replica of `master` and waits until it has caught up.
fn replicate(replica: &TestServer, master: &TestServer) {
    let mut r = replica.conn();
    let port = master.port.to_string();
    let _: String = q(&mut r, &["REPLICAOF", "127.0.0.1", &port]);
    wait_caught_up(replica, master);
}

/// A dataset with every type, several databases and expiry times.
fn populate(c: &mut redis::Connection, n: usize) {
    for i in 0..n {
        let i = i.to_string();
        let _: () = q(c, &["SET", &format!("s:{i}"), &i]);
        let _: () = q(c, &["RPUSH", "list", &i]);
        let _: () = q(c, &["HSET", "hash", &format!("f{i}"), &i]);
        let _: () = q(c, &["SADD", "set", &i]);
        let _: () = q(c, &["ZADD", "zset", &i, &format!("m{i}")]);
    }
    let _: () = q(c, &["SET", "volatile", "v", "EX", "1000"]);
    let _: () = q(c, &["SELECT", "3"]);
    let _: () = q(c, &["SET", "in-db-3", "x"]);
    let _: () = q(c, &["SELECT", "0"]);
}

#[test]
fn full_sync_then_live_stream_of_every_type() {
    let master = TestServer::start(&DEBUG);
    let replica = TestServer::start(&DEBUG);
    let (mut m, mut r) = (master.conn(), replica.conn());
    populate(&mut m, 200);
    replicate(&replica, &master);
    assert_eq!(digest(&mut m), digest(&mut r));
    assert_eq!(info_field(&mut m, "stats", "sync_full"), "1");

    // The live stream: every type, relative expiries, floats, MULTI, another database.
    let _: () = q(&mut m, &["SET", "k", "v", "EX", "100"]);
    let _: () = q(&mut m, &["INCRBYFLOAT", "f", "1.5"]);
    let _: () = q(&mut m, &["LPUSH", "list", "head"]);
    let _: () = q(&mut m, &["HDEL", "hash", "f1"]);
    let _: () = q(&mut m, &["SREM", "set", "2"]);
    let _: () = q(&mut m, &["ZINCRBY", "zset", "2.5", "m3"]);
    let _: () = q(&mut m, &["EXPIRE", "s:5", "50"]);
    let _: () = q(&mut m, &["DEL", "s:6"]);
    let _: () = redis::pipe()
        .cmd("MULTI")
        .cmd("SET")
        .arg("t1")
        .arg("1")
        .cmd("INCR")
        .arg("t2")
        .cmd("EXEC")
        .query(&mut m)
        .unwrap();
    let _: () = q(&mut m, &["SELECT", "5"]);
    let _: () = q(&mut m, &["SET", "db5", "yes"]);
    let acked: i64 = q(&mut m, &["WAIT", "1", "5000"]);
    assert_eq!(acked, 1);
    wait_caught_up(&replica, &master);
    assert_eq!(digest(&mut m), digest(&mut r));
    let ttl: i64 = q(&mut r, &["TTL", "k"]);
    assert!((90..=100).contains(&ttl), "ttl {ttl}");
    let f: String = q(&mut r, &["GET", "f"]);
    assert_eq!(f, "1.5");
}

#[test]
fn replica_is_read_only_and_reports_its_role() {
    let master = TestServer::start(&NO_DELAY);
    let replica = TestServer::start(&NO_DELAY);
    replicate(&replica, &master);
    let mut r = replica.conn();
    assert_eq!(
        err(&mut r, &["SET", "a", "b"]),
        "READONLY You can't write against a read only replica."
    );
    assert!(err(&mut r, &["WAIT", "1", "0"]).starts_with("ERR WAIT cannot be used with replica"));
    let role: redis::Value = q(&mut r, &["ROLE"]);
    let offset: i64 = info_field(&mut r, "replication", "master_repl_offset").parse().unwrap();
    let port = master.port as i64;
    assert_eq!(
        role,
        redis::Value::Array(vec![
            redis::Value::BulkString(b"slave".to_vec()),
            redis::Value::BulkString(b"127.0.0.1".to_vec()),
            redis::Value::Int(port),
            redis::Value::BulkString(b"connected".to_vec()),
            redis::Value::Int(offset),
        ])
    );
    let mut m = master.conn();
    assert_eq!(info_field(&mut m, "replication", "connected_slaves"), "1");
    let line = info_field(&mut m, "replication", "slave0");
    let expected = format!("ip=127.0.0.1,port={},state=online,", replica.port);
    assert!(line.starts_with(&expected), "{line}");
    assert_eq!(info_field(&mut r, "replication", "role"), "slave");
    assert_eq!(info_field(&mut r, "replication", "slave_read_only"), "1");
    assert_eq!(
        info_field(&mut r, "replication", "master_replid"),
        info_field(&mut m, "replication", "master_replid")
    );
    // Writable replica: replica-read-only no.
    let _: () = q(&mut r, &["CONFIG", "SET", "replica-read-only", "no"]);
    let _: () = q(&mut r, &["SET", "local", "1"]);
}

#[test]
fn broken_link_resumes_with_a_partial_resync() {
    let master = TestServer::start(&DEBUG);
    let replica = TestServer::start(&DEBUG);
    let (mut m, mut r) = (master.conn(), replica.conn());
    populate(&mut m, 50);
    replicate(&replica, &master);
    // Cut the link from the master's side: the replica reconnects and continues.
    let list: String = q(&mut m, &["CLIENT", "LIST"]);
    let id = list
        .lines()
        .find(|l| l.contains("cmd=psync"))
        .and_then(|l| l.strip_prefix("id="))
        .and_then(|l| l.split(' ').next())
        .expect("replica connection")
        .to_string();
    let _: () = q(&mut m, &["CLIENT", "KILL", "ID", &id]);
    let _: () = q(&mut m, &["SET", "during", "cut"]);
    wait_until("partial resync", || info_field(&mut m, "stats", "sync_partial_ok") == "1");
    wait_caught_up(&replica, &master);
    assert_eq!(info_field(&mut m, "stats", "sync_full"), "1");
    assert_eq!(digest(&mut m), digest(&mut r));
}

#[test]
fn replica_restarted_from_its_snapshot_continues_partially() {
    let master = TestServer::start(&DEBUG);
    let dir = tempfile::tempdir().unwrap();
    let mut replica = TestServer::start_in(dir.path(), &DEBUG);
    let mut m = master.conn();
    populate(&mut m, 50);
    replicate(&replica, &master);
    let _: () = q(&mut m, &["SELECT", "2"]);
    let _: () = q(&mut m, &["SET", "in-2", "a"]);
    wait_caught_up(&replica, &master);
    let _: () = q(&mut replica.conn(), &["SAVE"]);
    replica.kill();
    let _: () = q(&mut m, &["SET", "in-2-later", "b"]);
    let port = master.port.to_string();
    let args = [&DEBUG[..], &["--replicaof", "127.0.0.1", &port]].concat();
    let replica = TestServer::start_in(dir.path(), &args);
    wait_caught_up(&replica, &master);
    assert_eq!(info_field(&mut m, "stats", "sync_partial_ok"), "1");
    assert_eq!(info_field(&mut m, "stats", "sync_full"), "1");
    assert_eq!(digest(&mut m), digest(&mut replica.conn()));
}

#[test]
fn restarted_replica_syncs_again() {
    let master = TestServer::start(&DEBUG);
    let mut replica = TestServer::start(&DEBUG);
    let mut m = master.conn();
    populate(&mut m, 50);
    replicate(&replica, &master);
    replica.kill();
    let _: () = q(&mut m, &["SET", "while", "down"]);
    let port = master.port.to_string();
    let replica = TestServer::start(&[&DEBUG[..], &["--replicaof", "127.0.0.1", &port]].concat());
    wait_caught_up(&replica, &master);
    let mut r = replica.conn();
    assert_eq!(digest(&mut m), digest(&mut r));
    let v: String = q(&mut r, &["GET", "while"]);
    assert_eq!(v, "down");
}

#[test]
fn promotion_keeps_the_old_id_and_chained_replicas_follow() {
    let a = TestServer::start(&DEBUG);
    let b = TestServer::start(&DEBUG);
    let c = TestServer::start(&DEBUG);
    let (mut ca, mut cb, mut cc) = (a.conn(), b.conn(), c.conn());
    populate(&mut ca, 20);
    replicate(&b, &a);
    replicate(&c, &b);
    // Chained: a write on A reaches C through B, unchanged.
    let _: () = q(&mut ca, &["SET", "chained", "1"]);
    wait_caught_up(&b, &a);
    wait_caught_up(&c, &b);
    assert_eq!(digest(&mut ca), digest(&mut cc));
    assert_eq!(
        info_field(&mut ca, "replication", "master_repl_offset"),
        info_field(&mut cc, "replication", "master_repl_offset")
    );
    // Promote B: the old id becomes its second id.
    let old_id = info_field(&mut ca, "replication", "master_replid");
    let offset: i64 = info_field(&mut cb, "replication", "master_repl_offset").parse().unwrap();
    let _: () = q(&mut cb, &["REPLICAOF", "NO", "ONE"]);
    assert_eq!(info_field(&mut cb, "replication", "role"), "master");
    assert_eq!(info_field(&mut cb, "replication", "master_replid2"), old_id);
    assert_eq!(
        info_field(&mut cb, "replication", "second_repl_offset"),
        (offset + 1).to_string()
    );
    let _: () = q(&mut cb, &["SET", "after", "promotion"]);
    // C reconnects to B and continues under B's new id without a full sync.
    wait_until("c follows b", || {
        let v: Option<String> = q(&mut cc, &["GET", "after"]);
        v.is_some()
    });
    assert_eq!(info_field(&mut cb, "stats", "sync_partial_ok"), "1");
    assert_eq!(digest(&mut cb), digest(&mut cc));
}

#[test]
fn wait_times_out_and_min_replicas_refuses_writes() {
    let master = TestServer::start(&NO_DELAY);
    let mut m = master.conn();
    let _: () = q(&mut m, &["SET", "a", "1"]);
    let start = Instant::now();
    let n: i64 = q(&mut m, &["WAIT", "1", "200"]);
    assert_eq!(n, 0);
    assert!(start.elapsed() >= Duration::from_millis(190));
    let n: i64 = q(&mut m, &["WAIT", "0", "0"]);
    assert_eq!(n, 0);
    assert_eq!(err(&mut m, &["WAIT", "1", "-1"]), "ERR timeout is negative");
    assert_eq!(err(&mut m, &["WAIT", "x", "0"]), "ERR value is not an integer or out of range");
    let _: () = q(&mut m, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
    assert_eq!(err(&mut m, &["SET", "a", "2"]), "NOREPLICAS Not enough good replicas to write.");
    let replica = TestServer::start(&NO_DELAY);
    replicate(&replica, &master);
    let _: () = q(&mut m, &["SET", "a", "3"]);
    assert_eq!(q::<i64>(&mut m, &["WAIT", "1", "0"]), 1);
}

#[test]
fn killing_the_master_client_on_the_replica_resumes_partially() {
    let master = TestServer::start(&DEBUG);
    let replica = TestServer::start(&DEBUG);
    let (mut m, mut r) = (master.conn(), replica.conn());
    populate(&mut m, 20);
    replicate(&replica, &master);
    let killed: i64 = q(&mut r, &["CLIENT", "KILL", "TYPE", "master"]);
    assert_eq!(killed, 1);
    let _: () = q(&mut m, &["SET", "after", "kill"]);
    wait_until("partial resync", || info_field(&mut m, "stats", "sync_partial_ok") == "1");
    wait_caught_up(&replica, &master);
    assert_eq!(digest(&mut m), digest(&mut r));
    let killed: i64 = q(&mut m, &["CLIENT", "KILL", "TYPE", "replica"]);
    assert_eq!(killed, 1);
    wait_until("second partial resync", || {
        info_field(&mut m, "stats", "sync_partial_ok") == "2"
    });
}

#[test]
fn restarted_master_keeps_its_history_as_second_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut master = TestServer::start_in(dir.path(), &DEBUG);
    let replica = TestServer::start(&DEBUG);
    let mut m = master.conn();
    populate(&mut m, 30);
    replicate(&replica, &master);
    let old_id = info_field(&mut m, "replication", "master_replid");
    let offset: i64 = info_field(&mut m, "replication", "master_repl_offset").parse().unwrap();
    let _: () = q(&mut m, &["SAVE"]);
    master.kill();
    let master = TestServer::start_in(dir.path(), &DEBUG);
    let mut m = master.conn();
    wait_until("loaded", || info_field(&mut m, "persistence", "loading") == "0");
    assert_eq!(info_field(&mut m, "replication", "master_replid2"), old_id);
    assert_eq!(info_field(&mut m, "replication", "second_repl_offset"), (offset + 1).to_string());
    assert_eq!(info_field(&mut m, "replication", "master_repl_offset"), offset.to_string());
    replicate(&replica, &master);
    assert_eq!(info_field(&mut m, "stats", "sync_partial_ok"), "1");
    assert_eq!(info_field(&mut m, "stats", "sync_full"), "0");
    let _: () = q(&mut m, &["SET", "after", "restart"]);
    wait_caught_up(&replica, &master);
    assert_eq!(digest(&mut m), digest(&mut replica.conn()));
}

#[test]
fn a_replica_that_does_not_read_is_dropped_at_its_output_limit() {
    let master = TestServer::start(&[
        "--repl-diskless-sync-delay",
        "0",
        "--client-output-buffer-limit",
        "replica 1mb 0 0",
    ]);
    let mut m = master.conn();
    let mut stalled = master.raw();
    stalled.send(b"PSYNC ? -1\r\n");
    wait_until("replica attached", || info_field(&mut m, "replication", "connected_slaves") == "1");
    let value = "x".repeat(64 * 1024);
    for i in 0..400 {
        let _: () = q(&mut m, &["SET", &format!("big:{}", i % 8), &value]);
        if info_field(&mut m, "replication", "connected_slaves") == "0" {
            return;
        }
    }
    panic!("the stalled replica was not dropped");
}

#[test]
fn failover_hands_the_master_role_to_a_caught_up_replica() {
    let a = TestServer::start(&DEBUG);
    let b = TestServer::start(&DEBUG);
    let (mut ca, mut cb) = (a.conn(), b.conn());
    assert_eq!(
        err(&mut ca, &["FAILOVER", "TO", "127.0.0.1", &b.port.to_string()]),
        "ERR FAILOVER requires connected replicas."
    );
    populate(&mut ca, 20);
    replicate(&b, &a);
    assert_eq!(
        err(&mut ca, &["FAILOVER", "FORCE", "TIMEOUT", "100"]),
        "ERR FAILOVER with force option requires both a timeout and target HOST and IP."
    );
    assert_eq!(err(&mut ca, &["FAILOVER", "ABORT"]), "ERR No failover in progress.");
    let _: () = q(&mut ca, &["FAILOVER", "TO", "127.0.0.1", &b.port.to_string()]);
    wait_until("failover done", || {
        info_field(&mut ca, "replication", "master_failover_state") == "no-failover"
            && info_field(&mut ca, "replication", "role") == "slave"
    });
    assert_eq!(info_field(&mut cb, "replication", "role"), "master");
    wait_caught_up(&a, &b);
    assert_eq!(info_field(&mut cb, "stats", "sync_partial_ok"), "1");
    assert_eq!(info_field(&mut cb, "stats", "sync_full"), "0");
    let _: () = q(&mut cb, &["SET", "after", "failover"]);
    wait_caught_up(&a, &b);
    assert_eq!(digest(&mut ca), digest(&mut cb));
}

#[test]
fn replicas_arriving_together_share_one_snapshot() {
    // 100 µs per key: the first snapshot takes about 2 s, so the second replica surely asks
    // while it is being written, however loaded the machine is.
    let mut args = DISK.to_vec();
    args.extend(["--rdb-key-save-delay", "100"]);
    let master = TestServer::start(&args);
    let r1 = TestServer::start(&DEBUG);
    let r2 = TestServer::start(&DEBUG);
    let mut m = master.conn();
    let _: () = q(&mut m, &["DEBUG", "POPULATE", "20000"]);
    let port = master.port.to_string();
    let _: () = q(&mut r1.conn(), &["REPLICAOF", "127.0.0.1", &port]);
    // The first replica's snapshot is being written when the second one asks.
    wait_until("first snapshot", || {
        info_field(&mut m, "persistence", "rdb_bgsave_in_progress") == "1"
    });
    let _: () = q(&mut m, &["SET", "between", "syncs"]);
    let _: () = q(&mut r2.conn(), &["REPLICAOF", "127.0.0.1", &port]);
    let _: () = q(&mut m, &["SET", "later", "still"]);
    wait_caught_up(&r1, &master);
    wait_caught_up(&r2, &master);
    assert_eq!(info_field(&mut m, "stats", "sync_full"), "2");
    assert_eq!(info_field(&mut m, "persistence", "rdb_saves"), "1");
    let d = digest(&mut m);
    assert_eq!(d, digest(&mut r1.conn()));
    assert_eq!(d, digest(&mut r2.conn()));
}

#[test]
fn disk_based_full_sync_still_works() {
    let master = TestServer::start(&DISK);
    let replica = TestServer::start(&DEBUG);
    let mut m = master.conn();
    populate(&mut m, 100);
    replicate(&replica, &master);
    assert_eq!(digest(&mut m), digest(&mut replica.conn()));
    assert_eq!(info_field(&mut m, "persistence", "rdb_saves"), "1");
}

#[test]
fn diskless_sync_is_shared_by_the_replicas_within_the_delay() {
    let args = ["--repl-diskless-sync-delay", "2", "--enable-debug-command", "yes"];
    let master = TestServer::start(&args);
    let r1 = TestServer::start(&DEBUG);
    let r2 = TestServer::start(&DEBUG);
    let mut m = master.conn();
    let _: () = q(&mut m, &["DEBUG", "POPULATE", "20000"]);
    let port = master.port.to_string();
    let _: String = q(&mut r1.conn(), &["REPLICAOF", "127.0.0.1", &port]);
    let _: String = q(&mut r2.conn(), &["REPLICAOF", "127.0.0.1", &port]);
    let _: () = q(&mut m, &["SET", "during", "delay"]);
    wait_caught_up(&r1, &master);
    wait_caught_up(&r2, &master);
    let _: () = q(&mut m, &["SET", "after", "sync"]);
    wait_caught_up(&r1, &master);
    wait_caught_up(&r2, &master);
    assert_eq!(info_field(&mut m, "stats", "sync_full"), "2");
    // Disk-less: no snapshot file was written.
    assert_eq!(info_field(&mut m, "persistence", "rdb_saves"), "0");
    let d = digest(&mut m);
    assert_eq!(d, digest(&mut r1.conn()));
    assert_eq!(d, digest(&mut r2.conn()));
    let v: String = q(&mut r2.conn(), &["GET", "during"]);
    assert_eq!(v, "delay");
    assert_eq!(master.log().matches("Starting BGSAVE for SYNC").count(), 1, "one snapshot");
}

/// `repl-diskless-sync-max-replicas`: the sync starts as soon as that many replicas wait,
/// long before the delay, and all of them share it.
#[test]
fn diskless_sync_starts_once_max_replicas_wait_and_they_share_it() {
    let args = [
        "--repl-diskless-sync-delay",
        "30",
        "--repl-diskless-sync-max-replicas",
        "2",
        "--enable-debug-command",
        "yes",
    ];
    let master = TestServer::start(&args);
    let (r1, r2) = (TestServer::start(&DEBUG), TestServer::start(&DEBUG));
    let mut m = master.conn();
    let _: () = q(&mut m, &["DEBUG", "POPULATE", "20000"]);
    let port = master.port.to_string();
    let _: String = q(&mut r1.conn(), &["REPLICAOF", "127.0.0.1", &port]);
    std::thread::sleep(Duration::from_millis(300));
    let _: String = q(&mut r2.conn(), &["REPLICAOF", "127.0.0.1", &port]);
    // wait_caught_up gives up after 20 s, well before the 30 s delay.
    wait_caught_up(&r1, &master);
    wait_caught_up(&r2, &master);
    assert_eq!(master.log().matches("Starting BGSAVE for SYNC").count(), 1, "one snapshot");
    assert_eq!(info_field(&mut m, "stats", "sync_full"), "2");
    let d = digest(&mut m);
    assert_eq!(d, digest(&mut r1.conn()));
    assert_eq!(d, digest(&mut r2.conn()));
}

/// A writable replica (`replica-read-only no`) expires the keys its own clients gave a time to
/// live, in any database, whatever command set it (SET EX, EXPIRE, a script). The master's keys
/// still wait for the master's DEL: expired, they are hidden from reads but stay counted.
#[test]
fn a_writable_replica_expires_its_own_keys_but_not_the_masters() {
    let master = TestServer::start(&DEBUG);
    let replica = TestServer::start(&DEBUG);
    replicate(&replica, &master);
    let (mut m, mut r) = (master.conn(), replica.conn());
    let _: () = q(&mut m, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    let _: () = q(&mut m, &["SET", "from-master", "1", "PX", "10"]);
    wait_caught_up(&replica, &master);
    let _: () = q(&mut r, &["CONFIG", "SET", "replica-read-only", "no"]);
    let _: () = q(&mut r, &["SELECT", "6"]);
    let _: () = q(&mut r, &["SET", "set-ex", "1", "PX", "300"]);
    let _: () = q(&mut r, &["SET", "expire", "1"]);
    let _: i64 = q(&mut r, &["PEXPIRE", "expire", "300"]);
    let _: () = q(&mut r, &["EVAL", "redis.call('set', KEYS[1], '1', 'px', '300')", "1", "script"]);
    let _: () = q(&mut r, &["SET", "long", "1", "EX", "100"]);
    let _: () = q(&mut r, &["SET", "plain", "1"]);
    assert_eq!(q::<i64>(&mut r, &["DBSIZE"]), 5);
    wait_until("the replica's own keys expired", || q::<i64>(&mut r, &["DBSIZE"]) == 2);
    let mut left: Vec<String> = q(&mut r, &["KEYS", "*"]);
    left.sort();
    assert_eq!(left, ["long", "plain"]);
    assert_eq!(info_field(&mut r, "stats", "expired_keys"), "3");
    // The master's key, expired by now: hidden, not deleted.
    let _: () = q(&mut r, &["SELECT", "0"]);
    assert_eq!(q::<i64>(&mut r, &["EXISTS", "from-master"]), 0);
    assert_eq!(q::<i64>(&mut r, &["DBSIZE"]), 1);
    let _: () = q(&mut m, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    wait_until("the master's DEL", || q::<i64>(&mut r, &["DBSIZE"]) == 0);
}

/// A replica loading disk-less with `swapdb` keeps its old dataset while the transfer runs
/// (answering `-LOADING` meanwhile, the master's history being another), gets it back when the
/// link breaks mid-transfer, and has the master's once a transfer completes.
#[test]
fn swapdb_keeps_the_old_dataset_until_the_new_one_is_complete() {
    let master = TestServer::start(&DEBUG);
    let swapdb = ["--enable-debug-command", "yes", "--repl-diskless-load", "swapdb"];
    let replica = TestServer::start(&swapdb);
    let (mut m, mut r) = (master.conn(), replica.conn());
    let _: () = q(&mut m, &["DEBUG", "POPULATE", "200", "master", "1000"]);
    let _: () = q(&mut r, &["DEBUG", "POPULATE", "50", "replica"]);
    let _: () = q(&mut r, &["SET", "mine", "old"]);
    // 20 ms per key: the transfer takes 4 s.
    let _: () = q(&mut m, &["CONFIG", "SET", "rdb-key-save-delay", "20000"]);
    let port = master.port.to_string();
    let _: String = q(&mut r, &["REPLICAOF", "127.0.0.1", &port]);
    wait_until("replica loading", || info_field(&mut r, "persistence", "loading") == "1");
    assert_eq!(err(&mut r, &["GET", "mine"]), "LOADING Redis is loading the dataset in memory");
    let _: () = q(&mut m, &["CONFIG", "SET", "repl-diskless-sync-delay", "5"]);
    let killed: i64 = q(&mut m, &["CLIENT", "KILL", "TYPE", "replica"]);
    assert_eq!(killed, 1);
    wait_until("loading over", || info_field(&mut r, "persistence", "loading") == "0");
    let v: String = q(&mut r, &["GET", "mine"]);
    assert_eq!(v, "old");
    let n: i64 = q(&mut r, &["DBSIZE"]);
    assert_eq!(n, 51);
    let _: () = q(&mut m, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    let _: () = q(&mut m, &["CONFIG", "SET", "repl-diskless-sync-delay", "0"]);
    wait_caught_up(&replica, &master);
    let n: i64 = q(&mut r, &["DBSIZE"]);
    assert_eq!(n, 200);
    assert_eq!(digest(&mut m), digest(&mut r));
}

/// The master side of a cut disk-less transfer: the snapshot stops when its last replica is
/// gone, and the next sync starts a new one.
#[test]
fn diskless_snapshot_stops_when_its_replicas_are_gone() {
    let master = TestServer::start(&DEBUG);
    let replica = TestServer::start(&DEBUG);
    let mut m = master.conn();
    let _: () = q(&mut m, &["DEBUG", "POPULATE", "2000", "k", "1000"]);
    let _: () = q(&mut m, &["CONFIG", "SET", "rdb-key-save-delay", "5000"]);
    let port = master.port.to_string();
    let mut r = replica.conn();
    let _: String = q(&mut r, &["REPLICAOF", "127.0.0.1", &port]);
    wait_until("transfer running", || {
        info_field(&mut m, "replication", "connected_slaves") == "1"
    });
    let _: String = q(&mut r, &["REPLICAOF", "NO", "ONE"]);
    wait_until("replica gone", || info_field(&mut m, "replication", "connected_slaves") == "0");
    let _: () = q(&mut m, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    let _: () = q(&mut m, &["SET", "fresh", "sync"]);
    replicate(&replica, &master);
    assert_eq!(digest(&mut m), digest(&mut r));
}

/// A replica's connection carries no replies: a command from it that has one (here refused,
/// since a replica may not touch the keyspace) gets it disconnected.
#[test]
fn a_replica_sending_a_command_with_a_reply_is_dropped() {
    use std::io::{Read, Write};
    let master = TestServer::start(&DISK);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", master.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"PSYNC ? -1\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.starts_with(b"+FULLRESYNC") || !got.ends_with(b"\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before FULLRESYNC");
        got.extend_from_slice(&buf[..n]);
        if got.starts_with(b"+FULLRESYNC") && got.contains(&b'$') {
            break;
        }
    }
    s.write_all(b"GET foo\r\n").unwrap();
    // The master closes the connection (a read timeout would be an error here).
    let mut rest = Vec::new();
    assert!(s.read_to_end(&mut rest).is_ok());
    let mut m = master.conn();
    wait_until("replica dropped", || info_field(&mut m, "replication", "connected_slaves") == "0");
    let pong: String = q(&mut m, &["PING"]);
    assert_eq!(pong, "PONG");
}

/// While the snapshot of a full sync arrives, INFO shows its progress with Redis's
/// `master_sync_*` fields (a disk-less transfer has no announced size: -1), and they go
/// once the sync is done.
#[test]
fn info_reports_the_progress_of_a_full_sync() {
    let master = TestServer::start(&DEBUG);
    let replica = TestServer::start(&DEBUG);
    let mut m = master.conn();
    let _: () = q(&mut m, &["DEBUG", "POPULATE", "3000"]);
    let _: () = q(&mut m, &["CONFIG", "SET", "rdb-key-save-delay", "1000"]);
    let mut r = replica.conn();
    let _: String = q(&mut r, &["REPLICAOF", "127.0.0.1", &master.port.to_string()]);
    let field = |r: &mut redis::Connection, f: &str| common::info_opt(r, "replication", f);
    wait_until("bytes of the snapshot arrived", || {
        field(&mut r, "master_sync_read_bytes").is_some_and(|v| v != "0")
    });
    assert_eq!(field(&mut r, "master_sync_in_progress").as_deref(), Some("1"));
    assert_eq!(field(&mut r, "master_sync_total_bytes").as_deref(), Some("-1"));
    let read: i64 = field(&mut r, "master_sync_read_bytes").unwrap().parse().unwrap();
    let left: i64 = field(&mut r, "master_sync_left_bytes").unwrap().parse().unwrap();
    assert!(read > 0 && left == -1 - read, "read {read} left {left}");
    assert!(field(&mut r, "master_sync_perc").unwrap().ends_with(".00"));
    assert!(field(&mut r, "master_sync_last_io_seconds_ago").is_some());
    let _: () = q(&mut m, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    wait_caught_up(&replica, &master);
    assert_eq!(field(&mut r, "master_sync_in_progress").as_deref(), Some("0"));
    assert_eq!(field(&mut r, "master_sync_read_bytes"), None);
}
