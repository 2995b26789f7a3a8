//! MIGRATE: moves keys to another server with RESTORE (Redis `cluster.c`, `migrateCommand`).
//!
//! Like Redis, MIGRATE is synchronous: the event loop blocks on the target (connect, write,
//! read) for at most the given timeout per operation, with plain blocking sockets. Each key
//! becomes a `RESTORE key ttl payload [REPLACE]` (the payload is DUMP's, Redis's format), all
//! pipelined in one write after an optional AUTH and a SELECT. Connections are cached per
//! `host:port` with the database last selected on them (so a later MIGRATE to the same
//! database sends no SELECT), at most 64 of them, and closed after 10 seconds unused by a
//! once-a-second task that runs while the cache holds any (Redis's cron job
//! `migrateCloseTimedoutSockets`). The event loop is one thread, so the cache is a
//! thread-local of this module rather than server state.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::args::{self, is};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};

pub(crate) const COMMANDS: &[CommandSpec] = &[CommandSpec::new(
    "migrate",
    -6,
    WRITE | MOVABLE_KEYS,
    3,
    3,
    1,
    migrate,
)];

/// Most cached connections; one more evicts a random one.
const CACHE_ITEMS: usize = 64;
/// Seconds a cached connection may stay unused.
const CACHE_TTL_SECS: u64 = 10;
/// Longest reply line read from the target (Redis reads into 1024-byte buffers).
const MAX_LINE: usize = 1024;
/// Bytes written to the target per write call.
const WRITE_CHUNK: usize = 64 * 1024;

/// The "database not known" mark of a cached connection. It is -1 as in Redis, which makes a
/// MIGRATE to database -1 send no SELECT on such a connection (the target then answers for the
/// database the connection is on), a quirk kept so that the replies stay Redis's.
const UNKNOWN_DB: i64 = -1;

/// A cached connection to a target.
struct Cached {
    conn: BufReader<TcpStream>,
    /// Database last selected on it, [`UNKNOWN_DB`] when not known.
    db: i64,
    last_use: u64,
}

thread_local! {
    static CACHE: RefCell<HashMap<Vec<u8>, Cached>> = RefCell::new(HashMap::new());
    /// Whether the task closing idle connections is running.
    static REAPER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Closes the cached connections unused for more than 10 seconds (Redis's
/// `migrateCloseTimedoutSockets`).
pub fn close_idle(now_secs: u64) {
    CACHE.with(|c| {
        c.borrow_mut()
            .retain(|_, s| now_secs.saturating_sub(s.last_use) <= CACHE_TTL_SECS)
    });
}

/// Number of cached connections (INFO's `migrate_cached_sockets`), idle ones closed first.
pub fn cached_sockets() -> usize {
    close_idle(crate::util::time::now_secs());
    CACHE.with(|c| c.borrow().len())
}

/// Starts the task that closes idle connections once a second, unless it runs; it ends when
/// the cache is empty. Called from a command, so inside the event loop's `LocalSet`.
fn start_reaper() {
    if REAPER.with(|r| r.replace(true)) {
        return;
    }
    tokio::task::spawn_local(async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            close_idle(crate::util::time::now_secs());
            if CACHE.with(|c| c.borrow().is_empty()) {
                REAPER.with(|r| r.set(false));
                return;
            }
        }
    });
}

fn close(name: &[u8]) {
    CACHE.with(|c| c.borrow_mut().remove(name));
}

/// Parsed MIGRATE arguments.
struct Request<'a> {
    host: &'a [u8],
    port: &'a [u8],
    db: i64,
    timeout: Duration,
    copy: bool,
    replace: bool,
    username: Option<&'a [u8]>,
    password: Option<&'a [u8]>,
    keys: &'a [&'a [u8]],
}

