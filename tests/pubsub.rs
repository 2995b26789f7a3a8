//! Pub/Sub integration tests: subscriptions, patterns, fan-out, RESP3 pushes, the RESP2
//! subscribed-mode restrictions, output buffer limits and keyspace notifications, all checked
//! byte for byte on raw connections.

mod common;

use std::time::{Duration, Instant};

use common::{q, RawConn, TestServer};

/// RESP2 frame of bulk strings followed by an integer (subscription confirmations).
fn notice(tag: &str, name: &str, count: i64) -> Vec<u8> {
    format!("*3\r\n${}\r\n{tag}\r\n${}\r\n{name}\r\n:{count}\r\n", tag.len(), name.len())
        .into_bytes()
}

/// A frame of bulk strings with the given type byte (`*` or `>`).
fn frame(kind: char, parts: &[&str]) -> Vec<u8> {
    let mut s = format!("{kind}{}\r\n", parts.len());
    for p in parts {
        s.push_str(&format!("${}\r\n{p}\r\n", p.len()));
    }
    s.into_bytes()
}

/// Sends a command and reads `n` replies.
fn cmd_n(c: &mut RawConn, args: &[&str], n: usize) -> Vec<u8> {
    let mut out = c.cmd(args);
    for _ in 1..n {
        out.extend(c.read_reply());
    }
    out
}

fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn subscribe_publish_unsubscribe_replies() {
    let srv = TestServer::start(&[]);
    let mut sub = srv.raw();
    let mut p = srv.conn();
    assert_eq!(sub.cmd(&["UNSUBSCRIBE"]), b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
    assert_eq!(sub.cmd(&["PUNSUBSCRIBE"]), b"*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n");
    let mut want = notice("subscribe", "a", 1);
    want.extend(notice("subscribe", "b", 2));
    assert_eq!(cmd_n(&mut sub, &["SUBSCRIBE", "a", "b"], 2), want);
    assert_eq!(sub.cmd(&["SUBSCRIBE", "a"]), notice("subscribe", "a", 2));
    assert_eq!(sub.cmd(&["PSUBSCRIBE", "a*"]), notice("psubscribe", "a*", 3));
    assert_eq!(sub.cmd(&["SSUBSCRIBE", "s"]), notice("ssubscribe", "s", 1));
    assert_eq!(q::<i64>(&mut p, &["PUBLISH", "a", "hi"]), 2);
    assert_eq!(sub.read_reply(), frame('*', &["message", "a", "hi"]));
    assert_eq!(sub.read_reply(), frame('*', &["pmessage", "a*", "a", "hi"]));
    assert_eq!(q::<i64>(&mut p, &["PUBLISH", "abc", "x"]), 1);
    assert_eq!(sub.read_reply(), frame('*', &["pmessage", "a*", "abc", "x"]));
    assert_eq!(q::<i64>(&mut p, &["SPUBLISH", "s", "y"]), 1);
    assert_eq!(sub.read_reply(), frame('*', &["smessage", "s", "y"]));
    assert_eq!(q::<i64>(&mut p, &["SPUBLISH", "a", "y"]), 0);
    assert_eq!(q::<i64>(&mut p, &["PUBSUB", "NUMPAT"]), 1);
    let numsub: Vec<redis::Value> = q(&mut p, &["PUBSUB", "NUMSUB", "a", "b", "zz"]);
    assert_eq!(numsub.len(), 6);
    assert_eq!(numsub[1], redis::Value::Int(1));
    assert_eq!(numsub[5], redis::Value::Int(0));
    let mut chans: Vec<String> = q(&mut p, &["PUBSUB", "CHANNELS"]);
    chans.sort();
    assert_eq!(chans, ["a", "b"]);
    assert_eq!(q::<Vec<String>>(&mut p, &["PUBSUB", "SHARDCHANNELS", "s*"]), ["s"]);
    let mut want = notice("unsubscribe", "a", 2);
    want.extend(notice("unsubscribe", "b", 1));
    assert_eq!(cmd_n(&mut sub, &["UNSUBSCRIBE"], 2), want);
    assert_eq!(sub.cmd(&["PUNSUBSCRIBE", "nope"]), notice("punsubscribe", "nope", 1));
    assert_eq!(sub.cmd(&["PUNSUBSCRIBE"]), notice("punsubscribe", "a*", 0));
    assert_eq!(sub.cmd(&["SUNSUBSCRIBE"]), notice("sunsubscribe", "s", 0));
    assert_eq!(sub.cmd(&["GET", "a"]), b"$-1\r\n");
    assert_eq!(q::<i64>(&mut p, &["PUBLISH", "a", "hi"]), 0);
}

#[test]
fn subscribed_mode_restrictions_and_ping() {
    let srv = TestServer::start(&[]);
    let mut c = srv.raw();
    c.cmd(&["SUBSCRIBE", "x"]);
    assert_eq!(c.cmd(&["PING"]), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    assert_eq!(c.cmd(&["PING", "m"]), b"*2\r\n$4\r\npong\r\n$1\r\nm\r\n");
    let refusal = |cmd: &str| {
        format!(
            "-ERR Can't execute '{cmd}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / \
             RESET are allowed in this context\r\n"
        )
        .into_bytes()
    };
    assert_eq!(c.cmd(&["GET", "k"]), refusal("get"));
    assert_eq!(c.cmd(&["CLIENT", "INFO"]), refusal("client|info"));
    assert_eq!(c.cmd(&["PUBLISH", "x", "y"]), refusal("publish"));
    // Unknown commands and bad arity are still reported as such.
    assert!(c.cmd(&["NOSUCH"]).starts_with(b"-ERR unknown command 'NOSUCH'"));
    assert_eq!(c.cmd(&["RESET"]), b"+RESET\r\n");
    assert_eq!(c.cmd(&["GET", "k"]), b"$-1\r\n");
    assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
    let mut p = srv.conn();
    assert_eq!(q::<i64>(&mut p, &["PUBLISH", "x", "y"]), 0);
}

#[test]
fn resp3_pushes_and_messages_to_self() {
    let srv = TestServer::start(&[]);
    let mut c = srv.raw();
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["SUBSCRIBE", "a"]), b">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n");
    // RESP3 clients may run anything while subscribed; their own message precedes the reply.
    let mut want = frame('>', &["message", "a", "hi"]);
    want.extend_from_slice(b":1\r\n");
    assert_eq!(cmd_n(&mut c, &["PUBLISH", "a", "hi"], 2), want);
    assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
    let mut p = srv.conn();
    q::<i64>(&mut p, &["PUBLISH", "a", "other"]);
    assert_eq!(c.read_reply(), frame('>', &["message", "a", "other"]));
    assert_eq!(c.cmd(&["UNSUBSCRIBE"]), b">3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n");
    assert_eq!(c.cmd(&["UNSUBSCRIBE"]), b">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n");
}

#[test]
fn subscription_notices_survive_client_reply_off() {
    let srv = TestServer::start(&[]);
    let mut c = srv.raw();
    c.send(b"CLIENT REPLY OFF\r\n");
    assert_eq!(c.cmd(&["SUBSCRIBE", "a"]), notice("subscribe", "a", 1));
}

