//! The reference `redis-server` (7.0.15), for tests that compare ferrodis with real Redis.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// A `redis-server` child on a free loopback port, without persistence, killed on drop.
pub struct Oracle {
    pub port: u16,
    child: Child,
    _dir: Option<tempfile::TempDir>,
    log: PathBuf,
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A program on `PATH` (the oracle's tools: `redis-cli`, `redis-check-rdb`).
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The oracle binary, or `None` after printing why `test` is skipped. Panics instead when
/// `FERRODIS_REQUIRE_ORACLE=1` (CI), so a missing oracle can never pass silently there.
pub fn binary(test: &str) -> Option<PathBuf> {
    if let Some(p) = find_on_path("redis-server") {
        return Some(p);
    }
    if std::env::var("FERRODIS_REQUIRE_ORACLE").as_deref() == Ok("1") {
        panic!("{test}: redis-server not found on PATH and FERRODIS_REQUIRE_ORACLE=1");
    }
    eprintln!("SKIPPED {test}: redis-server not found on PATH (install redis-server to run it)");
    None
}

impl Oracle {
    /// Starts `bin` with `extra` arguments after the defaults; retries on a port race.
    pub fn start(bin: &Path, extra: &[&str]) -> Oracle {
        Oracle::spawn(bin, None, extra)
    }

    /// Like [`start`](Self::start), in `dir` (which holds the `dbfilename` it loads).
    pub fn start_in(bin: &Path, dir: &Path, extra: &[&str]) -> Oracle {
        Oracle::spawn(bin, Some(dir), extra)
    }

    fn spawn(bin: &Path, dir: Option<&Path>, extra: &[&str]) -> Oracle {
        for _ in 0..5 {
            let tmp = dir.is_none().then(|| tempfile::tempdir().unwrap());
            let dir = tmp.as_ref().map_or_else(|| dir.unwrap().to_path_buf(), |t| t.path().into());
            let port = free_port();
            let log = dir.join(format!("redis-{port}.log"));
            let child = Command::new(bin)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(extra)
                .arg("--dir")
                .arg(&dir)
                .arg("--logfile")
                .arg(&log)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let mut o = Oracle { port, child, _dir: tmp, log };
            if o.wait_ready() {
                return o;
            }
        }
        panic!("redis-server did not start");
    }

    pub fn conn(&self) -> redis::Connection {
        let url = format!("redis://127.0.0.1:{}/", self.port);
        redis::Client::open(url).unwrap().get_connection().unwrap()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut buf = [0u8; 7];
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read_exact(&mut buf).is_ok()
                    && &buf == b"+PONG\r\n"
                {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}