/// Parses the options after the fifth argument, then the timeout and the database, in
/// Redis's order (so the same error wins).
fn parse<'a>(argv: &'a [&'a [u8]]) -> Result<Request<'a>, CmdError> {
    let mut r = Request {
        host: argv[1],
        port: argv[2],
        db: 0,
        timeout: Duration::ZERO,
        copy: false,
        replace: false,
        username: None,
        password: None,
        keys: &argv[3..4],
    };
    let mut j = 6;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        let a = argv[j];
        if is(a, "copy") {
            r.copy = true;
        } else if is(a, "replace") {
            r.replace = true;
        } else if is(a, "auth") && more >= 1 {
            r.password = Some(argv[j + 1]);
            j += 1;
        } else if is(a, "auth2") && more >= 2 {
            r.username = Some(argv[j + 1]);
            r.password = Some(argv[j + 2]);
            j += 2;
        } else if is(a, "keys") {
            if !argv[3].is_empty() {
                return Err(CmdError::err(
                    "When using MIGRATE KEYS option, the key argument must be set to the empty \
                     string",
                ));
            }
            r.keys = &argv[j + 1..];
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let timeout = args::int(argv[5])?;
    r.db = args::int(argv[4])?;
    let ms = if timeout <= 0 { 1000 } else { timeout as u64 };
    r.timeout = Duration::from_millis(ms);
    Ok(r)
}

/// Moves keys to another server.
///
/// ```text
/// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password]
///     [AUTH2 username password] [KEYS key [key ...]]
/// ```
/// Replies `+NOKEY` when none of the keys exists. Without COPY, each key the target accepted
/// is deleted here, and the command propagates as `DEL` of those keys (Redis rewrites it so),
/// since replicas and the log must not migrate anything themselves. A connection that fails
/// before anything was acknowledged is retried once on a fresh connection (a cached one may
/// have been closed by the target), unless the failure was a timeout.
fn migrate(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let req = parse(argv)?;
    let (db, now) = (ctx.db, ctx.now);
    let present: Vec<&[u8]> = req
        .keys
        .iter()
        .copied()
        .filter(|k| ctx.ks.lookup_read(db, k, now).is_some())
        .collect();
    if present.is_empty() {
        ctx.out.simple("NOKEY");
        return Ok(());
    }
    let mut name = req.host.to_vec();
    name.push(b':');
    name.extend_from_slice(req.port);
    let mut may_retry = true;
    loop {
        match attempt(ctx, &req, &name, &present) {
            Attempt::Done(r) => return r,
            Attempt::Failed { writing, timed_out } => {
                close(&name);
                if may_retry && !timed_out {
                    may_retry = false;
                    continue;
                }
                let what = if writing { "writing" } else { "reading" };
                let msg = format!("IOERR error or timeout {what} to target instance");
                return Err(CmdError::Msg(msg.into()));
            }
        }
    }
}

/// How one try went: finished (with the command's result), or failed on the socket with
/// nothing acknowledged (retry or report).
enum Attempt {
    Done(CmdResult),
    Failed { writing: bool, timed_out: bool },
}

/// One try: connect (or reuse), send, read the replies, delete what the target took.
fn attempt(ctx: &mut Ctx<'_>, req: &Request<'_>, name: &[u8], present: &[&[u8]]) -> Attempt {
    let last_db = match connection(name, req) {
        Ok(db) => db,
        Err(None) => {
            let msg = "IOERR error or timeout connecting to the client";
            return Attempt::Done(Err(CmdError::raw(msg)));
        }
        // Redis's blocking connect reports a refused or timed-out connection only when the
        // first write fails, so it is answered (and retried) as a write error.
        Err(Some(e)) => {
            return Attempt::Failed {
                writing: true,
                timed_out: is_timeout(&e),
            }
        }
    };
    let select = last_db != req.db;
    let (buf, sent) = build_commands(ctx, req, select, present);
    if let Err(e) = with_conn(name, |c| write_all(c.get_mut(), &buf)) {
        return Attempt::Failed {
            writing: true,
            timed_out: is_timeout(&e),
        };
    }
    let mut first_error: Option<Vec<u8>> = None;
    for wanted in [req.password.is_some(), select] {
        if !wanted {
            continue;
        }
        match with_conn(name, read_line) {
            Ok(line) => {
                if line.first() == Some(&b'-') && first_error.is_none() {
                    first_error = Some(line);
                }
            }
            Err(e) => {
                return Attempt::Failed {
                    writing: false,
                    timed_out: is_timeout(&e),
                }
            }
        }
    }
    let mut deleted: Vec<&[u8]> = Vec::new();
    let mut socket_error = None;
    let mut target_error: Option<CmdError> = None;
    for (j, key) in sent.iter().enumerate() {
        let line = match with_conn(name, read_line) {
            Ok(line) => line,
            Err(e) => {
                socket_error = Some((j, is_timeout(&e)));
                break;
            }
        };
        let err = first_error
            .clone()
            .or_else(|| (line.first() == Some(&b'-')).then_some(line));
        if let Some(err) = err {
            if target_error.is_none() {
                set_db(name, UNKNOWN_DB);
                let text = String::from_utf8_lossy(&err[1..]).into_owned();
                let msg = format!("Target instance replied with error: {text}");
                target_error = Some(CmdError::err(msg));
            }
        } else if !req.copy {
            delete_key(ctx, key);
            deleted.push(key);
        }
    }
    if let Some((j, timed_out)) = socket_error {
        if target_error.is_none() && j == 0 {
            return Attempt::Failed {
                writing: false,
                timed_out,
            };
        }
        close(name);
    }
    if !deleted.is_empty() {
        let mut del: Vec<&[u8]> = vec![b"DEL"];
        del.extend_from_slice(&deleted);
        ctx.propagate(&del);
    }
    if let Some(e) = target_error {
        return Attempt::Done(Err(e));
    }
    if socket_error.is_some() {
        let msg = "IOERR error or timeout reading to target instance";
        return Attempt::Done(Err(CmdError::raw(msg)));
    }
    set_db(name, req.db);
    ctx.out.ok();
    Attempt::Done(Ok(()))
}

/// Deletes a migrated key here, as Redis does for each key the target acknowledged.
fn delete_key(ctx: &mut Ctx<'_>, key: &[u8]) {
    let db = ctx.db;
    ctx.ks.db(db).remove(key);
    ctx.signal_modified_key(db, key);
    ctx.notify('g', "del", db, key);
    ctx.dirty(1);
}

/// The AUTH, SELECT and RESTORE commands of one try, and the keys sent (keys that expired
/// since they were looked up are left out).
fn build_commands<'k>(
    ctx: &mut Ctx<'_>,
    req: &Request<'_>,
    select: bool,
    present: &[&'k [u8]],
) -> (Vec<u8>, Vec<&'k [u8]>) {
    let mut out = Vec::new();
    if let Some(pass) = req.password {
        let auth: Vec<&[u8]> = match req.username {
            Some(user) => vec![b"AUTH", user, pass],
            None => vec![b"AUTH", pass],
        };
        command(&mut out, &auth);
    }
    if select {
        let db = req.db.to_string();
        command(&mut out, &[b"SELECT", db.as_bytes()]);
    }
    let opts = super::keys::dump_options(ctx.srv);
    let now_ms = crate::util::time::now_ms();
    let mut sent = Vec::with_capacity(present.len());
    for &key in present {
        let table = &ctx.ks.dbs[ctx.db];
        let Some(entry) = table.peek(key) else {
            continue;
        };
        let ttl = match table.expire_of(key) {
            None => 0,
            Some(at) if at < now_ms => continue,
            Some(at) => (at - now_ms).max(1),
        };
        let payload = crate::snapshot::dump::payload(&entry.value, opts);
        let ttl = ttl.to_string();
        let mut restore: Vec<&[u8]> = vec![b"RESTORE", key, ttl.as_bytes(), &payload];
        if req.replace {
            restore.push(b"REPLACE");
        }
        command(&mut out, &restore);
        sent.push(key);
    }
    (out, sent)
}

/// Appends one command in RESP (an array of bulk strings).
fn command(out: &mut Vec<u8>, argv: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", argv.len()).as_bytes());
    for a in argv {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// The cached connection to `name` (its last selected database), or a new one, connected
/// within the timeout. Fails with `None` when the address does not resolve, with the error
/// when connecting fails. Each use refreshes the connection's timeouts and last-use time.
fn connection(name: &[u8], req: &Request<'_>) -> Result<i64, Option<std::io::Error>> {
    let now = crate::util::time::now_secs();
    let cached = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let s = c.get_mut(name)?;
        s.last_use = now;
        Some(s.db)
    });
    if let Some(db) = cached {
        with_conn(name, |c| set_timeouts(c.get_ref(), req.timeout)).map_err(Some)?;
        return Ok(db);
    }
    let stream = connect(req)?;
    set_timeouts(&stream, req.timeout).map_err(Some)?;
    let _ = stream.set_nodelay(true);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CACHE_ITEMS {
            let victim = c.keys().nth(rand::random::<usize>() % c.len()).cloned();
            if let Some(v) = victim {
                c.remove(&v);
            }
        }
        let conn = BufReader::new(stream);
        c.insert(
            name.to_vec(),
            Cached {
                conn,
                db: UNKNOWN_DB,
                last_use: now,
            },
        );
    });
    start_reaper();
    Ok(UNKNOWN_DB)
}

