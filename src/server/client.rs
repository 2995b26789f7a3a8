//! Per-connection state. The part other connections may look at (CLIENT LIST, CLIENT KILL)
//! lives in [`ClientShared`], behind `Rc` in the server's client registry; the rest is owned by
//! the connection task and handed to handlers through `Ctx::client`.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use tokio::sync::Notify;

use crate::commands::CommandSpec;
use crate::protocol::Resp;

/// CLIENT REPLY mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the reply of the next command only.
    SkipNext,
    /// Set while the command after CLIENT REPLY SKIP runs.
    Skipping,
}

/// What CLIENT LIST / CLIENT INFO show, kept current by the connection.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub fd: i32,
    pub name: Option<Vec<u8>>,
    pub lib_name: Option<Vec<u8>>,
    pub lib_ver: Option<Vec<u8>>,
    pub created: Instant,
    pub last_interaction: Instant,
    pub db: usize,
    /// Channels, patterns and shard channels subscribed to (`sub=`, `psub=`, `ssub=`).
    pub sub: usize,
    pub psub: usize,
    pub ssub: usize,
    /// Rendered with `full_name()` only when listed, so the hot path never allocates it.
    pub last_cmd: &'static CommandSpec,
    pub resp: u8,
    pub qbuf: usize,
    pub qbuf_free: usize,
    pub obl: usize,
    /// The reply buffer's capacity (`rbs`) and the most it held since the cron last reset
    /// it (`rbp`), as of the client's last command.
    pub rbs: usize,
    pub rbp: usize,
    pub omem: usize,
    pub tot_mem: usize,
    pub multi: i64,
    /// Bytes held by the MULTI queue (`multi-mem`).
    pub multi_mem: usize,
    pub no_evict: bool,
    pub flags: String,
    pub user: String,
}

/// Identifies an open socket beyond its descriptor number, which the kernel reuses once it is
/// closed: sockets have inodes of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketId {
    pub fd: i32,
    pub dev: u64,
    pub ino: u64,
}

impl SocketId {
    /// What descriptor `fd` refers to now, if it is open.
    pub fn of(fd: i32) -> Option<SocketId> {
        // SAFETY: fstat only writes the struct we own for the duration of the call; a closed
        // or foreign descriptor only makes it fail or describe another file.
        #[allow(unsafe_code)]
        let st = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            (libc::fstat(fd, &mut st) == 0).then_some(st)
        }?;
        Some(SocketId { fd, dev: st.st_dev as u64, ino: st.st_ino as u64 })
    }

    /// A new descriptor for the same socket, if `self.fd` still refers to it. A client whose
    /// connection task ended without unregistering it (a panic outside a command handler)
    /// leaves a number the kernel may have given to another socket or file since; the
    /// identity check keeps a busy script from writing there.
    pub fn duplicate(&self) -> Option<std::net::TcpStream> {
        use std::os::fd::BorrowedFd;
        if SocketId::of(self.fd) != Some(*self) {
            return None;
        }
        // SAFETY: `fd` is open and is this client's socket (checked just above). Only the
        // event loop thread, which runs this, closes client sockets, so it stays open while
        // it is duplicated; the duplicate is a descriptor of its own.
        #[allow(unsafe_code)]
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        fd.try_clone_to_owned().ok().map(std::net::TcpStream::from)
    }
}

/// The shared half of a client: readable by every connection, killable from any of them.
#[derive(Debug)]
pub struct ClientShared {
    pub info: RefCell<ClientInfo>,
    /// Set by CLIENT KILL (or shutdown); the connection closes at its next chance.
    pub killed: Cell<bool>,
    /// Wakes the connection task (for kills, and later for pub/sub and unblocking).
    pub wake: Notify,
    /// Protocol bytes other clients' commands produced for this one (MONITOR lines, later
    /// pub/sub messages), written by its connection when it is woken.
    pub pushed: RefCell<Vec<u8>>,
    /// The client's socket as its connection task holds it: descriptor, device and inode
    /// (`None` for clients without a socket of their own).
    pub sock: Cell<Option<SocketId>>,
    /// A duplicate of the client's socket, through which a busy script answers it `-BUSY`
    /// (see `scripting::busy`): made from `sock` when a busy script first serves the client,
    /// dropped when the script ends, so that a client holds one descriptor the rest of the
    /// time (what `maxclients` is sized by, see `server::fdlimit`).
    pub dup: RefCell<Option<std::net::TcpStream>>,
    /// Input a busy script read from `dup` but could not answer yet (an incomplete command);
    /// the connection puts it in front of its own input before reading again.
    pub stolen: RefCell<Vec<u8>>,
    /// Transaction changes a busy script made while answering this client (its MULTI, a
    /// command refused with `-BUSY` inside MULTI, its EXEC or DISCARD); the connection applies
    /// them in order before it runs anything else.
    pub busy_multi: RefCell<Vec<BusyMulti>>,
    /// Bytes taken out of `pushed` (or replies) that the connection is still writing: with
    /// `pushed`, the client's pending output, which `client-output-buffer-limit` bounds.
    pub inflight: Cell<usize>,
    /// When the pending output first exceeded the soft output buffer limit (Redis's
    /// `obuf_soft_limit_reached_time`); `None` while below it.
    pub soft_limit_since: Cell<Option<Instant>>,
    /// CLIENT TRACKING options while tracking is on (see `server::tracking`).
    pub tracking: RefCell<Option<super::tracking::ClientTracking>>,
    /// Set by the cron for a client idle for a while: its connection gives back its empty
    /// input and output buffers when it sees this (see `server::cron::trim_idle_clients`).
    pub trim: Cell<bool>,
}