#[test]
fn fan_out_to_many_subscribers_and_patterns() {
    let srv = TestServer::start(&[]);
    let mut subs: Vec<RawConn> = (0..200).map(|_| srv.raw()).collect();
    for (i, s) in subs.iter_mut().enumerate() {
        if i % 2 == 0 {
            assert_eq!(s.cmd(&["SUBSCRIBE", "news"]), notice("subscribe", "news", 1));
        } else {
            assert_eq!(s.cmd(&["PSUBSCRIBE", "n*"]), notice("psubscribe", "n*", 1));
        }
    }
    let mut p = srv.conn();
    assert_eq!(q::<i64>(&mut p, &["PUBSUB", "NUMPAT"]), 1);
    for round in 0..3 {
        let msg = format!("m{round}");
        assert_eq!(q::<i64>(&mut p, &["PUBLISH", "news", &msg]), 200);
        for (i, s) in subs.iter_mut().enumerate() {
            let want = if i % 2 == 0 {
                frame('*', &["message", "news", &msg])
            } else {
                frame('*', &["pmessage", "n*", "news", &msg])
            };
            assert_eq!(s.read_reply(), want, "subscriber {i}");
        }
    }
    // Disconnecting removes the subscriptions.
    subs.truncate(10);
    assert!(wait_until(|| q::<i64>(&mut p, &["PUBLISH", "news", "x"]) == 10));
    drop(subs);
    assert!(wait_until(|| q::<i64>(&mut p, &["PUBSUB", "NUMPAT"]) == 0));
}

#[test]
fn client_list_shows_subscription_counts() {
    let srv = TestServer::start(&[]);
    let mut s = srv.raw();
    cmd_n(&mut s, &["SUBSCRIBE", "a", "b"], 2);
    s.cmd(&["PSUBSCRIBE", "p*"]);
    s.cmd(&["SSUBSCRIBE", "z"]);
    let mut c = srv.conn();
    let list: String = q(&mut c, &["CLIENT", "LIST", "TYPE", "pubsub"]);
    assert_eq!(list.lines().count(), 1);
    assert!(list.contains(" flags=P "), "{list}");
    assert!(list.contains(" sub=2 psub=1 ssub=1 "), "{list}");
    let normal: String = q(&mut c, &["CLIENT", "LIST", "TYPE", "normal"]);
    assert!(!normal.contains("flags=P"));
}

