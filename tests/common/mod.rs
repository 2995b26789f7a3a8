//! Test harness: runs the real `ferrodis-server` binary on a free loopback port.
#![allow(dead_code)]

pub mod oracle;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process that is killed when dropped.
pub struct TestServer {
    pub port: u16,
    pub child: Option<Child>,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

/// How a test server is started, beyond its arguments.
#[derive(Default, Clone, Copy)]
struct Launch {
    /// A server still loading its data (answering `-LOADING`) counts as started.
    loading_ok: bool,
    /// The open-file limit (soft and hard) to start it under.
    fd_limit: Option<u64>,
    /// Leave out `--save ""`: the server runs with its default save points.
    default_save: bool,
}

/// Finds a port that is free right now, outside the kernel's ephemeral range when it can.
///
/// Why not simply bind port 0: that hands out an ephemeral port, and tests kill servers and
/// start them again on the same port while replicas and Sentinels keep reconnecting to it.
/// Each reconnection takes the next ephemeral port for that destination, and when the one it
/// takes is the dead server's own port, the connection succeeds to itself (TCP simultaneous
/// open) and holds the port: the restarted server cannot bind it. A port outside the range
/// (below it, or above it where the range starts low) is never taken by an outgoing
/// connection.
pub fn free_port() -> u16 {
    use rand::Rng;
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok();
    let mut bounds = range.iter().flat_map(|s| s.split_whitespace().map(|w| w.parse::<u16>()));
    let (low, high) = match (bounds.next(), bounds.next()) {
        (Some(Ok(l)), Some(Ok(h))) => (l, h),
        _ => (0, u16::MAX),
    };
    let outside = if low > 12_000 {
        Some(10_000..low)
    } else if high < 63_000 {
        Some(high + 1..u16::MAX)
    } else {
        None
    };
    if let Some(ports) = outside {
        let mut rng = rand::thread_rng();
        for _ in 0..200 {
            let port = rng.gen_range(ports.clone());
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until `child` answers PING on `port`, and makes sure the answer came from `child`:
/// a port [`free_port`] found free can be bound by another test's server before `child` binds
/// it, and then `child` exits while the other server answers. Returns false when `child`
/// exited or did not answer within `timeout`.
pub fn wait_for_own_server(
    child: &mut Child,
    port: u16,
    timeout: Duration,
    loading_ok: bool,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
            if s.write_all(b"PING\r\n").is_ok() {
                // A server with requirepass answers -NOAUTH: it is up all the same, but INFO
                // cannot tell whose it is; the child still running is the best evidence then.
                let mut buf = [0u8; 7];
                if s.read_exact(&mut buf).is_ok() {
                    if &buf == b"+PONG\r\n" || (loading_ok && buf.starts_with(b"-LOADIN")) {
                        if loading_ok && buf.starts_with(b"-LOADIN") {
                            // Consume the rest of the error line before asking INFO.
                            let mut rest = Vec::new();
                            let mut b = [0u8; 1];
                            while s.read_exact(&mut b).is_ok() && b[0] != b'\n' {
                                rest.push(b[0]);
                            }
                        }
                        return match server_pid(&mut s) {
                            Some(pid) => pid == child.id(),
                            None => matches!(child.try_wait(), Ok(None)),
                        };
                    }
                    if buf.starts_with(b"-NOAUTH") {
                        std::thread::sleep(Duration::from_millis(50));
                        return matches!(child.try_wait(), Ok(None));
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The `process_id` of the server behind `s`, from `INFO server`.
fn server_pid(s: &mut TcpStream) -> Option<u32> {
    s.write_all(b"INFO server\r\n").ok()?;
    let mut header = Vec::new();
    let mut b = [0u8; 1];
    while s.read_exact(&mut b).is_ok() && b[0] != b'\n' {
        header.push(b[0]);
    }
    let len: usize = std::str::from_utf8(header.strip_prefix(b"$")?).ok()?.trim().parse().ok()?;
    let mut body = vec![0u8; len + 2];
    s.read_exact(&mut body).ok()?;
    let text = String::from_utf8_lossy(&body);
    text.lines().find_map(|l| l.strip_prefix("process_id:")).and_then(|v| v.trim().parse().ok())
}

impl TestServer {
    /// Starts a server in a fresh temporary directory with extra `--name value` arguments.
    pub fn start(extra: &[&str]) -> TestServer {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut s = TestServer::start_in(&dir, extra);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server whose working directory is `dir` (kept by the caller across restarts).
    pub fn start_in(dir: &Path, extra: &[&str]) -> TestServer {
        TestServer::spawn_in(dir, None, extra, false)
    }

    /// Starts a server with `conf` as its configuration file (redis-server's first argument),
    /// in the file's directory.
    pub fn start_with_file(conf: &Path, extra: &[&str]) -> TestServer {
        TestServer::spawn_in(conf.parent().unwrap(), Some(conf), extra, false)
    }

    /// Like [`start_in`](Self::start_in), but a server still loading its data (answering
    /// `-LOADING`) counts as started.
    pub fn start_in_loading(dir: &Path, extra: &[&str]) -> TestServer {
        TestServer::spawn_in(dir, None, extra, true)
    }

    /// Starts a server whose open-file limit (soft and hard) is `limit`.
    pub fn start_with_fd_limit(limit: u64, extra: &[&str]) -> TestServer {
        let tmp = tempfile::tempdir().unwrap();
        let launch = Launch { fd_limit: Some(limit), ..Launch::default() };
        let mut s = TestServer::spawn_with(tmp.path(), None, extra, launch);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server in `dir` with no `save` setting at all, so that it runs with the
    /// default save points (every other start passes `--save ""`).
    pub fn start_with_default_save_points(dir: &Path) -> TestServer {
        let launch = Launch { default_save: true, ..Launch::default() };
        TestServer::spawn_with(dir, None, &[], launch)
    }

    fn spawn_in(dir: &Path, conf: Option<&Path>, extra: &[&str], loading_ok: bool) -> TestServer {
        TestServer::spawn_with(dir, conf, extra, Launch { loading_ok, ..Launch::default() })
    }

    fn spawn_with(dir: &Path, conf: Option<&Path>, extra: &[&str], launch: Launch) -> TestServer {
        for _ in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(dir.join(format!("server-{port}.log"))).unwrap();
            let mut args: Vec<String> = conf.map(|c| c.display().to_string()).into_iter().collect();
            args.extend([
                "--port".into(),
                port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--dir".into(),
                dir.display().to_string(),
            ]);
            if !launch.default_save {
                args.extend(["--save".into(), "".into()]);
            }
            args.extend(extra.iter().map(|s| s.to_string()));
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrodis-server"));
            cmd.args(&args)
                .current_dir(dir)
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log));
            if let Some(n) = launch.fd_limit {
                use std::os::unix::process::CommandExt;
                let l = libc::rlimit { rlim_cur: n as libc::rlim_t, rlim_max: n as libc::rlim_t };
                // SAFETY: runs in the forked child before exec; setrlimit is async-signal-safe
                // and only reads `l`, a copy owned by the closure.
                unsafe {
                    cmd.pre_exec(move || {
                        if libc::setrlimit(libc::RLIMIT_NOFILE, &l) == 0 {
                            Ok(())
                        } else {
                            Err(std::io::Error::last_os_error())
                        }
                    });
                }
            }
            let child = cmd.spawn().expect("spawn ferrodis-server");
            let mut s = TestServer { port, child: Some(child), dir: dir.to_path_buf(), _tmp: None };
            if s.wait_ready(Duration::from_secs(10), launch.loading_ok) {
                return s;
            }
            s.kill();
        }
        panic!("ferrodis-server did not start");
    }

    fn wait_ready(&mut self, timeout: Duration, loading_ok: bool) -> bool {
        match self.child.as_mut() {
            Some(child) => wait_for_own_server(child, self.port, timeout, loading_ok),
            None => false,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A synchronous `redis` crate connection.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url()).unwrap().get_connection().unwrap()
    }

    /// A raw TCP connection for protocol-level tests.
    pub fn raw(&self) -> RawConn {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        RawConn { s }
    }

    /// Sends SIGKILL (no clean shutdown) and waits for the process.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("server-{}.log", self.port)))
            .unwrap_or_default()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A plain socket speaking raw bytes.
pub struct RawConn {
    pub s: TcpStream,
}

impl RawConn {
    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// Reads until `n` bytes arrived (or the timeout).
    pub fn read_exact_n(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        self.s.read_exact(&mut buf).unwrap();
        buf
    }

    /// Reads whatever arrives within `wait` after the first bytes.
    pub fn read_some(&mut self, wait: Duration) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        let _ = self.s.set_read_timeout(Some(Duration::from_secs(5)));
        if let Ok(n) = self.s.read(&mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
        let _ = self.s.set_read_timeout(Some(wait));
        while let Ok(n) = self.s.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    /// Sends a command and reads one full reply, returned as raw bytes.
    pub fn cmd(&mut self, args: &[&str]) -> Vec<u8> {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n{}\r\n", a.len(), a).as_bytes());
        }
        self.send(&req);
        self.read_reply()
    }

    /// Reads exactly one RESP reply (any type, nested).
    pub fn read_reply(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.read_value(&mut out);
        out
    }

    fn read_line(&mut self, out: &mut Vec<u8>) -> Vec<u8> {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        loop {
            self.s.read_exact(&mut b).unwrap();
            line.push(b[0]);
            if line.ends_with(b"\r\n") {
                break;
            }
        }
        out.extend_from_slice(&line);
        line
    }

    fn read_value(&mut self, out: &mut Vec<u8>) {
        let line = self.read_line(out);
        let n: i64 =
            std::str::from_utf8(&line[1..line.len() - 2]).unwrap_or("0").parse().unwrap_or(0);
        match line[0] {
            b'$' | b'=' | b'!' if n >= 0 => {
                let mut buf = vec![0u8; n as usize + 2];
                self.s.read_exact(&mut buf).unwrap();
                out.extend_from_slice(&buf);
            }
            b'*' | b'~' | b'>' if n > 0 => {
                for _ in 0..n {
                    self.read_value(out);
                }
            }
            b'%' | b'|' if n > 0 => {
                for _ in 0..2 * n {
                    self.read_value(out);
                }
            }
            _ => {}
        }
    }
}

/// Runs a command through the `redis` crate and converts its reply (panics on an error reply).
pub fn q<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c).unwrap()
}

/// Runs a command that must fail and returns its error line without the `-`
/// (`"WRONGTYPE Operation against ..."`), as the `redis` crate splits it into code and detail.
pub fn err(c: &mut redis::Connection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    let e = cmd.query::<redis::Value>(c).unwrap_err();
    format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or("")).trim().to_string()
}

/// `blocked_clients` from INFO clients (-1 if absent).
pub fn info_blocked(c: &mut redis::Connection) -> i64 {
    let info: String = q(c, &["INFO", "clients"]);
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1)
}

/// Waits until `n` clients are blocked; falls back to a short sleep if INFO does not report
/// blocked clients.
pub fn wait_blocked(c: &mut redis::Connection, n: i64) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        match info_blocked(c) {
            v if v >= n => return,
            0 if start.elapsed() > Duration::from_millis(300) => return,
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Polls `f` every 20 ms until it holds; panics after `secs` seconds naming `what`.
pub fn wait_until_for(secs: u64, what: &str, f: impl FnMut() -> bool) {
    wait_until_or_report(secs, what, f, String::new)
}

/// [`wait_until_for`], adding what `report` gathers (logs, say) to the panic on a timeout.
pub fn wait_until_or_report(
    secs: u64,
    what: &str,
    mut f: impl FnMut() -> bool,
    report: impl FnOnce() -> String,
) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}\n{}", report());
}

/// [`wait_until_for`] with a 10 s limit.
pub fn wait_until(what: &str, f: impl FnMut() -> bool) {
    wait_until_for(10, what, f)
}

/// One field of an INFO section, if the server reports it.
pub fn info_opt(c: &mut redis::Connection, section: &str, field: &str) -> Option<String> {
    let info: String = q(c, &["INFO", section]);
    info.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).map(str::to_string)
}

/// One field of an INFO section (panics if the server does not report it).
pub fn info_field(c: &mut redis::Connection, section: &str, field: &str) -> String {
    info_opt(c, section, field).unwrap_or_else(|| panic!("no {field} in INFO {section}"))
}

/// A master that sends its full syncs from a snapshot file, starting at once.
pub const REPL_DISK: [&str; 6] = [
    "--repl-diskless-sync-delay",
    "0",
    "--enable-debug-command",
    "yes",
    "--repl-diskless-sync",
    "no",
];

/// Replication tests' servers: full syncs start at once (Redis's default waits 5 s for more
/// replicas to share one), DEBUG allowed.
pub const REPL_DEBUG: [&str; 4] =
    ["--repl-diskless-sync-delay", "0", "--enable-debug-command", "yes"];

/// Waits until the replica's link is up and its offset equals the master's.
pub fn wait_caught_up(replica: &TestServer, master: &TestServer) {
    let (mut r, mut m) = (replica.conn(), master.conn());
    wait_until_for(20, "replica in sync", || {
        info_field(&mut r, "replication", "master_link_status") == "up"
            && info_field(&mut r, "replication", "master_repl_offset")
                == info_field(&mut m, "replication", "master_repl_offset")
    });
}

/// `DEBUG DIGEST`: equal for servers holding equal data.
pub fn digest(c: &mut redis::Connection) -> String {
    q(c, &["DEBUG", "DIGEST"])
}
