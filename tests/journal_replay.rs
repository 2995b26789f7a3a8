//! The journal is a faithful write stream: replaying it into an empty server rebuilds the same
//! keyspace.
//!
//! In process, with the library: a consumer is attached to `server.state.journal`, a seeded
//! random workload runs through `dispatch::execute` (relative expiries, deletes, writes in
//! several databases, and commands of every family: those not implemented on a branch just
//! answer "unknown command" and write nothing), the journal bytes are parsed back with
//! `RequestParser` and executed on a fresh `Server`, and both keyspaces are compared key by key
//! (type, value bytes, expiry).
//!
//! To cover a new command, add it to `workload_command`; to cover a new type, add its variant
//! to `render`.

use std::rc::Rc;

use ferrodis::config::Config;
use ferrodis::dispatch::execute;
use ferrodis::keyspace::{Entry, Value};
use ferrodis::protocol::decode::ArgSource;
use ferrodis::protocol::{ReplyBuf, RequestParser, Resp};
use ferrodis::server::client::{Client, ClientInfo, ClientShared};
use ferrodis::server::Server;

fn new_client(id: u64) -> Client {
    let addr = "127.0.0.1:1".parse().unwrap();
    let shared = Rc::new(ClientShared::new(ClientInfo::new(id, addr, addr, -1)));
    Client::new(id, shared, true)
}

/// A server plus one client, driven synchronously.
struct Harness {
    server: Server,
    client: Client,
    out: ReplyBuf,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            server: Server::new(Config::default()),
            client: new_client(1),
            out: ReplyBuf::new(Resp::V2),
        }
    }

    /// Runs one command and returns its reply bytes.
    fn run(&mut self, argv: &[Vec<u8>]) -> Vec<u8> {
        let args: Vec<&[u8]> = argv.iter().map(|a| a.as_slice()).collect();
        self.out.buf.clear();
        execute(&mut self.server, &mut self.client, &mut self.out, &args);
        self.out.buf.to_vec()
    }
}

/// Splits a journal byte stream into commands.
fn parse_stream(bytes: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut p = RequestParser::default();
    let mut cmds = Vec::new();
    while p.parse(bytes, false).expect("journal must be valid RESP") {
        let argv = match p.args_source() {
            ArgSource::Buffer => p
                .ranges()
                .iter()
                .map(|r| bytes[r.clone()].to_vec())
                .collect(),
            ArgSource::Inline => panic!("journal must not contain inline commands"),
        };
        cmds.push(argv);
    }
    assert_eq!(
        p.consumed(),
        bytes.len(),
        "journal ends with a partial command"
    );
    cmds
}

/// Replays journal commands. MULTI/EXEC only mark atomic groups; replaying alone, their bodies
/// are run in order (and must be balanced).
fn replay(cmds: &[Vec<Vec<u8>>]) -> Harness {
    let mut h = Harness::new();
    // Replay like a load or a replica: the stream's own DELs remove expired keys, the clock
    // does not. Otherwise an absolute expiry that has passed since it was logged would delete a
    // key that a later PEXPIREAT in the stream extended.
    h.server.ks.expire_on_access = false;
    h.server.ks.loading = true;
    let mut depth = 0;
    for argv in cmds {
        let name = String::from_utf8_lossy(&argv[0]).to_ascii_uppercase();
        match name.as_str() {
            "MULTI" => {
                assert_eq!(depth, 0, "nested MULTI in the journal");
                depth += 1;
            }
            "EXEC" => {
                assert_eq!(depth, 1, "EXEC without MULTI in the journal");
                depth -= 1;
            }
            _ => {
                let reply = h.run(argv);
                assert!(
                    !reply.starts_with(b"-"),
                    "journal command {:?} failed on replay: {}",
                    show(argv),
                    String::from_utf8_lossy(&reply)
                );
            }
        }
    }
    assert_eq!(depth, 0, "unterminated MULTI in the journal");
    h.server.ks.expire_on_access = true;
    h.server.ks.loading = false;
    h
}

fn show(argv: &[Vec<u8>]) -> Vec<String> {
    argv.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// A type-independent rendering of a value (its bytes, not its encoding: a replica may encode
/// differently).
fn render(v: &Value) -> String {
    #[allow(unreachable_patterns)]
    match v {
        Value::Str(s) => format!("string:{:?}", s.as_bytes()),
        other => format!("{other:?}"),
    }
}

/// Every live key of every database: (db, key) -> (value, expiry).
fn snapshot(server: &Server, now: u64) -> Vec<(usize, Vec<u8>, String, u64)> {
    let mut out = Vec::new();
    for (i, db) in server.ks.dbs.iter().enumerate() {
        for (k, e) in db.main.iter() {
            let e: &Entry = e;
            if !db.is_expired(k, now) {
                out.push((i, k.to_vec(), render(&e.value), db.expire_of(k).unwrap_or(0)));
            }
        }
    }
    out.sort();
    out
}

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len())]
    }
}

const KEYS: &[&str] = &["a", "b", "c", "d", "e", "n", "bits"];
const VALS: &[&str] = &[
    "v",
    "",
    "1",
    "-7",
    "12345678901234567890",
    "3.25",
    "hello world",
];