#[test]
fn keyspace_notifications_for_strings_keys_and_expiry() {
    let srv = TestServer::start(&["--enable-debug-command", "yes"]);
    let mut c = srv.conn();
    let mut s = srv.raw();
    // Off by default: nothing is published.
    s.cmd(&["PSUBSCRIBE", "__key*__:*"]);
    q::<()>(&mut c, &["SET", "k0", "v"]);
    q::<()>(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let ev = |key: &str, event: &str| {
        let (space, kind) = (format!("__keyspace@0__:{key}"), format!("__keyevent@0__:{event}"));
        let mut v = frame('*', &["pmessage", "__key*__:*", &space, event]);
        v.extend(frame('*', &["pmessage", "__key*__:*", &kind, key]));
        v
    };
    q::<()>(&mut c, &["SET", "k", "v"]);
    assert_eq!(cmd_reads(&mut s, 2), ev("k", "set"));
    q::<i64>(&mut c, &["EXPIRE", "k", "100"]);
    assert_eq!(cmd_reads(&mut s, 2), ev("k", "expire"));
    q::<i64>(&mut c, &["DEL", "k"]);
    assert_eq!(cmd_reads(&mut s, 2), ev("k", "del"));
    // Lazy expiry: found expired by a read.
    q::<()>(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    q::<()>(&mut c, &["SET", "lazy", "v", "PX", "20"]);
    assert_eq!(cmd_reads(&mut s, 2), ev("lazy", "set"));
    assert_eq!(cmd_reads(&mut s, 2), ev("lazy", "expire"));
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(q::<Option<String>>(&mut c, &["GET", "lazy"]), None);
    assert_eq!(cmd_reads(&mut s, 2), ev("lazy", "expired"));
    // Active expiry: the background cycle deletes it.
    q::<()>(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    q::<()>(&mut c, &["SET", "active", "v", "PX", "20"]);
    assert_eq!(cmd_reads(&mut s, 2), ev("active", "set"));
    assert_eq!(cmd_reads(&mut s, 2), ev("active", "expire"));
    assert_eq!(cmd_reads(&mut s, 2), ev("active", "expired"));
    // Masking: only keyevent, only generic commands.
    q::<()>(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "Eg"]);
    q::<()>(&mut c, &["SET", "m", "v"]);
    q::<i64>(&mut c, &["DEL", "m"]);
    assert_eq!(s.read_reply(), frame('*', &["pmessage", "__key*__:*", "__keyevent@0__:del", "m"]));
}

#[test]
fn keyspace_notifications_config_flags() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let get = |c: &mut redis::Connection| -> String {
        let v: Vec<String> = q(c, &["CONFIG", "GET", "notify-keyspace-events"]);
        v[1].clone()
    };
    for (set, want) in [("KEA", "AKE"), ("Kn", "nK"), ("An", "A"), ("mE$x", "$xEm"), ("", "")] {
        q::<()>(&mut c, &["CONFIG", "SET", "notify-keyspace-events", set]);
        assert_eq!(get(&mut c), want, "{set}");
    }
    assert_eq!(
        common::err(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KQ"]),
        "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - \
         Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
    );
}

#[test]
fn evicted_keys_are_notified() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let mut s = srv.raw();
    for i in 0..20 {
        q::<()>(&mut c, &["SET", &format!("key{i}"), &"x".repeat(1000)]);
    }
    q::<()>(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "Ee"]);
    s.cmd(&["SUBSCRIBE", "__keyevent@0__:evicted"]);
    q::<()>(&mut c, &["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]);
    q::<()>(&mut c, &["CONFIG", "SET", "maxmemory", "1"]);
    let _ = redis::cmd("SET").arg("trigger").arg("v").query::<redis::Value>(&mut c);
    let msg = s.read_reply();
    assert!(msg.starts_with(b"*3\r\n$7\r\nmessage\r\n$22\r\n__keyevent@0__:evicted\r\n"));
    q::<()>(&mut c, &["CONFIG", "SET", "maxmemory", "0"]);
}

/// Reads `n` replies that are already on their way.
fn cmd_reads(s: &mut RawConn, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.extend(s.read_reply());
    }
    out
}

/// Memory the server reports in INFO.
fn used_memory(c: &mut redis::Connection) -> u64 {
    let info: String = q(c, &["INFO", "memory"]);
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn slow_subscriber_is_dropped_at_the_hard_limit() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<()>(&mut c, &["CONFIG", "SET", "client-output-buffer-limit", "pubsub 2mb 0 0"]);
    let mut s = srv.raw();
    s.cmd(&["SUBSCRIBE", "flood"]);
    let payload = "x".repeat(100_000);
    let before = used_memory(&mut c);
    // 50 MB published to a subscriber that never reads.
    for _ in 0..500 {
        q::<i64>(&mut c, &["PUBLISH", "flood", &payload]);
    }
    assert!(wait_until(|| q::<i64>(&mut c, &["PUBLISH", "flood", "x"]) == 0));
    let list: String = q(&mut c, &["CLIENT", "LIST", "TYPE", "pubsub"]);
    assert_eq!(list, "");
    assert!(used_memory(&mut c) < before + 16 * 1024 * 1024);
    assert!(wait_until(|| srv.log().contains("overcoming of output buffer limits")));
}

#[test]
fn slow_subscriber_is_dropped_after_the_soft_limit_period() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<()>(&mut c, &["CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 1mb 1"]);
    let mut s = srv.raw();
    s.cmd(&["SUBSCRIBE", "flood"]);
    let payload = "x".repeat(100_000);
    let start = Instant::now();
    let mut dropped_after = None;
    while start.elapsed() < Duration::from_secs(10) {
        if q::<i64>(&mut c, &["PUBLISH", "flood", &payload]) == 0 {
            dropped_after = Some(start.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = dropped_after.expect("subscriber over the soft limit was never dropped");
    // Over the soft limit for more than one whole second, not at once.
    assert!(after >= Duration::from_secs(1), "{after:?}");
}
