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
    ferrodis::util::clock::init();
    ferrodis::log::init(&config.loglevel, &config.logfile);
    match ferrodis::server::run(config) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("fatal: {e}");
            std::process::exit(1);
        }
    }
}