/// Connects to the target's first address within the timeout. The port is read as C's
/// `atoi` reads it (a bad one gives port 0, which fails to connect). `Err(None)`: the
/// address does not resolve.
fn connect(req: &Request<'_>) -> Result<TcpStream, Option<std::io::Error>> {
    let host = std::str::from_utf8(req.host).map_err(|_| None)?;
    let port = atoi_port(req.port).ok_or(None)?;
    let addr = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or(None)?;
    TcpStream::connect_timeout(&addr, req.timeout).map_err(Some)
}

/// Whether argument `i` of a MIGRATE call is a secret the slow log and MONITOR hide: AUTH's
/// password, AUTH2's username and password, as far as Redis's option parser gets (it redacts
/// them as it reads them, and stops at KEYS or a syntax error).
pub fn is_secret(argv: &[&[u8]], i: usize) -> bool {
    let mut j = 6;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        let a = argv[j];
        let n = if is(a, "copy") || is(a, "replace") {
            0
        } else if is(a, "auth") && more >= 1 {
            1
        } else if is(a, "auth2") && more >= 2 {
            2
        } else {
            return false;
        };
        if i > j && i <= j + n {
            return true;
        }
        j += n + 1;
    }
    false
}

/// MIGRATE's keys for COMMAND GETKEYS when its key specs do not apply (Redis's
/// `migrateGetKeys`): the key argument, or with `KEYS` everything after it (none when the key
/// argument is not empty then: that is MIGRATE's syntax error); AUTH and AUTH2 arguments are
/// skipped while looking for `KEYS`. `None` when there is no key.
pub fn get_keys(argv: &[&[u8]]) -> Option<Vec<(usize, &'static [&'static str])>> {
    const FLAGS: &[&str] = &["RW", "access", "delete"];
    let (mut first, mut num) = (3, 1);
    let mut i = 6;
    while i < argv.len() {
        let a = argv[i];
        if is(a, "keys") {
            if argv[3].is_empty() {
                (first, num) = (i + 1, argv.len() - i - 1);
            } else {
                num = 0;
            }
            break;
        }
        i += if is(a, "auth") {
            2
        } else if is(a, "auth2") {
            3
        } else {
            1
        };
    }
    let keys: Vec<_> = (first..first + num)
        .filter(|&p| p < argv.len())
        .map(|p| (p, FLAGS))
        .collect();
    (!keys.is_empty()).then_some(keys)
}

