//! Start-up, the accept loops, and shutdown.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use tokio::net::TcpListener;
use tokio::task::LocalSet;

use super::{connection, cron, Server};
use crate::config::Config;
use crate::error::StartupError;

/// Redis version whose behaviour ferrodis implements (INFO `redis_version`, HELLO `version`).
pub const REDIS_VERSION: &str = "7.0.15";
/// ferrodis's own version.
pub const FERRODIS_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs the server until it is shut down. Returns the process exit code.
pub fn run(config: Config) -> Result<i32, StartupError> {
    crate::alloc::claim_owner_thread();
    crate::alloc::set_background_thread(config.jemalloc_bg_thread);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = LocalSet::new();
    local.block_on(&rt, serve(config))
}

/// Binds every address of the `bind` list (a leading `-` marks an address as optional) on
/// `port`. Synchronous, so that CONFIG SET port / bind can bind inside the command and refuse
/// the change when it fails. Port 0 listens nowhere, as in Redis.
pub fn bind_all(config: &Config) -> Result<Vec<std::net::TcpListener>, String> {
    let port = config.port as u16;
    let mut out = Vec::new();
    let binds = if config.bind.is_empty() { vec!["*".to_string()] } else { config.bind.clone() };
    for b in &binds {
        let (optional, host) = match b.strip_prefix('-') {
            Some(h) => (true, h),
            None => (false, b.as_str()),
        };
        let host = match host {
            "*" => "0.0.0.0",
            "::*" => "::",
            h => h,
        };
        let addr: SocketAddr = match format!("{host}:{port}").parse() {
            Ok(a) => a,
            Err(_) => match format!("[{host}]:{port}").parse() {
                Ok(a) => a,
                Err(_) => return Err(format!("Invalid bind address '{b}'")),
            },
        };
        if port == 0 {
            continue;
        }
        match listen(addr, config.tcp_backlog) {
            Ok(l) => out.push(l),
            Err(e) if optional => {
                tracing::debug!("Skipping optional bind {b}: {e}");
            }
            Err(e) => {
                tracing::warn!(
                    "Warning: Could not create server TCP listening socket {}:{}: bind: {}",
                    b,
                    port,
                    e
                );
                return Err(format!("Failed listening on port {port} (TCP), aborting."));
            }
        }
    }
    Ok(out)
}

/// One listening socket as Redis makes it: SO_REUSEADDR, IPv6 sockets for IPv6 only (so that
/// `bind * ::*` can bind both families on one port), and `tcp-backlog` as the accept queue
/// (std's `bind` picks its own).
fn listen(addr: SocketAddr, backlog: i64) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog.clamp(1, i32::MAX as i64) as i32)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

async fn serve(mut config: Config) -> Result<i32, StartupError> {
    let pid = std::process::id();
    tracing::warn!("oO0OoO0OoO0Oo ferrodis is starting oO0OoO0OoO0Oo");
    tracing::warn!(
        "ferrodis version={FERRODIS_VERSION} (Redis {REDIS_VERSION} compatible), bits=64, pid={pid}, just started"
    );
    tracing::warn!("Configuration loaded");
    match super::fdlimit::at_startup(config.maxclients) {
        Ok(n) if n != config.maxclients => {
            // Through the parameter table, so that CONFIG GET shows the reduced value too.
            config.set("maxclients", &n.to_string()).map_err(StartupError::Config)?;
        }
        Ok(_) => {}
        Err(msg) => {
            tracing::warn!("{msg}");
            return Ok(1);
        }
    }
    let listeners = match bind_all(&config) {
        Ok(l) => l,
        Err(msg) => {
            tracing::warn!("{msg}");
            return Ok(1);
        }
    };
    let port = config.port;
    tracing::info!(
        "ferrodis {FERRODIS_VERSION} (Redis {REDIS_VERSION} compatible) 64 bit, standalone mode, port {port}, PID: {pid}"
    );
    super::shutdown::listen_for_signals()?;
    let server = Rc::new(RefCell::new(Server::new(config)));
    server.borrow_mut().state.tcp_port = port as u16;
    if let Err(msg) = crate::aof::startup(&server) {
        tracing::warn!("{msg}");
        return Ok(1);
    }
    tokio::task::spawn_local(crate::aof::run(server.clone()));
    tracing::warn!("Server initialized");
    let generation = server.borrow_mut().state.next_listen_generation();
    start_listening(&server, generation, listeners);
    tokio::task::spawn_local(relisten(server.clone()));
    tokio::task::spawn_local(cron::run(server.clone()));
    tokio::task::spawn_local(crate::snapshot::engine::driver(server.clone()));
    tokio::task::spawn_local(super::busypoll::run());
    crate::replication::start(&server);
    if !server.borrow().state.config.appendonly {
        crate::snapshot::engine::start_loading(&server);
    }
    tracing::info!("Ready to accept connections tcp");

    // SIGINT and SIGTERM only record a request; the cron runs the shutdown (see
    // `shutdown`). This task waits until a shutdown completed.
    let notify = server.borrow().state.shutdown_notify.clone();
    while server.borrow().state.shutdown.is_none() {
        notify.notified().await;
    }
    for c in server.borrow().state.clients.values() {
        c.kill();
    }
    crate::aof::shutdown(&mut server.borrow_mut().state);
    Ok(0)
}

