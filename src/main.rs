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
    let config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    ferrodis::log::init(&config.loglevel, &config.logfile);
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
