//! INFO sections and formatting, TIME, DBSIZE, SHUTDOWN.

mod common;

use std::io::Read;
use std::time::Duration;

use common::TestServer;

fn info(c: &mut redis::Connection, args: &[&str]) -> String {
    let mut cmd = redis::cmd("INFO");
    for a in args {
        cmd.arg(*a);
    }
    cmd.query(c).unwrap()
}

fn sections(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("# ")).collect()
}

#[test]
fn default_all_and_selected_sections() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let d = info(&mut c, &[]);
    assert_eq!(
        sections(&d),
        vec![
            "# Server",
            "# Clients",
            "# Memory",
            "# Persistence",
            "# Stats",
            "# Replication",
            "# CPU",
            "# Modules",
            "# Errorstats",
            "# Cluster",
            "# Keyspace"
        ]
    );
    assert_eq!(sections(&info(&mut c, &["default"])), sections(&d));
    let all = info(&mut c, &["all"]);
    assert!(all.contains("# Commandstats\r\n"));
    assert_eq!(sections(&info(&mut c, &["everything"])), sections(&all));
    // Requested order does not matter; output follows Redis's section order.
    assert_eq!(
        sections(&info(&mut c, &["keyspace", "CPU"])),
        vec!["# CPU", "# Keyspace"]
    );
    assert_eq!(info(&mut c, &["nosuch"]), "");
    assert!(d.starts_with("# Server\r\nredis_version:7.0.15\r\n"));
    assert!(d.contains(&format!(
        "ferrodis_version:{}\r\n",
        env!("CARGO_PKG_VERSION")
    )));
    assert!(d.contains("\r\n\r\n# Clients\r\n"));
}

fn field<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .unwrap_or_else(|| panic!("{name} missing"))
}

#[test]
fn fields_have_real_values() {
    let srv = TestServer::start(&["--maxmemory", "100mb"]);
    let mut c = srv.conn();
    let _: () = redis::cmd("SET").arg("a").arg("1").query(&mut c).unwrap();
    let _: () = redis::cmd("SET")
        .arg("b")
        .arg("2")
        .arg("EX")
        .arg("100")
        .query(&mut c)
        .unwrap();
    let t = info(&mut c, &["all"]);
    assert_eq!(field(&t, "tcp_port"), srv.port.to_string());
    assert_eq!(field(&t, "connected_clients"), "1");
    assert_eq!(field(&t, "blocked_clients"), "0");
    // The default, 10000, unless the open-file hard limit is too low for a descriptor a
    // client plus 32 (the server then lowers maxclients to fit, see `server::fdlimit`).
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct we own for the duration of the call.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) }, 0);
    let fit = 10000.min((l.rlim_max as u64).saturating_sub(32));
    assert_eq!(field(&t, "maxclients"), fit.to_string());
    assert_eq!(field(&t, "maxmemory"), "104857600");
    assert_eq!(field(&t, "maxmemory_human"), "100.00M");
    assert_eq!(field(&t, "maxmemory_policy"), "noeviction");
    assert!(field(&t, "used_memory").parse::<u64>().unwrap() > 0);
    assert!(field(&t, "used_memory_rss").parse::<u64>().unwrap() > 0);
    assert_eq!(field(&t, "rdb_changes_since_last_save"), "2");
    assert_eq!(field(&t, "loading"), "0");
    assert_eq!(field(&t, "aof_enabled"), "0");
    assert_eq!(field(&t, "role"), "master");
    assert_eq!(field(&t, "connected_slaves"), "0");
    let replid = field(&t, "master_replid");
    assert_eq!(replid.len(), 40);
    assert!(replid.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(field(&t, "used_cpu_user").contains('.'));
    assert_eq!(field(&t, "db0"), "keys=2,expires=1,avg_ttl=0");
    let set = field(&t, "cmdstat_set");
    assert!(set.starts_with("calls=2,usec="), "{set}");
    assert!(set.ends_with(",rejected_calls=0,failed_calls=0"), "{set}");
}

#[test]
fn errorstats_count_by_code() {
    let srv = TestServer::start(&[]);
    // Raw socket: the redis crate sends its own setup commands on connect.
    let mut r = srv.raw();
    r.cmd(&["NOSUCHCMD"]);
    r.cmd(&["SET", "k", "v", "EX", "x"]);
    r.cmd(&["CONFIG", "RESETSTAT"]);
    r.cmd(&["NOSUCHCMD"]);
    r.cmd(&["SET", "k", "v", "EX", "x"]);
    let t = r.cmd(&["INFO", "errorstats"]);
    let body = "# Errorstats\r\nerrorstat_ERR:count=2\r\n";
    assert_eq!(
        String::from_utf8(t).unwrap(),
        format!("${}\r\n{body}\r\n", body.len())
    );
}

#[test]
fn verbatim_in_resp3() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    if r.cmd(&["HELLO", "3"]).starts_with(b"-") {
        return; // HELLO is built by the connection family; RESP3 checks need it.
    }
    let reply = r.cmd(&["INFO", "cluster"]);
    assert_eq!(
        reply,
        b"=34\r\ntxt:# Cluster\r\ncluster_enabled:0\r\n\r\n".to_vec()
    );
    let reply = r.cmd(&["INFO", "cluster"]);
    assert!(reply.starts_with(b"=34\r\ntxt:"));
}

#[test]
fn time_and_dbsize() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let (secs, us): (u64, u64) = redis::cmd("TIME").query(&mut c).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(secs.abs_diff(now) <= 2);
    assert!(us < 1_000_000);
    let _: () = redis::cmd("SET").arg("a").arg("1").query(&mut c).unwrap();
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 1);
}

#[test]
fn shutdown_variants() {
    let mut srv = TestServer::start(&[]);
    let mut r = srv.raw();
    assert_eq!(
        r.cmd(&["SHUTDOWN", "ABORT"]),
        b"-ERR No shutdown in progress.\r\n".to_vec()
    );
    assert_eq!(
        r.cmd(&["SHUTDOWN", "BOGUS"]),
        b"-ERR syntax error\r\n".to_vec()
    );
    assert_eq!(
        r.cmd(&["SHUTDOWN", "SAVE", "NOSAVE"]),
        b"-ERR syntax error\r\n".to_vec()
    );
    r.send(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n");
    let mut buf = [0u8; 16];
    assert_eq!(r.s.read(&mut buf).unwrap_or(0), 0);
    let child = srv.child.as_mut().unwrap();
    let mut exited = None;
    for _ in 0..100 {
        if let Some(st) = child.try_wait().unwrap() {
            exited = Some(st);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(exited.expect("server exited").success());
}