impl ClientInfo {
    /// Bytes this client's buffers hold (CLIENT LIST `tot-mem` less the arguments of the
    /// command running): query buffer, reply buffer, pending output and the MULTI queue, as
    /// Redis's client memory counts them. `pending` is the output queued beyond the reply
    /// buffer ([`ClientShared::pending_output`]).
    pub fn memory(&self, pending: usize) -> usize {
        self.qbuf + self.qbuf_free + self.rbs + self.omem.max(pending) + self.multi_mem
    }

    /// The CLIENT LIST fields of a client that just connected.
    pub fn new(id: u64, addr: SocketAddr, laddr: SocketAddr, fd: i32) -> Self {
        let now = Instant::now();
        ClientInfo {
            id,
            addr,
            laddr,
            fd,
            name: None,
            lib_name: None,
            lib_ver: None,
            created: now,
            last_interaction: now,
            db: 0,
            sub: 0,
            psub: 0,
            ssub: 0,
            last_cmd: crate::commands::connection::NULL_COMMAND,
            resp: 2,
            qbuf: 0,
            qbuf_free: 0,
            obl: 0,
            rbs: 0,
            rbp: 0,
            omem: 0,
            tot_mem: 0,
            multi: -1,
            multi_mem: 0,
            no_evict: false,
            flags: "N".into(),
            user: "default".into(),
        }
    }
}

/// A change to a client's transaction made while a busy script answered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusyMulti {
    /// MULTI was accepted.
    Begin,
    /// A command was refused inside MULTI: EXEC must answer EXECABORT.
    Doom,
    /// EXEC (refused, EXECABORT) or DISCARD ended the transaction.
    End,
}

impl ClientShared {
    /// Whether the client is in MULTI, counting the changes a busy script made for it.
    pub fn in_multi(&self) -> bool {
        let pending = self.busy_multi.borrow();
        match pending.iter().rev().find(|e| **e != BusyMulti::Doom) {
            Some(BusyMulti::Begin) => true,
            Some(_) => false,
            None => self.info.borrow().multi >= 0,
        }
    }

    pub fn new(info: ClientInfo) -> Self {
        ClientShared {
            info: RefCell::new(info),
            killed: Cell::new(false),
            wake: Notify::new(),
            pushed: RefCell::default(),
            sock: Cell::new(None),
            dup: RefCell::default(),
            stolen: RefCell::default(),
            busy_multi: RefCell::default(),
            inflight: Cell::new(0),
            soft_limit_since: Cell::new(None),
            tracking: RefCell::new(None),
            trim: Cell::new(false),
        }
    }

    /// Queues out-of-band bytes for this client and wakes its connection.
    pub fn push(&self, bytes: &[u8]) {
        self.pushed.borrow_mut().extend_from_slice(bytes);
        self.wake.notify_one();
    }

    /// Queues a message assembled from parts (a protocol-specific header and a shared body).
    pub fn push_parts(&self, parts: &[&[u8]]) {
        let mut p = self.pushed.borrow_mut();
        for part in parts {
            p.extend_from_slice(part);
        }
        drop(p);
        self.wake.notify_one();
    }

    /// Output queued for this client and not yet written (Redis's `omem`).
    pub fn pending_output(&self) -> usize {
        self.pushed.borrow().len() + self.inflight.get()
    }

    /// Whether the client is in Pub/Sub mode (subscribed to anything).
    pub fn subscribed(&self) -> bool {
        let i = self.info.borrow();
        i.sub + i.psub + i.ssub > 0
    }

    /// Takes the queued out-of-band bytes.
    pub fn take_pushed(&self) -> Vec<u8> {
        std::mem::take(&mut *self.pushed.borrow_mut())
    }

    pub fn kill(&self) {
        self.killed.set(true);
        // Nothing queued will ever be written now; free it at once.
        *self.pushed.borrow_mut() = Vec::new();
        self.wake.notify_one();
    }
}

