//! Client-side caching (CLIENT TRACKING): invalidation messages as RESP3 pushes, through a
//! RESP2 redirect target subscribed to `__redis__:invalidate`, BCAST prefixes, NOLOOP, OPTIN,
//! FLUSHALL, expiry, the table limit, and the CLIENT LIST / INFO fields. Raw connections, so
//! every byte of each push is checked.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::TestServer;

/// A raw protocol connection.
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    fn new(srv: &TestServer) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        Raw { s, buf: Vec::new() }
    }

    fn send(&mut self, args: &[&str]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n{}\r\n", a.len(), a).as_bytes());
        }
        self.s.write_all(&out).unwrap();
    }

    /// Reads until exactly `want` has arrived (and nothing more), failing after two seconds.
    fn expect(&mut self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.buf.len() < want.len() && Instant::now() < deadline {
            let mut chunk = [0u8; 4096];
            if let Ok(n) = self.s.read(&mut chunk) {
                self.buf.extend_from_slice(&chunk[..n]);
            }
        }
        let got: Vec<u8> = self.buf.drain(..self.buf.len().min(want.len())).collect();
        assert_eq!(String::from_utf8_lossy(&got), want);
    }

    /// Sends a command and checks the bytes that come back.
    fn call(&mut self, args: &[&str], want: &str) {
        self.send(args);
        self.expect(want);
    }

    /// Checks that nothing more arrives for a short while.
    fn quiet(&mut self) {
        std::thread::sleep(Duration::from_millis(150));
        let mut chunk = [0u8; 4096];
        if let Ok(n) = self.s.read(&mut chunk) {
            self.buf.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(String::from_utf8_lossy(&self.buf), "");
    }

    fn id(&mut self) -> String {
        self.send(&["CLIENT", "ID"]);
        let deadline = Instant::now() + Duration::from_secs(2);
        while !self.buf.ends_with(b"\r\n") && Instant::now() < deadline {
            let mut chunk = [0u8; 64];
            if let Ok(n) = self.s.read(&mut chunk) {
                self.buf.extend_from_slice(&chunk[..n]);
            }
        }
        let line = String::from_utf8(std::mem::take(&mut self.buf)).unwrap();
        line.trim_start_matches(':').trim_end().to_string()
    }
}

const HELLO3_PREFIX: &str = "%7\r\n";

fn resp3(srv: &TestServer) -> Raw {
    let mut c = Raw::new(srv);
    c.send(&["HELLO", "3"]);
    std::thread::sleep(Duration::from_millis(50));
    let mut chunk = [0u8; 4096];
    let n = c.s.read(&mut chunk).unwrap();
    assert!(chunk[..n].starts_with(HELLO3_PREFIX.as_bytes()));
    c
}

const INV_K: &str = ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n";

#[test]
fn resp3_invalidation_from_another_client() {
    let srv = TestServer::start(&[]);
    let mut a = resp3(&srv);
    let mut w = Raw::new(&srv);
    a.call(&["CLIENT", "TRACKING", "on"], "+OK\r\n");
    a.call(&["GET", "k"], "_\r\n");
    w.call(&["SET", "k", "1"], "+OK\r\n");
    a.expect(INV_K);
    // The key left the table: a second write sends nothing until it is read again.
    w.call(&["SET", "k", "2"], "+OK\r\n");
    a.quiet();
}

#[test]
fn own_write_invalidation_follows_the_reply_unless_noloop() {
    let srv = TestServer::start(&[]);
    let mut a = resp3(&srv);
    a.call(&["CLIENT", "TRACKING", "on"], "+OK\r\n");
    a.call(&["GET", "k"], "_\r\n");
    a.call(&["SET", "k", "1"], &format!("+OK\r\n{INV_K}"));
    a.call(&["CLIENT", "TRACKING", "on", "NOLOOP"], "+OK\r\n");
    a.call(&["GET", "k"], "$1\r\n1\r\n");
    a.call(&["SET", "k", "2"], "+OK\r\n");
    a.quiet();
}

#[test]
fn resp2_redirect_to_invalidate_channel() {
    let srv = TestServer::start(&[]);
    let mut sub = Raw::new(&srv);
    let id = sub.id();
    sub.call(
        &["SUBSCRIBE", "__redis__:invalidate"],
        "*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n",
    );
    let mut a = Raw::new(&srv);
    a.call(&["CLIENT", "TRACKING", "on", "REDIRECT", &id], "+OK\r\n");
    a.call(&["CLIENT", "GETREDIR"], &format!(":{id}\r\n"));
    a.call(&["SET", "k", "v"], "+OK\r\n");
    a.call(&["GET", "k"], "$1\r\nv\r\n");
    a.call(&["DEL", "k"], ":1\r\n");
    sub.expect("*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\nk\r\n");
    // FLUSHALL invalidates everything with a null.
    a.call(&["FLUSHALL"], "+OK\r\n");
    sub.expect("*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n");
    let list = {
        a.send(&["CLIENT", "INFO"]);
        std::thread::sleep(Duration::from_millis(100));
        let mut chunk = [0u8; 4096];
        let n = a.s.read(&mut chunk).unwrap();
        String::from_utf8_lossy(&chunk[..n]).to_string()
    };
    assert!(list.contains(" flags=t "), "{list}");
    assert!(list.contains(&format!(" redir={id} ")), "{list}");
}

