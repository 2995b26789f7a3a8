//! SLOWLOG and LATENCY: what the dispatcher records about command durations.

mod common;

use common::{err, q, wait_blocked, TestServer};
use redis::Value;

fn server() -> TestServer {
    TestServer::start(&["--enable-debug-command", "yes"])
}

/// One SLOWLOG GET entry, decoded: (id, duration µs, args, peer, client name).
type Entry = (i64, i64, Vec<String>, String, String);

fn entries(c: &mut redis::Connection, count: &str) -> Vec<Entry> {
    let raw: Vec<(i64, i64, i64, Vec<String>, String, String)> =
        q(c, &["SLOWLOG", "GET", count]);
    raw.into_iter().map(|(id, _t, d, a, p, n)| (id, d, a, p, n)).collect()
}

fn args_of(c: &mut redis::Connection) -> Vec<Vec<String>> {
    entries(c, "-1").into_iter().map(|e| e.2).collect()
}

/// A RESP2 map (a flat array of alternating keys and values) as pairs.
fn pairs(v: &Value) -> Vec<(String, Value)> {
    let Value::Array(items) = v else { panic!("not an array: {v:?}") };
    items
        .chunks(2)
        .map(|kv| (redis::from_redis_value(&kv[0]).unwrap(), kv[1].clone()))
        .collect()
}

fn int(v: &Value) -> i64 {
    redis::from_redis_value(v).unwrap()
}

