//! Replication under real faults, across real processes on loopback: a TCP proxy between
//! replica and master stalls or cuts the link on command, processes are SIGKILLed and
//! restarted under write load, the master restarts, a replica is promoted; and partial
//! resynchronization served from the master's append-only log (beyond Redis). Every test ends
//! with equal `DEBUG DIGEST`s and checks which kind of sync happened (INFO stats).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{digest, info_field, q, wait_caught_up, wait_until_for, TestServer};
use common::REPL_DEBUG as DEBUG;

/// [`DEBUG`] with a backlog that holds everything a test's [`Load`] writes while a replica is
/// away: those tests are about resuming across a fault, and a fast machine fills the default
/// 1mb before a replica's reconnection a second later (a full sync is then correct).
const ROOMY: [&str; 6] = [
    "--repl-diskless-sync-delay",
    "0",
    "--enable-debug-command",
    "yes",
    "--repl-backlog-size",
    "64mb",
];

/// A TCP proxy on loopback to `upstream` that can stall the traffic, cut the connections,
/// refuse new ones, or cut a connection after a number of bytes from upstream.
struct Proxy {
    port: u16,
    st: Arc<ProxyState>,
}

struct ProxyState {
    upstream: AtomicU16,
    /// New connections are closed at once.
    down: AtomicBool,
    /// No byte is forwarded (either way) while set.
    stalled: AtomicBool,
    /// Cut a connection once it has carried this many bytes from upstream (0 = never).
    cut_after: AtomicU64,
    conns: Mutex<Vec<TcpStream>>,
    accepted: AtomicU64,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let st = Arc::new(ProxyState {
            upstream: AtomicU16::new(upstream),
            down: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            cut_after: AtomicU64::new(0),
            conns: Mutex::new(Vec::new()),
            accepted: AtomicU64::new(0),
        });
        let st2 = st.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if st2.down.load(SeqCst) {
                    drop(client);
                    continue;
                }
                let up = st2.upstream.load(SeqCst);
                let Ok(server) = TcpStream::connect(("127.0.0.1", up)) else { continue };
                st2.accepted.fetch_add(1, SeqCst);
                {
                    let mut conns = st2.conns.lock().unwrap();
                    conns.push(client.try_clone().unwrap());
                    conns.push(server.try_clone().unwrap());
                }
                pump(&st2, client.try_clone().unwrap(), server.try_clone().unwrap(), false);
                pump(&st2, server, client, true);
            }
        });
        Proxy { port, st }
    }

    /// Closes every connection through the proxy.
    fn cut(&self) {
        for c in self.st.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// Cuts the link and refuses new connections (`true`), or accepts them again.
    fn set_down(&self, down: bool) {
        self.st.down.store(down, SeqCst);
        if down {
            self.cut();
        }
    }

    fn stall(&self, on: bool) {
        self.st.stalled.store(on, SeqCst);
    }
}

