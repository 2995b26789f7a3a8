//! The `commands` property, shared by the fuzz target and by `tests/fuzz_corpus.rs` (which
//! replays the corpus under plain `cargo test` on stable).
//!
//! Input: any bytes, read as a sequence of commands with arguments drawn from the command
//! table and from words that matter to Redis's parsers (numbers at their limits, option
//! names, ranges, IDs), or taken raw from the input. They run in order against one
//! in-process server, as one client's pipeline. The property: no command handler panics. The
//! dispatcher turns a panic into `ERR internal error while executing '...'` so that a bug in
//! one command never takes the server down; here that reply is the failure, since a client of
//! Redis would have got a real answer.
//!
//! Left out ([`SKIPPED`]): commands that stop the process, touch files, the network or other
//! clients, block, or run scripts, which need a running server.

use std::net::SocketAddr;
use std::rc::Rc;

use ferrodis::commands::{registry, CommandSpec};
use ferrodis::config::Config;
use ferrodis::dispatch::execute;
use ferrodis::protocol::{ReplyBuf, Resp};
use ferrodis::server::client::{Client, ClientInfo, ClientShared};
use ferrodis::server::Server;

/// Commands (and containers) that need a live server or act outside the keyspace.
const SKIPPED: &[&str] = &[
    // The process, files, the network, replication.
    "shutdown", "debug", "save", "bgsave", "bgrewriteaof", "replicaof", "slaveof", "sync",
    "psync", "replconf", "migrate", "restore-asking", "failover", "cluster", "module", "config",
    "acl",
    // Other clients, or a connection's own state the in-process client does not have.
    "monitor", "client", "quit", "reset", "auth", "hello", "subscribe", "psubscribe",
    "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe",
    // Blocking, or waiting for what never comes here. (XREAD and XREADGROUP are in: they
    // block only with BLOCK, which no word here gives.)
    "wait", "waitaof", "blpop", "brpop", "blmove", "brpoplpush", "blmpop", "bzpopmin",
    "bzpopmax", "bzmpop",
    // Scripts: arbitrary bodies may loop, and a busy script serves the listener.
    "script", "function", "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro",
];

/// Arguments that reach Redis's parsers' edge cases.
const WORDS: &[&str] = &[
    "k", "k2", "{k}3", "", "0", "1", "-1", "2", "3", "10", "-10", "100", "1000000",
    "4294967296", "9223372036854775807", "-9223372036854775808", "18446744073709551615",
    "18446744073709551616", "1.5", "-2.5", "1e308", "-1e308", "inf", "+inf", "-inf", "nan",
    "(1", "[a", "(a", "-", "+", "*", "$", ">", "0-0", "0-1", "1-1", "1-*", "18446744073709551615-18446744073709551615",
    "LIMIT", "COUNT", "WITHSCORES", "BY", "GET", "STORE", "MATCH", "TYPE", "EX", "PX",
    "EXAT", "PXAT", "PERSIST", "NX", "XX", "GT", "LT", "KEEPTTL", "CH", "INCR", "REV",
    "BYSCORE", "BYLEX", "ASC", "DESC", "ALPHA", "WEIGHTS", "AGGREGATE", "SUM", "MIN", "MAX",
    "BEFORE", "AFTER", "LEFT", "RIGHT", "MAXLEN", "MINID", "~", "=", "GROUP", "MKSTREAM",
    "ENTRIESREAD", "JUSTID", "IDLE", "TIME", "RETRYCOUNT", "FORCE", "STREAMS", "NOACK",
    "CONSUMERS", "CREATE", "SETID", "DESTROY", "CREATECONSUMER", "DELCONSUMER", "FULL",
    "STOREDIST", "WITHCOORD", "WITHDIST", "WITHHASH", "FROMMEMBER", "FROMLONLAT",
    "BYRADIUS", "BYBOX", "ANY", "m", "km", "ft", "mi", "OVERFLOW", "WRAP", "SAT", "FAIL",
    "u8", "i64", "u63", "i1", "#1", "#-1", "AND", "OR", "XOR", "NOT", "BIT", "BYTE", "IDX",
    "LEN", "MINMATCHLEN", "WITHMATCHLEN", "RANK", "REPLACE", "ABSTTL", "FREQ", "DB",
    "COPY", "KEYS", "NOMKSTREAM", "WITHVALUES", "SAMPLES", "LSET", "0.0001", "90", "-180",
    "85.05112878", "a", "b", "field", "value", "member",
];

fn spec_names() -> Vec<&'static CommandSpec> {
    registry().all.iter().copied().filter(|s| !SKIPPED.contains(&s.name)).collect()
}

/// Reads the input as commands: a byte picks the command, a byte the number of arguments
/// (0 to 7); each argument is a byte below 240 picking a word, or 240 and up: raw bytes, as
/// many as the next byte says (up to 31). A container's first argument is its subcommand.
fn commands(data: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let specs = spec_names();
    let mut it = data.iter().copied();
    let mut out = Vec::new();
    while let (Some(c), Some(n)) = (it.next(), it.next()) {
        let spec = specs[usize::from(c) % specs.len()];
        let mut argv = vec![spec.name.as_bytes().to_vec()];
        if !spec.subcommands.is_empty() {
            let Some(s) = it.next() else { break };
            let sub = &spec.subcommands[usize::from(s) % spec.subcommands.len()];
            argv.push(sub.name.as_bytes().to_vec());
        }
        for _ in 0..n % 8 {
            let Some(t) = it.next() else { break };
            if usize::from(t) < 240 {
                argv.push(WORDS[usize::from(t) % WORDS.len()].as_bytes().to_vec());
            } else {
                let len = usize::from(it.next().unwrap_or(0) % 32);
                argv.push(it.by_ref().take(len).collect());
            }
        }
        out.push(argv);
    }
    out
}

pub fn check(data: &[u8]) {
    let mut cfg = Config::from_args(&[]).expect("default config");
    cfg.set("save", "").expect("save");
    let mut server = Server::new(cfg);
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let shared = Rc::new(ClientShared::new(ClientInfo::new(1, addr, addr, -1)));
    let mut client = Client::new(1, shared, true);
    for argv in commands(data) {
        let mut out = ReplyBuf::new(Resp::V2);
        let args: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        execute(&mut server, &mut client, &mut out, &args);
        let reply = String::from_utf8_lossy(&out.buf);
        assert!(
            !reply.contains("internal error while executing"),
            "{:?} panicked: {reply}",
            args.iter().map(|a| String::from_utf8_lossy(a)).collect::<Vec<_>>()
        );
    }
}
