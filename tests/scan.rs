//! SCAN against the real binary: cursor parsing, options, filters, and the guarantee that a
//! full iteration returns every key present throughout, also while keys are being added.

mod common;

use std::collections::HashSet;

use common::{q, TestServer};
use redis::Connection;

fn err(r: &mut common::RawConn, args: &[&str]) -> String {
    let line = String::from_utf8_lossy(&r.cmd(args)).into_owned();
    assert!(
        line.starts_with('-'),
        "{args:?}: expected an error, got {line:?}"
    );
    line[1..].trim_end().to_string()
}

/// Runs a whole SCAN iteration with extra options; returns every key returned (with repeats).
fn full_scan(c: &mut Connection, extra: &[&str]) -> Vec<String> {
    let mut all = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let mut args = vec!["SCAN", cursor.as_str()];
        args.extend_from_slice(extra);
        let (next, keys): (String, Vec<String>) = q(c, &args);
        all.extend(keys);
        cursor = next;
        if cursor == "0" {
            return all;
        }
    }
}

fn fill(c: &mut Connection, prefix: &str, n: usize) {
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.cmd("SET")
            .arg(format!("{prefix}{i}"))
            .arg("v")
            .ignore();
    }
    let _: () = pipe.query(c).unwrap();
}

#[test]
fn errors_match_redis() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    assert_eq!(err(&mut r, &["SCAN", "abc"]), "ERR invalid cursor");
    assert_eq!(err(&mut r, &["SCAN", " 1"]), "ERR invalid cursor");
    assert_eq!(
        err(&mut r, &["SCAN", "18446744073709551616"]),
        "ERR invalid cursor"
    );
    assert_eq!(
        err(&mut r, &["SCAN", "0", "COUNT", "0"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut r, &["SCAN", "0", "COUNT", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(err(&mut r, &["SCAN", "0", "MATCH"]), "ERR syntax error");
    assert_eq!(
        err(&mut r, &["SCAN", "0", "FOO", "bar"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut r, &["SCAN"]),
        "ERR wrong number of arguments for 'scan' command"
    );
    // Any cursor strtoul accepts is valid; one past the end simply finishes.
    assert_eq!(r.cmd(&["SCAN", "-1"]), b"*2\r\n$1\r\n0\r\n*0\r\n".to_vec());
}

#[test]
fn full_iteration_returns_each_key_once() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    fill(&mut c, "key:", 5000);
    for count in ["1", "10", "1000", "100000"] {
        let keys = full_scan(&mut c, &["COUNT", count]);
        assert_eq!(keys.len(), 5000, "COUNT {count}");
        assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 5000);
    }
}

#[test]
fn match_and_type_filters() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    fill(&mut c, "a:", 300);
    fill(&mut c, "b:", 300);
    let keys = full_scan(&mut c, &["MATCH", "a:*", "COUNT", "50"]);
    assert_eq!(keys.len(), 300);
    assert!(keys.iter().all(|k| k.starts_with("a:")));
    assert_eq!(full_scan(&mut c, &["TYPE", "string"]).len(), 600);
    assert_eq!(
        full_scan(&mut c, &["TYPE", "STRING", "MATCH", "b:1*"]).len(),
        111
    );
    assert!(full_scan(&mut c, &["TYPE", "list"]).is_empty());
}

#[test]
fn expired_keys_are_not_returned() {
    let srv = TestServer::start(&["--hz", "1"]);
    let mut c = srv.conn();
    fill(&mut c, "live:", 100);
    for i in 0..100 {
        let _: () = q(&mut c, &["SET", &format!("dead:{i}"), "v", "PX", "1"]);
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    let keys = full_scan(&mut c, &[]);
    assert_eq!(keys.len(), 100);
    assert!(keys.iter().all(|k| k.starts_with("live:")));
}

#[test]
fn keys_present_throughout_are_returned_while_others_are_added() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let mut writer = srv.conn();
    fill(&mut c, "base:", 20_000);
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    let mut added = 0;
    loop {
        let (next, keys): (String, Vec<String>) = q(&mut c, &["SCAN", &cursor, "COUNT", "100"]);
        seen.extend(keys);
        // Another client grows the table between steps, forcing segment splits mid-scan.
        fill(&mut writer, &format!("new{added}:"), 300);
        added += 1;
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    let missing: Vec<usize> = (0..20_000)
        .filter(|i| !seen.contains(&format!("base:{i}")))
        .collect();
    assert!(
        missing.is_empty(),
        "missed {} base keys, e.g. {:?}",
        missing.len(),
        &missing[..5.min(missing.len())]
    );
    assert!(added > 10);
}