/// Forwards `from` to `to` until either closes; `downstream` is the upstream-to-client way.
fn pump(st: &Arc<ProxyState>, mut from: TcpStream, mut to: TcpStream, downstream: bool) {
    let st = st.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        let mut carried = 0u64;
        loop {
            while st.stalled.load(SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            while st.stalled.load(SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
            carried += n as u64;
            let limit = st.cut_after.load(SeqCst);
            if downstream && limit > 0 && carried >= limit {
                st.cut_after.store(0, SeqCst);
                break;
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}

fn wait_until(what: &str, f: impl FnMut() -> bool) {
    wait_until_for(20, what, f)
}

fn stat(c: &mut redis::Connection, field: &str) -> u64 {
    info_field(c, "stats", field).parse().unwrap()
}

/// Points `replica` at `port` (the master, or a proxy in front of it).
fn replica_of(replica: &TestServer, port: u16) {
    let _: String = q(&mut replica.conn(), &["REPLICAOF", "127.0.0.1", &port.to_string()]);
}

fn assert_same_data(a: &TestServer, b: &TestServer) {
    assert_eq!(digest(&mut a.conn()), digest(&mut b.conn()), "digests differ");
}

/// Writes `n` keys of every type under prefix `p` (a few commands per key).
fn write_batch(c: &mut redis::Connection, p: &str, n: usize) {
    for i in 0..n {
        let k = format!("{p}:{i}");
        let _: () = q(c, &["SET", &k, &"v".repeat(64)]);
        let _: () = q(c, &["HSET", &format!("{p}:h"), &k, &i.to_string()]);
        let _: () = q(c, &["INCR", &format!("{p}:n")]);
        if i % 10 == 0 {
            let _: () = q(c, &["RPUSH", &format!("{p}:l"), &k]);
            let _: () = q(c, &["PEXPIRE", &k, "100000000"]);
        }
    }
}

/// A thread writing to `port` until stopped; returns the number of writes made.
struct Load {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<u64>>,
}

impl Load {
    fn start(port: u16, prefix: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let prefix = prefix.to_string();
        let handle = std::thread::spawn(move || {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
            let mut c = client.get_connection().unwrap();
            let mut n = 0u64;
            while !s.load(SeqCst) {
                let k = format!("{prefix}:{}", n % 5000);
                let _: () = q(&mut c, &["SET", &k, &n.to_string()]);
                let _: () = q(&mut c, &["INCRBY", &format!("{prefix}:total"), "1"]);
                n += 1;
            }
            n
        });
        Load { stop, handle: Some(handle) }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, SeqCst);
        self.handle.take().unwrap().join().unwrap()
    }
}

/// Beyond Redis: the backlog (16 kB) is long gone when the replica returns, but the master's
/// append-only log still holds the stream, so it continues with `+CONTINUE` from the log
/// (`sync_partial_aof`), not a full sync. A second replica stays attached meanwhile, so PINGs
/// and `REPLCONF GETACK`s (WAIT) enter the stream without entering the log: the stream notes
/// put them back at the right offsets, or the offsets (and the digests) would not match.
#[test]
fn aof_serves_a_partial_resync_the_backlog_no_longer_holds() {
    let master = TestServer::start(&[
        &DEBUG[..],
        &["--appendonly", "yes", "--repl-backlog-size", "16384", "--repl-ping-replica-period", "1"],
    ]
    .concat());
    let (far, near) = (TestServer::start(&DEBUG), TestServer::start(&DEBUG));
    let proxy = Proxy::start(master.port);
    let mut m = master.conn();
    write_batch(&mut m, "before", 200);
    replica_of(&far, proxy.port);
    replica_of(&near, master.port);
    wait_caught_up(&far, &master);
    wait_caught_up(&near, &master);
    assert_eq!(stat(&mut m, "sync_full"), 2);
    let far_offset: u64 = info_field(&mut far.conn(), "replication", "master_repl_offset")
        .parse()
        .unwrap();

    proxy.set_down(true);
    for round in 0..6 {
        write_batch(&mut m, &format!("gone{round}"), 300);
        // Blocks (the far replica is away): a GETACK enters the stream.
        let _: i64 = q(&mut m, &["WAIT", "2", "50"]);
    }
    std::thread::sleep(Duration::from_millis(1200)); // a PING or two in the stream
    let first: u64 = info_field(&mut m, "replication", "repl_backlog_first_byte_offset")
        .parse()
        .unwrap();
    assert!(first > far_offset + 100_000, "the backlog must have moved past the replica");

    proxy.set_down(false);
    wait_caught_up(&far, &master);
    assert_eq!(stat(&mut m, "sync_full"), 2, "no full sync");
    assert_eq!(stat(&mut m, "sync_partial_ok"), 1);
    assert_eq!(stat(&mut m, "sync_partial_aof"), 1);
    assert_same_data(&master, &far);
    assert_same_data(&master, &near);
    // The live stream continues after the catch-up.
    write_batch(&mut m, "after", 50);
    wait_caught_up(&far, &master);
    assert_same_data(&master, &far);
}

/// After an AOF rewrite the files holding the replica's offset are deleted: the master falls
/// back to a full sync (once: no loop of failed partial attempts).
#[test]
fn aof_resync_falls_back_to_a_full_sync_after_a_rewrite() {
    let master = TestServer::start(&[
        &DEBUG[..],
        &["--appendonly", "yes", "--repl-backlog-size", "16384"],
    ]
    .concat());
    let replica = TestServer::start(&DEBUG);
    let proxy = Proxy::start(master.port);
    let mut m = master.conn();
    write_batch(&mut m, "a", 100);
    replica_of(&replica, proxy.port);
    wait_caught_up(&replica, &master);
    proxy.set_down(true);
    write_batch(&mut m, "b", 500);
    let _: String = q(&mut m, &["BGREWRITEAOF"]);
    wait_until("rewrite done", || {
        info_field(&mut m, "persistence", "aof_rewrite_in_progress") == "0"
            && info_field(&mut m, "persistence", "aof_rewrite_scheduled") == "0"
    });
    write_batch(&mut m, "c", 50);
    proxy.set_down(false);
    wait_caught_up(&replica, &master);
    assert_eq!(stat(&mut m, "sync_full"), 2);
    assert_eq!(stat(&mut m, "sync_partial_aof"), 0);
    assert_same_data(&master, &replica);
}

/// A replica SIGKILLed while writes go on, and restarted from its snapshot under the same
/// load, continues with a partial resync: `sync_partial_ok` grows, `sync_full` does not.
#[test]
fn replica_killed_and_restarted_under_load_resumes_partially() {
    let master = TestServer::start(&ROOMY);
    let dir = tempfile::tempdir().unwrap();
    let mut replica = TestServer::start_in(dir.path(), &ROOMY);
    let mut m = master.conn();
    write_batch(&mut m, "base", 300);
    replica_of(&replica, master.port);
    wait_caught_up(&replica, &master);
    let load = Load::start(master.port, "load");
    std::thread::sleep(Duration::from_millis(300));
    replica.kill();
    std::thread::sleep(Duration::from_millis(300));
    let port = master.port.to_string();
    let args = [&ROOMY[..], &["--replicaof", "127.0.0.1", &port]].concat();
    let replica = TestServer::start_in(dir.path(), &args);
    let mut r = replica.conn();
    wait_until("link up", || info_field(&mut r, "replication", "master_link_status") == "up");
    std::thread::sleep(Duration::from_millis(300));
    let writes = load.stop();
    assert!(writes > 100, "the load ran ({writes} writes)");
    wait_caught_up(&replica, &master);
    assert_eq!(stat(&mut m, "sync_full"), 1, "no second full sync");
    assert_eq!(stat(&mut m, "sync_partial_ok"), 1);
    assert_same_data(&master, &replica);
}

/// The master shuts down with SHUTDOWN SAVE and restarts from the same directory (behind a
/// proxy, so its replicas find it at the same address): both replicas continue with a partial
/// resync under the id it kept as its second id, and the live stream flows again.
#[test]
fn master_restart_with_shutdown_save_resumes_both_replicas_partially() {
    let dir = tempfile::tempdir().unwrap();
    let mut master = TestServer::start_in(dir.path(), &DEBUG);
    let (a, b) = (TestServer::start(&DEBUG), TestServer::start(&DEBUG));
    let proxy = Proxy::start(master.port);
    let mut m = master.conn();
    write_batch(&mut m, "x", 300);
    replica_of(&a, proxy.port);
    replica_of(&b, proxy.port);
    wait_caught_up(&a, &master);
    wait_caught_up(&b, &master);
    proxy.set_down(true);
    let _ = redis::cmd("SHUTDOWN").arg("SAVE").query::<()>(&mut m);
    let status = master.child.as_mut().unwrap().wait().unwrap();
    assert!(status.success(), "clean shutdown");
    master.child = None;
    let master = TestServer::start_in(dir.path(), &DEBUG);
    proxy.st.upstream.store(master.port, SeqCst);
    proxy.set_down(false);
    let mut m = master.conn();
    wait_caught_up(&a, &master);
    wait_caught_up(&b, &master);
    assert_eq!(stat(&mut m, "sync_full"), 0);
    assert_eq!(stat(&mut m, "sync_partial_ok"), 2);
    write_batch(&mut m, "y", 100);
    wait_caught_up(&a, &master);
    wait_caught_up(&b, &master);
    assert_same_data(&master, &a);
    assert_same_data(&master, &b);
}

/// The link cut in the middle of a full sync's payload: the replica starts over and
/// converges. Then stalled and cut in the middle of the stream under load: it resumes
/// partially and converges.
#[test]
fn link_cut_mid_full_sync_and_mid_stream_converges() {
    let master = TestServer::start(&ROOMY);
    let replica = TestServer::start(&DEBUG);
    let proxy = Proxy::start(master.port);
    let mut m = master.conn();
    let _: () = q(&mut m, &["DEBUG", "POPULATE", "100000", "key", "100"]);
    proxy.st.cut_after.store(500_000, SeqCst);
    replica_of(&replica, proxy.port);
    wait_until("a second connection", || proxy.st.accepted.load(SeqCst) >= 2);
    wait_caught_up(&replica, &master);
    assert!(stat(&mut m, "sync_full") >= 2, "the cut sync was started over");
    assert_same_data(&master, &replica);

    let full = stat(&mut m, "sync_full");
    let load = Load::start(master.port, "stream");
    std::thread::sleep(Duration::from_millis(200));
    proxy.stall(true);
    std::thread::sleep(Duration::from_millis(300));
    proxy.cut();
    proxy.stall(false);
    std::thread::sleep(Duration::from_millis(300));
    proxy.cut();
    std::thread::sleep(Duration::from_millis(200));
    load.stop();
    wait_caught_up(&replica, &master);
    assert_eq!(stat(&mut m, "sync_full"), full, "resumed without a full sync");
    assert!(stat(&mut m, "sync_partial_ok") >= 1);
    assert_same_data(&master, &replica);
}

/// A disk-less load (`repl-diskless-load swapdb`) cut short: the replica logs the short read
/// in Redis's words, which tools watching the log wait for (Redis's own test suite does), keeps
/// serving its old data, and converges on the next attempt.
#[test]
fn diskless_load_cut_short_is_logged_in_redis_words_and_converges() {
    let master = TestServer::start(&ROOMY);
    let replica = TestServer::start(&[&DEBUG[..], &["--repl-diskless-load", "swapdb"]].concat());
    let proxy = Proxy::start(master.port);
    let mut m = master.conn();
    let _: () = q(&mut m, &["DEBUG", "POPULATE", "100000", "key", "100"]);
    let _: () = q(&mut replica.conn(), &["SET", "replica-only", "old"]);
    proxy.st.cut_after.store(500_000, SeqCst);
    replica_of(&replica, proxy.port);
    // The first connection goes on until it is cut; the next attempts are refused until the
    // old data has been looked at.
    wait_until("a connection", || proxy.st.accepted.load(SeqCst) >= 1);
    proxy.st.down.store(true, SeqCst);
    let short_read = "Internal error in RDB reading offset";
    wait_until("the short read logged", || replica.log().contains(short_read));
    let log = replica.log();
    let short = log.lines().find(|l| l.contains(short_read)).unwrap();
    assert!(
        short.contains("Failure loading rdb format from socket, assuming connection error"),
        "{short}"
    );
    let mut r = replica.conn();
    assert_eq!(q::<String>(&mut r, &["GET", "replica-only"]), "old");
    assert_eq!(info_field(&mut r, "replication", "master_link_status"), "down");
    proxy.st.down.store(false, SeqCst);
    wait_caught_up(&replica, &master);
    assert_same_data(&master, &replica);
}

/// Waits until the master has no snapshot running.
fn wait_no_snapshot(m: &mut redis::Connection) {
    wait_until("the disk-less snapshot ended", || {
        info_field(m, "persistence", "rdb_bgsave_in_progress") == "0"
    });
}

/// Starts a disk-less full sync (through `port`: the master, or a proxy) of a dataset far
/// larger than the socket buffers, and once the replica is taking it in, calls `stall` to stop
/// it reading: the master's snapshot is then held up with records in flight.
fn stalled_diskless_sync(master: &TestServer, replica: &TestServer, port: u16, stall: impl Fn()) {
    let mut m = master.conn();
    // 40 MB that do not compress (a snapshot of DEBUG POPULATE's values would fit in the
    // socket buffers).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for batch in 0..40 {
        let mut p = redis::pipe();
        for i in 0..1000 {
            let value: Vec<u8> = (0..1000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            p.cmd("SET").arg(format!("key:{batch}:{i}")).arg(value).ignore();
        }
        let _: () = p.query(&mut m).unwrap();
    }
    replica_of(replica, port);
    wait_until("the full sync under way", || {
        info_field(&mut m, "persistence", "rdb_bgsave_in_progress") == "1"
    });
    stall();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(info_field(&mut m, "persistence", "rdb_bgsave_in_progress"), "1");
}

/// The only replica of a disk-less sync dies while the snapshot is held up: the snapshot ends
/// (it used to wait forever for its records in flight to drain).
#[test]
fn diskless_sync_ends_when_its_last_replica_goes() {
    let master = TestServer::start(&ROOMY);
    let mut replica = TestServer::start(&DEBUG);
    let pid = replica.child.as_ref().unwrap().id().to_string();
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(status.success());
    };
    stalled_diskless_sync(&master, &replica, master.port, || signal("-STOP"));
    replica.kill();
    let mut m = master.conn();
    wait_no_snapshot(&mut m);
    assert!(master.log().contains("Diskless rdb transfer, last replica dropped"));
    let _: () = q(&mut m, &["SET", "after", "1"]);
    assert_eq!(q::<String>(&mut m, &["GET", "after"]), "1");
}

/// A replica that stops reading its disk-less sync is dropped after `repl-timeout`, in Redis's
/// words, and the snapshot ends.
#[test]
fn stalled_diskless_replica_is_dropped_after_repl_timeout() {
    let master = TestServer::start(&ROOMY);
    let replica = TestServer::start(&DEBUG);
    let proxy = Proxy::start(master.port);
    let _: () = q(&mut master.conn(), &["CONFIG", "SET", "repl-timeout", "2"]);
    stalled_diskless_sync(&master, &replica, proxy.port, || proxy.stall(true));
    let mut m = master.conn();
    wait_no_snapshot(&mut m);
    let log = master.log();
    assert!(log.contains("Disconnecting timedout replica (full sync): 127.0.0.1:"), "{log}");
    proxy.stall(false);
}

/// The master dies; one replica is promoted (REPLICAOF NO ONE) and takes writes; the other
/// follows it with a partial resync under the old master's id (PSYNC2 second id).
#[test]
fn promoted_replica_is_followed_by_the_other_partially() {
    let mut master = TestServer::start(&ROOMY);
    let (a, b) = (TestServer::start(&ROOMY), TestServer::start(&ROOMY));
    let mut m = master.conn();
    write_batch(&mut m, "p", 200);
    replica_of(&a, master.port);
    replica_of(&b, master.port);
    let load = Load::start(master.port, "load");
    std::thread::sleep(Duration::from_millis(300));
    load.stop();
    wait_caught_up(&a, &master);
    wait_caught_up(&b, &master);
    let old_id = info_field(&mut m, "replication", "master_replid");
    master.kill();
    let mut ca = a.conn();
    let _: () = q(&mut ca, &["REPLICAOF", "NO", "ONE"]);
    assert_eq!(info_field(&mut ca, "replication", "master_replid2"), old_id);
    write_batch(&mut ca, "after", 100);
    replica_of(&b, a.port);
    wait_caught_up(&b, &a);
    assert_eq!(stat(&mut ca, "sync_full"), 0);
    assert_eq!(stat(&mut ca, "sync_partial_ok"), 1);
    assert_same_data(&a, &b);
}

/// With `appendonly yes` and a replica, PINGs enter the stream but not the log: replies must
/// not wait for the log to reach bytes it will never hold (they used to wait for the next
/// write). WAITAOF likewise.
#[test]
fn replies_do_not_wait_for_replica_only_stream_bytes() {
    let master = TestServer::start(&[
        &DEBUG[..],
        &["--appendonly", "yes", "--repl-ping-replica-period", "1"],
    ]
    .concat());
    let replica = TestServer::start(&DEBUG);
    let mut m = master.conn();
    let _: () = q(&mut m, &["SET", "k", "v"]);
    replica_of(&replica, master.port);
    wait_caught_up(&replica, &master);
    std::thread::sleep(Duration::from_millis(2500)); // PINGs, no writes
    let mut raw = master.raw();
    raw.s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert_eq!(raw.cmd(&["GET", "k"]), b"$1\r\nv\r\n");
    assert_eq!(raw.cmd(&["WAITAOF", "1", "0", "1000"]), b"*2\r\n:1\r\n:0\r\n");
}
