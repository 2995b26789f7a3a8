//! MEMORY: HELP, DOCTOR, STATS, MALLOC-STATS, PURGE (USAGE is covered by the type families).

mod common;

use common::TestServer;

const EMPTY_DOCTOR: &str = "Hi Sam, this instance is empty or is using very little memory, my \
    issues detector can't be used in these conditions. Please, leave for your mission on Earth \
    and fill it with some data. The new Sam and I will be back to our programming as soon as I \
    finished rebooting.\n";

#[test]
fn help_lists_the_subcommands_like_redis() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let lines: Vec<String> = redis::cmd("MEMORY").arg("HELP").query(&mut c).unwrap();
    assert_eq!(lines.len(), 14);
    assert_eq!(
        lines[0],
        "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    );
    assert_eq!(lines[1], "DOCTOR");
    assert_eq!(lines[9], "USAGE <key> [SAMPLES <count>]");
    assert_eq!(lines[13], "    Prints this help.");
}

#[test]
fn doctor_purge_and_errors() {
    let srv = TestServer::start(&[]);
    let mut raw = srv.raw();
    let doctor = raw.cmd(&["MEMORY", "DOCTOR"]);
    assert_eq!(
        doctor,
        format!("${}\r\n{EMPTY_DOCTOR}\r\n", EMPTY_DOCTOR.len()).into_bytes()
    );
    assert_eq!(raw.cmd(&["MEMORY", "PURGE"]), b"+OK\r\n");
    assert_eq!(
        raw.cmd(&["MEMORY", "STATS", "x"]),
        b"-ERR wrong number of arguments for 'memory|stats' command\r\n"
    );
    assert_eq!(
        raw.cmd(&["MEMORY", "FOO"]),
        b"-ERR unknown subcommand 'FOO'. Try MEMORY HELP.\r\n"
    );
    let stats = raw.cmd(&["MEMORY", "MALLOC-STATS"]);
    assert!(String::from_utf8_lossy(&stats).contains("allocated: "));
}

#[test]
fn stats_fields_and_values() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let () = redis::cmd("SET").arg("a").arg("1").query(&mut c).unwrap();
    let () = redis::cmd("SET")
        .arg("b")
        .arg("2")
        .arg("EX")
        .arg("100")
        .query(&mut c)
        .unwrap();
    let () = redis::cmd("SELECT").arg(3).query(&mut c).unwrap();
    let () = redis::cmd("SET").arg("c").arg("3").query(&mut c).unwrap();
    let v: Vec<redis::Value> = redis::cmd("MEMORY").arg("STATS").query(&mut c).unwrap();
    let names: Vec<String> = v
        .iter()
        .step_by(2)
        .map(|n| redis::from_redis_value(n).unwrap())
        .collect();
    let expected = [
        "peak.allocated",
        "total.allocated",
        "startup.allocated",
        "replication.backlog",
        "clients.slaves",
        "clients.normal",
        "cluster.links",
        "aof.buffer",
        "lua.caches",
        "functions.caches",
        "db.0",
        "db.3",
        "overhead.total",
        "keys.count",
        "keys.bytes-per-key",
        "dataset.bytes",
        "dataset.percentage",
        "peak.percentage",
        "allocator.allocated",
        "allocator.active",
        "allocator.resident",
        "allocator-fragmentation.ratio",
        "allocator-fragmentation.bytes",
        "allocator-rss.ratio",
        "allocator-rss.bytes",
        "rss-overhead.ratio",
        "rss-overhead.bytes",
        "fragmentation",
        "fragmentation.bytes",
    ];
    assert_eq!(names, expected);
    let field = |name: &str| -> &redis::Value {
        let i = names.iter().position(|n| n == name).unwrap();
        &v[2 * i + 1]
    };
    let int = |name: &str| -> i64 { redis::from_redis_value(field(name)).unwrap() };
    assert_eq!(int("keys.count"), 3);
    let total = int("total.allocated");
    assert!(total > 0 && total <= int("peak.allocated"));
    assert!(int("startup.allocated") > 0 && int("startup.allocated") < total);
    let db0: Vec<redis::Value> = redis::from_redis_value(field("db.0")).unwrap();
    let main: i64 = redis::from_redis_value(&db0[1]).unwrap();
    let expires: i64 = redis::from_redis_value(&db0[3]).unwrap();
    assert!(main > expires && expires > 0);
}