/// Starts one accept loop per listener, as listener generation `generation`; the loops of
/// earlier generations stop (dropping their sockets) when they see a newer one.
fn start_listening(
    server: &Rc<RefCell<Server>>,
    generation: u64,
    listeners: Vec<std::net::TcpListener>,
) {
    let mut srv = server.borrow_mut();
    let st = &mut srv.state;
    st.listener_dups.clear();
    for l in listeners {
        let Ok(l) = TcpListener::from_std(l) else {
            continue;
        };
        if let Some(dup) = dup_listener(&l) {
            st.listener_dups.push(dup);
        }
        let rx = st.listen_generation.subscribe();
        tokio::task::spawn_local(accept_loop(l, server.clone(), rx, generation));
    }
}

/// Applies CONFIG SET port / bind: swaps in the listeners the command already bound.
async fn relisten(server: Rc<RefCell<Server>>) {
    let notify = server.borrow().state.relisten_notify.clone();
    loop {
        notify.notified().await;
        let new = server.borrow_mut().state.new_listeners.take();
        if let Some((generation, listeners)) = new {
            start_listening(&server, generation, listeners);
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    server: Rc<RefCell<Server>>,
    mut generation: tokio::sync::watch::Receiver<u64>,
    mine: u64,
) {
    let admitted = server.borrow().state.admitted_notify.clone();
    loop {
        tokio::select! {
            _ = generation.changed() => {
                if *generation.borrow() != mine {
                    return;
                }
            }
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    // Registered here, not in the task: a script that blocks the loop before
                    // the task first runs must still see (and answer) this client.
                    let admission = connection::admit(&mut server.borrow_mut().state, &stream);
                    let srv = server.clone();
                    tokio::task::spawn_local(connection::run_admitted(srv, stream, admission));
                }
                Err(_) if *generation.borrow() != mine => return,
                Err(e) => {
                    tracing::warn!("Accepting client connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            _ = admitted.notified() => {
                let early = std::mem::take(&mut server.borrow_mut().state.admitted_while_busy);
                for (stream, admission) in early {
                    let srv = server.clone();
                    tokio::task::spawn_local(connection::run_admitted(srv, stream, admission));
                }
            }
        }
    }
}

/// Stops the listening sockets behind `dups` at once (their accept loops exit when they next
/// run), freeing their addresses for a new `bind` inside the same CONFIG SET, as Redis closes
/// its listeners before binding the new addresses.
pub fn close_listeners(dups: &[std::net::TcpListener]) {
    use std::os::fd::AsRawFd;
    for l in dups {
        // SAFETY: `l` owns a valid open descriptor for the whole call; shutdown() changes the
        // socket's state and touches no memory.
        #[allow(unsafe_code)]
        unsafe {
            libc::shutdown(l.as_raw_fd(), libc::SHUT_RDWR);
        }
    }
}

/// A second handle on a listening socket (same file description, so already non-blocking).
#[cfg(unix)]
fn dup_listener(l: &TcpListener) -> Option<std::net::TcpListener> {
    use std::os::fd::AsFd;
    l.as_fd().try_clone_to_owned().ok().map(std::net::TcpListener::from)
}
