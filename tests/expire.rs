//! Expiry commands against the real binary: EXPIRE family, TTL family, PERSIST, lazy and
//! active expiry.

mod common;

use std::thread::sleep;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{q, TestServer};

fn err(r: &mut common::RawConn, args: &[&str]) -> String {
    let line = String::from_utf8_lossy(&r.cmd(args)).into_owned();
    assert!(
        line.starts_with('-'),
        "{args:?}: expected an error, got {line:?}"
    );
    line[1..].trim_end().to_string()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn expire_ttl_persist() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "100"]), 0);
    assert_eq!(q::<i64>(&mut c, &["TTL", "k"]), -2);
    let _: () = q(&mut c, &["SET", "k", "v"]);
    assert_eq!(q::<i64>(&mut c, &["TTL", "k"]), -1);
    assert_eq!(q::<i64>(&mut c, &["EXPIRETIME", "k"]), -1);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "100"]), 1);
    assert_eq!(q::<i64>(&mut c, &["TTL", "k"]), 100);
    let pttl: i64 = q(&mut c, &["PTTL", "k"]);
    assert!(pttl > 99_000 && pttl <= 100_000, "{pttl}");
    let at: i64 = q(&mut c, &["PEXPIRETIME", "k"]);
    assert!((at - (now_ms() + 100_000)).abs() < 2_000, "{at}");
    assert_eq!(q::<i64>(&mut c, &["EXPIRETIME", "k"]), (at + 500) / 1000);
    assert_eq!(q::<i64>(&mut c, &["PERSIST", "k"]), 1);
    assert_eq!(q::<i64>(&mut c, &["PERSIST", "k"]), 0);
    assert_eq!(q::<i64>(&mut c, &["TTL", "k"]), -1);
    assert_eq!(
        q::<i64>(
            &mut c,
            &["EXPIREAT", "k", &(now_ms() / 1000 + 50).to_string()]
        ),
        1
    );
    let ttl: i64 = q(&mut c, &["TTL", "k"]);
    assert!((49..=50).contains(&ttl), "{ttl}");
}

#[test]
fn nx_xx_gt_lt_conditions_and_errors() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let mut r = srv.raw();
    let _: () = q(&mut c, &["SET", "k", "v"]);
    assert_eq!(
        err(&mut r, &["EXPIRE", "k", "10", "NX", "XX"]),
        "ERR NX and XX, GT or LT options at the same time are not compatible"
    );
    assert_eq!(
        err(&mut r, &["EXPIRE", "k", "10", "GT", "LT"]),
        "ERR GT and LT options at the same time are not compatible"
    );
    assert_eq!(
        err(&mut r, &["EXPIRE", "k", "10", "foo"]),
        "ERR Unsupported option foo"
    );
    assert_eq!(
        err(&mut r, &["EXPIRE", "k", "ten"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&mut r, &["EXPIRE", "k", "9223372036854775807"]),
        "ERR invalid expire time in 'expire' command"
    );
    assert_eq!(
        err(&mut r, &["PEXPIRE", "k", "9223372036854775807"]),
        "ERR invalid expire time in 'pexpire' command"
    );
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "100", "XX"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "100", "GT"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "100", "LT"]), 1);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "200", "NX"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "50", "GT"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "200", "GT"]), 1);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "300", "LT"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "150", "LT", "XX"]), 1);
    assert_eq!(q::<i64>(&mut c, &["TTL", "k"]), 150);
}

#[test]
fn extreme_expiry_times_do_not_overflow() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let _: () = q(&mut c, &["SET", "k", "v"]);
    assert_eq!(
        q::<i64>(&mut c, &["PEXPIREAT", "k", "9223372036854775807"]),
        1
    );
    assert_eq!(q::<i64>(&mut c, &["PEXPIRETIME", "k"]), i64::MAX);
    assert_eq!(q::<i64>(&mut c, &["EXPIRETIME", "k"]), 9223372036854776);
    assert_eq!(
        q::<i64>(&mut c, &["PEXPIRE", "k", "-9223372036854775808"]),
        1
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "k"]), 0);
}

#[test]
fn past_expire_deletes_the_key() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let _: () = q(&mut c, &["SET", "k", "v"]);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "-10"]), 1);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "k"]), 0);
    let _: () = q(&mut c, &["SET", "k", "v"]);
    assert_eq!(q::<i64>(&mut c, &["PEXPIREAT", "k", "0"]), 1);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "k"]), 0);
}

#[test]
fn lazy_expiry_hides_keys_at_once() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let _: () = q(&mut c, &["SET", "k", "v"]);
    assert_eq!(q::<i64>(&mut c, &["PEXPIRE", "k", "50"]), 1);
    sleep(Duration::from_millis(80));
    assert_eq!(q::<Option<String>>(&mut c, &["GET", "k"]), None);
    assert_eq!(q::<i64>(&mut c, &["TTL", "k"]), -2);
}

#[test]
fn active_expiry_removes_untouched_keys() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    for i in 0..500 {
        let _: () = q(&mut c, &["SET", &format!("short{i}"), "v", "PX", "50"]);
    }
    let _: () = q(&mut c, &["SET", "long", "v", "EX", "100"]);
    let _: () = q(&mut c, &["SET", "forever", "v"]);
    // Nothing touches the short-lived keys: only the active expire cycle can remove them,
    // and DBSIZE counts stored keys without expiring any.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        sleep(Duration::from_millis(100));
        let n: i64 = q(&mut c, &["DBSIZE"]);
        if n == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{n} keys left");
    }
    let mut keys: Vec<String> = q(&mut c, &["KEYS", "*"]);
    keys.sort();
    assert_eq!(keys, ["forever", "long"]);
}
