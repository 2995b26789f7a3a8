//! `ferrodis-server`: parses redis-server's command line and runs the server.

use ferrodis::config::Config;

#[global_allocator]
static GLOBAL: ferrodis::alloc::Counting<tikv_jemallocator::Jemalloc> =
    ferrodis::alloc::Counting(tikv_jemallocator::Jemalloc);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(args.first().map(String::as_str), Some("-v" | "--version")) {
        println!(
            "Redis server v={} sha=00000000:0 malloc=jemalloc bits=64 build=ferrodis-{}",
            ferrodis::server::listener::REDIS_VERSION,
            ferrodis::server::listener::FERRODIS_VERSION
        );
        return;
    }
    let mut config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    // Before any thread exists: a fork keeps only the calling thread.
    if config.daemonize {
        daemonize(&mut config);
    }
    ferrodis::log::init(&config.loglevel, &config.logfile);
    if !config.pidfile.is_empty() {
        write_pidfile(&config.pidfile);
    }
    // Start-up order, for a short restart: the snapshot starts loading on its own thread
    // first, so that reading it overlaps everything else start-up does (the runtime, the
    // scripting engines, binding); the clock calibrates (it sleeps ~2 ms) on another thread
    // meanwhile. The server adopts the load and answers -LOADING until it completes.
    ferrodis::snapshot::engine::preload(&config);
    let calibrate = std::thread::Builder::new().name("ferrodis-clock".into());
    if calibrate.spawn(ferrodis::util::clock::init).is_err() {
        ferrodis::util::clock::init();
    }
    match ferrodis::server::run(config) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("fatal: {e}");
            std::process::exit(1);
        }
    }
}

/// `daemonize yes`, as redis-server does it: the process forks, the parent exits at once
/// (so a shell or init script gets its prompt back), the child starts a new session and its
/// standard streams go to /dev/null (log to `logfile` to see the log). A daemonized server
/// writes a pid file, `/var/run/redis.pid` unless `pidfile` names another.
fn daemonize(config: &mut Config) {
    if let Err(e) = nix::unistd::daemon(true, false) {
        eprintln!("Can't daemonize: {e}");
        std::process::exit(1);
    }
    if config.pidfile.is_empty() {
        let _ = config.set("pidfile", "/var/run/redis.pid");
    }
}

/// Writes the pid file (`pidfile`); like Redis, a failure is only logged.
fn write_pidfile(path: &str) {
    if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
        tracing::warn!("Failed to write PID file: {e}");
    }
}