#[test]
fn broken_redirect_is_reported() {
    let srv = TestServer::start(&[]);
    let mut target = Raw::new(&srv);
    let id = target.id();
    let mut a = resp3(&srv);
    let mut w = Raw::new(&srv);
    a.call(&["CLIENT", "TRACKING", "on", "REDIRECT", &id], "+OK\r\n");
    a.call(&["GET", "k"], "_\r\n");
    drop(target);
    std::thread::sleep(Duration::from_millis(100));
    w.call(&["SET", "k", "1"], "+OK\r\n");
    a.expect(&format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{id}\r\n"));
    a.call(&["CLIENT", "TRACKINGINFO"], &format!(
        "%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$15\r\nbroken_redirect\r\n\
         $8\r\nredirect\r\n:{id}\r\n$8\r\nprefixes\r\n*0\r\n"
    ));
}

#[test]
fn bcast_prefixes_batch_keys() {
    let srv = TestServer::start(&[]);
    let mut a = resp3(&srv);
    let mut w = Raw::new(&srv);
    a.call(&["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a:"], "+OK\r\n");
    w.call(&["MSET", "a:1", "x", "b:1", "y", "a:2", "z"], "+OK\r\n");
    a.expect(">2\r\n$10\r\ninvalidate\r\n*2\r\n$3\r\na:1\r\n$3\r\na:2\r\n");
    a.call(
        &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a"],
        "-ERR Prefix 'a' overlaps with an existing prefix 'a:'. Prefixes for a single client \
         must not overlap.\r\n",
    );
}

#[test]
fn optin_caches_only_after_caching_yes() {
    let srv = TestServer::start(&[]);
    let mut a = resp3(&srv);
    let mut w = Raw::new(&srv);
    a.call(&["CLIENT", "TRACKING", "on", "OPTIN"], "+OK\r\n");
    a.call(&["GET", "k"], "_\r\n");
    w.call(&["SET", "k", "1"], "+OK\r\n");
    a.quiet();
    a.call(&["CLIENT", "CACHING", "yes"], "+OK\r\n");
    a.call(&["GET", "k"], "$1\r\n1\r\n");
    w.call(&["SET", "k", "2"], "+OK\r\n");
    a.expect(INV_K);
}

#[test]
fn expiry_and_table_limit_invalidate() {
    let srv = TestServer::start(&[]);
    let mut a = resp3(&srv);
    let mut w = Raw::new(&srv);
    a.call(&["CLIENT", "TRACKING", "on"], "+OK\r\n");
    w.call(&["SET", "k", "1", "PX", "300"], "+OK\r\n");
    a.call(&["GET", "k"], "$1\r\n1\r\n");
    // The active expiry cycle deletes it and the client hears about it.
    a.expect(INV_K);
    a.call(&["MGET", "x", "y"], "*2\r\n_\r\n_\r\n");
    w.call(&["CONFIG", "SET", "tracking-table-max-keys", "1"], "+OK\r\n");
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut chunk = [0u8; 4096];
    while a.buf.is_empty() && Instant::now() < deadline {
        if let Ok(n) = a.s.read(&mut chunk) {
            a.buf.extend_from_slice(&chunk[..n]);
        }
    }
    let got = String::from_utf8_lossy(&a.buf).to_string();
    assert!(got.starts_with(">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\n"), "{got}");
}

#[test]
fn info_counts_tracking_state_and_reset_clears_it() {
    let srv = TestServer::start(&[]);
    let mut a = Raw::new(&srv);
    a.call(&["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "p"], "+OK\r\n");
    let mut c = srv.conn();
    let info: String = redis::cmd("INFO").query(&mut c).unwrap();
    assert!(info.contains("tracking_clients:1\r\n"), "{info}");
    assert!(info.contains("tracking_total_prefixes:1\r\n"), "{info}");
    a.call(&["RESET"], "+RESET\r\n");
    let info: String = redis::cmd("INFO").query(&mut c).unwrap();
    assert!(info.contains("tracking_clients:0\r\n"), "{info}");
    assert!(info.contains("tracking_total_prefixes:0\r\n"), "{info}");
}