/// The leading decimal digits of `s` (after blanks and a sign), as a port; `None` when out
/// of range.
fn atoi_port(s: &[u8]) -> Option<u16> {
    let s = std::str::from_utf8(s).ok()?.trim_start();
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    if neg && n != 0 {
        return None;
    }
    u16::try_from(n).ok()
}

fn set_timeouts(s: &TcpStream, t: Duration) -> std::io::Result<()> {
    s.set_read_timeout(Some(t))?;
    s.set_write_timeout(Some(t))
}

/// Runs `f` on the cached connection to `name` (an error if it is gone).
fn with_conn<R>(
    name: &[u8],
    f: impl FnOnce(&mut BufReader<TcpStream>) -> std::io::Result<R>,
) -> std::io::Result<R> {
    CACHE.with(|c| match c.borrow_mut().get_mut(name) {
        Some(s) => f(&mut s.conn),
        None => Err(std::io::ErrorKind::NotConnected.into()),
    })
}

fn set_db(name: &[u8], db: i64) {
    CACHE.with(|c| {
        if let Some(s) = c.borrow_mut().get_mut(name) {
            s.db = db;
        }
    });
}

/// Writes `buf` in 64 KiB pieces, each within the write timeout.
fn write_all(s: &mut TcpStream, buf: &[u8]) -> std::io::Result<()> {
    for chunk in buf.chunks(WRITE_CHUNK) {
        s.write_all(chunk)?;
    }
    s.flush()
}

/// Reads one reply line without its CR LF (at most [`MAX_LINE`] bytes are kept; the rest of
/// a longer line is consumed). An empty line or the end of the stream is an error.
fn read_line(r: &mut BufReader<TcpStream>) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let n = std::io::Read::take(r, 1 << 20).read_until(b'\n', &mut line)?;
    if n == 0 || line.last() != Some(&b'\n') {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    line.truncate(MAX_LINE - 1);
    if line.is_empty() {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    Ok(line)
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_read_like_atoi() {
        assert_eq!(atoi_port(b"6379"), Some(6379));
        assert_eq!(atoi_port(b" 80abc"), Some(80));
        assert_eq!(atoi_port(b"abc"), Some(0));
        assert_eq!(atoi_port(b"70000"), None);
        assert_eq!(atoi_port(b"-1"), None);
    }

    #[test]
    fn options_parse_in_redis_order() {
        let argv: Vec<&[u8]> = vec![b"migrate", b"h", b"1", b"", b"0", b"5", b"keys", b"a", b"b"];
        let r = parse(&argv).unwrap_or_else(|_| panic!("parse"));
        assert_eq!(r.keys, &[&b"a"[..], b"b"]);
        let argv: Vec<&[u8]> = vec![b"migrate", b"h", b"1", b"k", b"0", b"5", b"keys", b"a"];
        let e = parse(&argv).err().map(|e| e.to_string());
        assert!(e
            .unwrap_or_default()
            .contains("must be set to the empty string"));
        let argv: Vec<&[u8]> = vec![b"migrate", b"h", b"1", b"k", b"x", b"y", b"auth"];
        assert!(matches!(parse(&argv), Err(CmdError::Syntax)));
        let argv: Vec<&[u8]> = vec![
            b"migrate", b"h", b"1", b"k", b"0", b"0", b"copy", b"auth2", b"u", b"p",
        ];
        let r = parse(&argv).unwrap_or_else(|_| panic!("parse"));
        assert!(r.copy && r.username == Some(&b"u"[..]) && r.password == Some(&b"p"[..]));
        assert_eq!(r.timeout, Duration::from_millis(1000));
    }
}