/// The connection-owned half.
pub struct Client {
    pub id: u64,
    pub db: usize,
    pub authenticated: bool,
    /// The ACL user (`server::acl`): internal clients have the superuser, connections start
    /// as the default user.
    pub user: Rc<crate::server::acl::AclUser>,
    pub shared: Rc<ClientShared>,
    pub reply_mode: ReplyMode,
    /// Close once the replies produced so far are written (QUIT, protocol errors).
    pub close_after_reply: bool,
    pub last_cmd: &'static CommandSpec,
    /// Bytes in the query buffer when the current batch started (what Redis's CLIENT LIST
    /// shows as `qbuf` while a command runs: its query buffer is trimmed only afterwards).
    pub qbuf: usize,
    /// Free space in the query buffer at the same moment.
    pub qbuf_free: usize,
    /// The transaction being queued between MULTI and EXEC/DISCARD (see `commands::multi`).
    pub multi: Option<Box<crate::commands::multi::MultiState>>,
}

impl Client {
    pub fn new(id: u64, shared: Rc<ClientShared>, authenticated: bool) -> Self {
        Client {
            id,
            db: 0,
            authenticated,
            user: crate::server::acl::superuser(),
            shared,
            reply_mode: ReplyMode::On,
            close_after_reply: false,
            last_cmd: crate::commands::connection::NULL_COMMAND,
            qbuf: 0,
            qbuf_free: 0,
            multi: None,
        }
    }

    /// Runs as `user` (a connection's default user).
    pub fn with_user(mut self, user: Rc<crate::server::acl::AclUser>) -> Self {
        self.user = user;
        self
    }

    /// Switches to `user`, authenticated or not, and shows it in CLIENT LIST.
    pub fn set_user(&mut self, user: Rc<crate::server::acl::AclUser>, authenticated: bool) {
        self.shared.info.borrow_mut().user = user.name_text();
        self.user = user;
        self.authenticated = authenticated;
    }

    /// Protocol version as negotiated with HELLO.
    pub fn resp(&self) -> Resp {
        if self.shared.info.borrow().resp == 3 {
            Resp::V3
        } else {
            Resp::V2
        }
    }
}

/// What CLIENT PAUSE holds back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseKind {
    /// Every command.
    All,
    /// Commands that may write or replicate (`WRITE` or `MAY_REPLICATE` flag).
    Write,
}

/// The server-wide client pause (CLIENT PAUSE / UNPAUSE).
///
/// Kept per thread because the whole server runs on one thread; connections consult it before
/// running each command and wait on [`pause::changed`] while held.
pub mod pause {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Instant;

    use tokio::sync::Notify;

    use super::PauseKind;

    thread_local! {
        static STATE: Cell<Option<(Instant, PauseKind)>> = const { Cell::new(None) };
        static CHANGED: Rc<Notify> = Rc::new(Notify::new());
        static HELD: Cell<usize> = const { Cell::new(0) };
    }

    /// Clients whose command a pause holds right now. Redis counts them as blocked (INFO
    /// `blocked_clients`), and tools wait on that count to know a pause has taken hold.
    pub fn held() -> usize {
        HELD.with(Cell::get)
    }

    /// Counts a client as held while it lives.
    pub struct Held(());

    impl Held {
        #[allow(clippy::new_without_default)] // a guard: creating one has an effect
        pub fn new() -> Held {
            HELD.with(|h| h.set(h.get() + 1));
            Held(())
        }
    }

    impl Drop for Held {
        fn drop(&mut self) {
            HELD.with(|h| h.set(h.get().saturating_sub(1)));
        }
    }

    /// Starts (or extends) a pause. Like Redis, a new pause never shortens a longer one, and
    /// an ALL pause is not downgraded to WRITE while it lasts.
    pub fn start(end: Instant, kind: PauseKind) {
        let now = Instant::now();
        let merged = match STATE.with(Cell::get) {
            Some((e, k)) if e > now => {
                let kind = if k == PauseKind::All || kind == PauseKind::All {
                    PauseKind::All
                } else {
                    PauseKind::Write
                };
                (e.max(end), kind)
            }
            _ => (end, kind),
        };
        STATE.with(|s| s.set(Some(merged)));
        notify();
    }

    /// Ends the pause and releases every held client.
    pub fn stop() {
        STATE.with(|s| s.set(None));
        notify();
    }

    fn notify() {
        CHANGED.with(|n| n.notify_waiters());
    }

    /// Wakes waiters whenever the pause starts or stops.
    pub fn changed() -> Rc<Notify> {
        CHANGED.with(Rc::clone)
    }

    /// The end of the pause that holds a command with the given nature, if any.
    pub fn holds(is_write: bool) -> Option<Instant> {
        let (end, kind) = STATE.with(Cell::get)?;
        if end <= Instant::now() {
            STATE.with(|s| s.set(None));
            return None;
        }
        (kind == PauseKind::All || is_write).then_some(end)
    }
}