fn everything(c: &mut redis::Connection) {
    let _: () = q(c, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    let _: () = q(c, &["SLOWLOG", "RESET"]);
}

#[test]
fn only_commands_over_the_threshold_are_logged() {
    let srv = server();
    let mut c = srv.conn();
    let _: () = q(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "100000"]);
    let _: () = q(&mut c, &["SLOWLOG", "RESET"]);
    let _: String = q(&mut c, &["PING"]);
    assert_eq!(q::<i64>(&mut c, &["SLOWLOG", "LEN"]), 0);
    let _: () = q(&mut c, &["CLIENT", "SETNAME", "sleeper"]);
    let _: () = q(&mut c, &["DEBUG", "SLEEP", "0.2"]);
    let e = entries(&mut c, "10");
    assert_eq!(e.len(), 1);
    assert!(e[0].1 >= 200_000, "duration {}", e[0].1);
    assert_eq!(e[0].2, ["DEBUG", "SLEEP", "0.2"]);
    assert!(e[0].3.starts_with("127.0.0.1:"));
    assert_eq!(e[0].4, "sleeper");
    // -1 turns the log off.
    let _: () = q(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
    let _: () = q(&mut c, &["DEBUG", "SLEEP", "0.2"]);
    assert_eq!(q::<i64>(&mut c, &["SLOWLOG", "LEN"]), 1);
}

#[test]
fn max_len_count_and_reset() {
    let srv = server();
    let mut c = srv.conn();
    let _: () = q(&mut c, &["CONFIG", "SET", "slowlog-max-len", "10"]);
    everything(&mut c);
    for _ in 0..100 {
        let _: String = q(&mut c, &["PING"]);
    }
    assert_eq!(q::<i64>(&mut c, &["SLOWLOG", "LEN"]), 10);
    assert_eq!(entries(&mut c, "5").len(), 5);
    assert_eq!(entries(&mut c, "0").len(), 0);
    let all = entries(&mut c, "-1");
    assert_eq!(all.len(), 10);
    // Newest first, ids consecutive.
    assert!(all.windows(2).all(|w| w[0].0 == w[1].0 + 1));
    let last_id = all[0].0;
    let _: () = q(&mut c, &["SLOWLOG", "RESET"]);
    let after = entries(&mut c, "10");
    assert_eq!(after.len(), 1, "the GET after RESET is logged");
    assert!(after[0].0 > last_id, "ids go on after RESET");
    // A smaller maximum trims on the next entry.
    let _: () = q(&mut c, &["CONFIG", "SET", "slowlog-max-len", "1"]);
    assert_eq!(entries(&mut c, "-1").len(), 1);
}

#[test]
fn argument_errors() {
    let srv = server();
    let mut c = srv.conn();
    for bad in ["-2", "-222", "x"] {
        assert_eq!(
            err(&mut c, &["SLOWLOG", "GET", bad]),
            "ERR count should be greater than or equal to -1"
        );
    }
    assert_eq!(
        err(&mut c, &["SLOWLOG", "GET", "1", "2"]),
        "ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP."
    );
    assert_eq!(
        err(&mut c, &["SLOWLOG", "LEN", "1"]),
        "ERR wrong number of arguments for 'slowlog|len' command"
    );
    assert_eq!(err(&mut c, &["SLOWLOG", "FOO"]), "ERR unknown subcommand 'FOO'. Try SLOWLOG HELP.");
    assert_eq!(
        err(&mut c, &["LATENCY", "HELP", "xxx"]),
        "ERR wrong number of arguments for 'latency|help' command"
    );
    assert_eq!(
        err(&mut c, &["LATENCY", "GRAPH", "command"]),
        "ERR No samples available for event 'command'"
    );
}

#[test]
fn long_commands_are_trimmed() {
    let srv = server();
    let mut c = srv.conn();
    everything(&mut c);
    let mut sadd = vec!["SADD".to_string(), "set".to_string()];
    sadd.extend((3..=33).map(|i| i.to_string()));
    let refs: Vec<&str> = sadd.iter().map(String::as_str).collect();
    let _: i64 = q(&mut c, &refs);
    let long = "A".repeat(129);
    let _: i64 = q(&mut c, &["SADD", "set", "foo", &long]);
    let args = args_of(&mut c);
    let logged = &args[1];
    assert_eq!(logged.len(), 32);
    assert_eq!(logged[30], "31");
    assert_eq!(logged[31], "... (2 more arguments)");
    assert_eq!(args[0][3], format!("{}... (1 more bytes)", "A".repeat(128)));
}

#[test]
fn secrets_are_redacted() {
    let srv = server();
    let mut c = srv.conn();
    everything(&mut c);
    let _: () = q(&mut c, &["CONFIG", "SET", "masterauth", "", "maxmemory", "0"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "requirepass", "pw"]);
    let _: () = q(&mut c, &["AUTH", "pw"]);
    let _: () = q(&mut c, &["AUTH", "default", "pw"]);
    let _: Value = q(&mut c, &["HELLO", "2", "AUTH", "default", "pw", "SETNAME", "x"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "requirepass", ""]);
    let args = args_of(&mut c);
    assert_eq!(args[0], ["CONFIG", "SET", "requirepass", "(redacted)"]);
    assert_eq!(args[1], ["HELLO", "2", "AUTH", "(redacted)", "(redacted)", "SETNAME", "x"]);
    assert_eq!(args[2], ["AUTH", "(redacted)", "(redacted)"]);
    assert_eq!(args[3], ["AUTH", "(redacted)"]);
    assert_eq!(args[4], ["CONFIG", "SET", "requirepass", "(redacted)"]);
    assert_eq!(args[5], ["CONFIG", "SET", "masterauth", "(redacted)", "maxmemory", "0"]);
    // AUTH refused for its syntax is logged as sent, like Redis.
    assert_eq!(err(&mut c, &["AUTH", "a", "b", "c"]), "ERR syntax error");
    assert_eq!(args_of(&mut c)[0], ["AUTH", "a", "b", "c"]);
}

#[test]
fn exec_scripts_and_blocked_commands() {
    let srv = server();
    let mut c = srv.conn();
    everything(&mut c);
    // EXEC itself is not logged; what it ran is.
    let _: () = redis::pipe().atomic().cmd("SET").arg("a").arg("1").query(&mut c).unwrap();
    // A script's commands are logged with the script's pseudo-client.
    let _: () = q(&mut c, &["EVAL", "redis.call('set', 'b', '2')", "0"]);
    let e = entries(&mut c, "-1");
    let names: Vec<&str> = e.iter().map(|e| e.2[0].as_str()).collect();
    assert_eq!(names, ["EVAL", "set", "SET", "MULTI", "SLOWLOG"]);
    assert_eq!(e[1].3, "?:0");
    // A blocked command is logged once, when it is served, as the client sent it.
    let mut waiter = srv.conn();
    let _: () = q(&mut c, &["SLOWLOG", "RESET"]);
    let handle = std::thread::spawn(move || {
        let got: (String, String) = q(&mut waiter, &["BLPOP", "l", "0"]);
        got
    });
    wait_blocked(&mut c, 1);
    let before = args_of(&mut c);
    assert!(before.iter().all(|a| a[0] != "BLPOP"), "the blocked BLPOP is not logged yet");
    let _: i64 = q(&mut c, &["LPUSH", "l", "x"]);
    assert_eq!(handle.join().unwrap(), ("l".to_string(), "x".to_string()));
    let args = args_of(&mut c);
    assert_eq!(args[1], ["LPUSH", "l", "x"]);
    assert_eq!(args[0], ["BLPOP", "l", "0"]);
}

#[test]
fn latency_monitor_events() {
    let srv = server();
    let mut c = srv.conn();
    // Off (threshold 0) by default: nothing is recorded.
    let _: () = q(&mut c, &["DEBUG", "SLEEP", "0.05"]);
    assert_eq!(q::<Vec<Value>>(&mut c, &["LATENCY", "LATEST"]), vec![]);
    let doctor: String = q(&mut c, &["LATENCY", "DOCTOR"]);
    assert!(doctor.starts_with("I'm sorry, Dave, I can't do that."), "{doctor}");
    let _: () = q(&mut c, &["CONFIG", "SET", "latency-monitor-threshold", "20"]);
    let _: () = q(&mut c, &["DEBUG", "SLEEP", "0.05"]);
    let _: String = q(&mut c, &["PING"]);
    let latest: Vec<(String, i64, i64, i64)> = q(&mut c, &["LATENCY", "LATEST"]);
    assert_eq!(latest.len(), 1);
    let (event, time, ms, max) = &latest[0];
    assert_eq!(event, "command");
    assert!(*ms >= 50 && ms == max, "{ms} {max}");
    let history: Vec<(i64, i64)> = q(&mut c, &["LATENCY", "HISTORY", "command"]);
    assert_eq!(history, vec![(*time, *ms)]);
    assert_eq!(q::<Vec<Value>>(&mut c, &["LATENCY", "HISTORY", "nosuch"]), vec![]);
    let graph: String = q(&mut c, &["LATENCY", "GRAPH", "command"]);
    let first = graph.lines().next().unwrap();
    assert_eq!(first, format!("command - high {ms} ms, low {ms} ms (all time high {ms} ms)"));
    assert_eq!(graph.lines().nth(1).unwrap(), "-".repeat(80));
    let doctor: String = q(&mut c, &["LATENCY", "DOCTOR"]);
    assert!(doctor.contains("1. command: 1 latency spikes"), "{doctor}");
    assert_eq!(q::<i64>(&mut c, &["LATENCY", "RESET", "nosuch"]), 0);
    assert_eq!(q::<i64>(&mut c, &["LATENCY", "RESET"]), 1);
    assert_eq!(q::<Vec<Value>>(&mut c, &["LATENCY", "LATEST"]), vec![]);
}

#[test]
fn latency_histograms_and_latencystats() {
    let srv = server();
    let mut c = srv.conn();
    let _: () = q(&mut c, &["CONFIG", "RESETSTAT"]);
    let _: () = q(&mut c, &["SET", "a", "b"]);
    let _: () = q(&mut c, &["SET", "c", "d"]);
    let _: i64 = q(&mut c, &["CLIENT", "ID"]);
    let h = pairs(&q(&mut c, &["LATENCY", "HISTOGRAM", "set", "nosuch", "client"]));
    let names: Vec<&str> = h.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["set", "client|id"]);
    let set = pairs(&h[0].1);
    assert_eq!(set[0].0, "calls");
    assert_eq!(int(&set[0].1), 2);
    assert_eq!(set[1].0, "histogram_usec");
    let buckets = pairs(&set[1].1);
    assert_eq!(int(&buckets.last().unwrap().1), 2, "cumulative: the last bucket holds every call");
    let all = pairs(&q(&mut c, &["LATENCY", "HISTOGRAM"]));
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["client|id", "config|resetstat", "latency|histogram", "set"]);
    let info: String = q(&mut c, &["INFO", "latencystats"]);
    let line = info.lines().find(|l| l.starts_with("latency_percentiles_usec_set:")).unwrap();
    let parts: Vec<&str> = line.split([':', ',']).collect();
    assert_eq!(parts.len(), 4, "{line}");
    assert!(parts[1].starts_with("p50=") && parts[3].starts_with("p99.9="), "{line}");
    let _: () = q(&mut c, &["CONFIG", "SET", "latency-tracking-info-percentiles", "0 12.5 100"]);
    let info: String = q(&mut c, &["INFO", "latencystats"]);
    let line = info.lines().find(|l| l.starts_with("latency_percentiles_usec_set:")).unwrap();
    assert!(line.contains(":p0=") && line.contains(",p12.5=") && line.contains(",p100="));
    // Off: nothing new is recorded, and INFO shows no percentiles.
    let _: () = q(&mut c, &["CONFIG", "SET", "latency-tracking", "no"]);
    let _: () = q(&mut c, &["SET", "a", "b"]);
    let info: String = q(&mut c, &["INFO", "latencystats"]);
    assert_eq!(info.trim(), "# Latencystats");
    let _: () = q(&mut c, &["CONFIG", "SET", "latency-tracking", "yes"]);
    let h = pairs(&q(&mut c, &["LATENCY", "HISTOGRAM", "set"]));
    assert_eq!(int(&pairs(&h[0].1)[0].1), 2);
}

#[test]
fn a_blocked_command_that_times_out_is_logged() {
    let srv = server();
    let mut c = srv.conn();
    everything(&mut c);
    let _: Value = q(&mut c, &["BLPOP", "nothing", "0.05"]);
    let args = args_of(&mut c);
    assert_eq!(args[0], ["BLPOP", "nothing", "0.05"]);
    let h = pairs(&q(&mut c, &["LATENCY", "HISTOGRAM", "blpop"]));
    assert_eq!(int(&pairs(&h[0].1)[0].1), 1);
}