/// One random command. Relative expiries are kept either tiny (so some keys expire during the
/// run, exercising lazy-expiry DELs) or long.
fn workload_command(r: &mut Rng) -> Vec<String> {
    let k = r.pick(KEYS);
    let k2 = r.pick(KEYS);
    let v = r.pick(VALS);
    let ttl = if r.below(4) == 0 {
        (1 + r.below(3)).to_string()
    } else {
        "100000".to_string()
    };
    let c: Vec<&str> = match r.below(32) {
        0..=5 => vec!["SET", k, v],
        6 => vec!["SET", k, v, "PX", &ttl],
        7 => vec!["SET", k, v, "EX", "1000"],
        8 => vec!["SET", k, v, "NX"],
        9 => vec!["SET", k, v, "XX", "KEEPTTL"],
        10 => vec!["SET", k, v, "GET"],
        11 => vec!["DEL", k, k2],
        12 => vec!["GET", k],
        13 => vec!["SELECT", r.pick(&["0", "1", "2"])],
        14 => vec!["INCRBYFLOAT", "n", r.pick(&["1.5", "0.1", "-3"])],
        15 => vec!["INCR", "n"],
        16 => vec!["APPEND", k, v],
        17 => vec!["SETEX", k, "1000", v],
        18 => vec!["PEXPIRE", k, &ttl],
        19 => vec!["EXPIRE", k, r.pick(&["1000", "-1", "0"])],
        20 => vec!["GETEX", k, r.pick(&["EX", "PX"]), "100000"],
        21 => vec!["GETDEL", k],
        22 => vec!["SETBIT", "bits", r.pick(&["1", "77", "300"]), "1"],
        23 => vec!["RENAME", k, k2],
        24 => vec!["COPY", k, k2, "DB", r.pick(&["0", "1"])],
        25 => vec!["MOVE", k, r.pick(&["0", "1", "2"])],
        26 => vec!["SWAPDB", "0", r.pick(&["1", "2"])],
        27 => vec!["PERSIST", k],
        28 => vec!["MSET", k, v, k2, v],
        29 => vec!["PFADD", "hll", k, v],
        30 => vec!["PFCOUNT", "hll"],
        31 => vec!["PFMERGE", "hll2", "hll"],
        _ => vec!["BITFIELD", "bits", "INCRBY", "u8", "0", "7"],
    };
    c.into_iter().map(String::from).collect()
}

fn run_workload(seed: u64, steps: usize) {
    let mut h = Harness::new();
    h.server.state.journal.attach();
    let mut r = Rng(seed);
    let mut journal = Vec::new();
    let mut ran = 0;
    for i in 0..steps {
        let argv: Vec<Vec<u8>> = workload_command(&mut r)
            .into_iter()
            .map(String::into_bytes)
            .collect();
        let reply = h.run(&argv);
        if !reply.starts_with(b"-ERR unknown command") {
            ran += 1;
        }
        // Effects are in the journal by the time the reply exists: drain after every command.
        journal.extend_from_slice(&h.server.state.journal.take_pending());
        if i % 50 == 49 {
            std::thread::sleep(std::time::Duration::from_millis(3));
        }
    }
    assert_eq!(
        journal.len() as u64,
        h.server.state.journal.offset(),
        "offset counts every byte"
    );
    let cmds = parse_stream(&journal);
    let replayed = replay(&cmds);
    let now = ferrodis::util::time::now_ms();
    let a = snapshot(&h.server, now);
    let b = snapshot(&replayed.server, now);
    eprintln!(
        "seed {seed}: {ran}/{steps} commands known, journal {} bytes / {} commands, {} keys",
        journal.len(),
        cmds.len(),
        a.len()
    );
    if a != b {
        let only_a: Vec<_> = a.iter().filter(|x| !b.contains(x)).collect();
        let only_b: Vec<_> = b.iter().filter(|x| !a.contains(x)).collect();
        panic!("seed {seed}: replay differs\noriginal only: {only_a:?}\nreplay only:   {only_b:?}");
    }
}

#[test]
fn replayed_journal_rebuilds_the_keyspace() {
    for seed in [1u64, 7, 42, 2024, 31337] {
        run_workload(seed, 400);
    }
}

#[test]
fn journal_selects_databases_and_makes_expiry_absolute() {
    let mut h = Harness::new();
    h.server.state.journal.attach();
    let argv = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
    h.run(&argv(&["SET", "k", "v", "EX", "1000"]));
    h.run(&argv(&["SELECT", "3"]));
    h.run(&argv(&["SET", "k", "w"]));
    h.run(&argv(&["GET", "k"]));
    let cmds = parse_stream(&h.server.state.journal.take_pending());
    let names: Vec<String> = cmds
        .iter()
        .map(|c| String::from_utf8_lossy(&c[0]).to_uppercase())
        .collect();
    assert_eq!(names, ["SELECT", "SET", "SELECT", "SET"]);
    assert_eq!(cmds[0][1], b"0");
    assert_eq!(cmds[2][1], b"3");
    let set = show(&cmds[1]);
    assert_eq!(&set[..3], ["SET", "k", "v"]);
    assert_eq!(
        set[3].to_uppercase(),
        "PXAT",
        "relative EX must become absolute PXAT: {set:?}"
    );
    let at: u64 = set[4].parse().unwrap();
    let now = ferrodis::util::time::now_ms();
    assert!(at > now + 990_000 && at <= now + 1_000_000, "{at} vs {now}");
}
