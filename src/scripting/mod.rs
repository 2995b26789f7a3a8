//! Lua scripting: EVAL / EVALSHA / SCRIPT and FUNCTION / FCALL (Redis's `eval.c`,
//! `script.c`, `script_lua.c`, `function_lua.c`).
//!
//! Two Lua 5.1 interpreters (mlua, vendored) run on the event loop thread, one for EVAL
//! scripts and one for function libraries, like Redis. A script runs inside its command's
//! handler, so it is atomic with respect to every other client exactly like any other command.
//!
//! - [`engine`]: interpreter setup, the `redis` API and the sandbox (`sandbox.lua`).
//! - [`convert`]: RESP replies to Lua values and Lua values to replies.
//! - [`run`]: one execution: `redis.call` / `pcall`, the script-side command checks.
//! - [`busy`]: serving other clients while a slow script runs (BUSY, SCRIPT KILL).
//! - [`functions`]: function libraries (FUNCTION LOAD and friends).

pub mod busy;
pub mod convert;
pub mod engine;
pub mod functions;
pub mod libs;
pub mod run;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use crate::server::client::{Client, ClientInfo, ClientShared};
use engine::Engine;

/// Script flags (`#!lua flags=...` for EVAL, `flags` of `redis.register_function`).
pub mod flags {
    pub const NO_WRITES: u32 = 1;
    pub const ALLOW_OOM: u32 = 1 << 1;
    pub const ALLOW_STALE: u32 = 1 << 2;
    pub const NO_CLUSTER: u32 = 1 << 3;
    pub const ALLOW_CROSS_SLOT: u32 = 1 << 4;
    /// An EVAL script without a shebang: the pre-7.0 semantics.
    pub const EVAL_COMPAT: u32 = 1 << 5;

    /// Flag names, as shebangs and FUNCTION LIST spell them.
    pub const NAMES: &[(u32, &str)] = &[
        (NO_WRITES, "no-writes"),
        (ALLOW_OOM, "allow-oom"),
        (ALLOW_STALE, "allow-stale"),
        (NO_CLUSTER, "no-cluster"),
        (ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
    ];

    pub fn parse(name: &[u8]) -> Option<u32> {
        NAMES.iter().find(|(_, n)| n.as_bytes() == name).map(|(f, _)| *f)
    }
}

/// A script in the EVAL cache.
pub struct Script {
    pub body: Vec<u8>,
    pub flags: u32,
    pub func: mlua::Function,
}

/// State of the script running now, shared with the instruction hook and with the handlers
/// of SCRIPT KILL / FUNCTION KILL that run while it is busy.
#[derive(Debug, Default)]
pub struct Busy {
    /// When the running script started (`None`: nothing runs). Why not an `Instant`: this is
    /// set on every execution, and `clock_gettime` showed in small EVALSHA profiles.
    pub started: Cell<Option<crate::util::clock::Stamp>>,
    /// EVAL (true) or FCALL (false).
    pub eval_mode: Cell<bool>,
    /// The script's sha or the function's name, for logs.
    pub name: RefCell<String>,
    /// `busy-reply-threshold` in milliseconds (0 = never busy).
    pub threshold_ms: Cell<u64>,
    /// The script passed the threshold: other clients now get BUSY.
    pub timed_out: Cell<bool>,
    /// SCRIPT KILL / FUNCTION KILL asked the script to stop.
    pub killed: Cell<bool>,
    /// The script already wrote: it cannot be killed any more.
    pub wrote: Cell<bool>,
    /// The hook runs on every line too (set once a kill was delivered).
    pub kill_hook_armed: Cell<bool>,
    /// FUNCTION LOAD's deadline for running a library's top level.
    pub load_deadline: Cell<Option<Instant>>,
    /// Last time the hook served other clients.
    pub last_poll: Cell<Option<Instant>>,
    /// SHUTDOWN NOSAVE arrived while busy.
    pub shutdown: Cell<bool>,
    /// Self reference, so the hook can re-register itself.
    me: RefCell<std::rc::Weak<Busy>>,
}

impl Busy {
    pub fn new() -> Rc<Busy> {
        let b = Rc::new(Busy::default());
        *b.me.borrow_mut() = Rc::downgrade(&b);
        b
    }

    pub fn clone_rc(&self) -> Rc<Busy> {
        self.me.borrow().upgrade().unwrap_or_else(Busy::new)
    }

    /// Milliseconds the running script has run (0 when none runs).
    pub fn elapsed_ms(&self) -> u64 {
        self.started.get().map_or(0, |s| crate::util::clock::elapsed_us(s) / 1000)
    }

    /// Whether a script runs now and passed the busy threshold.
    pub fn is_busy(&self) -> bool {
        self.started.get().is_some() && self.timed_out.get()
    }
}

/// All scripting state of the server.
pub struct Scripting {
    /// Why `Rc`: each execution holds its engine while the server state is borrowed; cloning
    /// an `Engine` copies a dozen Lua references (registry traffic on every call).
    pub eval: Rc<Engine>,
    pub func: Rc<Engine>,
    /// EVAL script cache by lowercase sha1 hex. Why foldhash: SipHash of the 40-byte key
    /// showed in EVALSHA profiles; the keys are digests, and the seed is still random.
    pub scripts: HashMap<String, Script, foldhash::fast::RandomState>,
    /// Function libraries.
    pub libs: functions::Libraries,
    pub busy: Rc<Busy>,
    /// The scripts' own client, lent to each execution.
    pub client: Option<Client>,
    /// The reply buffer of the scripts' commands, lent to each execution.
    pub reply: Option<crate::protocol::ReplyBuf>,
    /// DEBUG SET-DISABLE-DENY-SCRIPTS: scripts may run NOSCRIPT commands (tests only).
    pub disable_deny_scripts: bool,
    /// The lrand48 state behind `math.random`, shared by both interpreters.
    rng: Rc<Cell<u64>>,
}

impl Scripting {
    pub fn new() -> Scripting {
        let rng = Rc::new(Cell::new(engine::LRAND48_INIT));
        let busy = Busy::new();
        let eval = Engine::new(rng.clone(), busy.clone()).expect("creating the Lua interpreter");
        let func = Engine::new(rng.clone(), busy.clone()).expect("creating the Lua interpreter");
        Scripting {
            eval: Rc::new(eval),
            func: Rc::new(func),
            scripts: HashMap::default(),
            libs: functions::Libraries::default(),
            busy,
            client: Some(script_client()),
            reply: None,
            disable_deny_scripts: false,
            rng,
        }
    }

    /// SCRIPT FLUSH: forgets every cached script and starts a fresh EVAL interpreter, as Redis
    /// does, so nothing a script left behind survives the flush.
    pub fn flush_eval(&mut self) {
        self.scripts.clear();
        match Engine::new(self.rng.clone(), self.busy.clone()) {
            Ok(fresh) => self.eval = Rc::new(fresh),
            // Creating an interpreter only fails when memory is exhausted; the old one stays
            // usable, so keep it after a full collection.
            Err(_) => {
                let _ = self.eval.lua.gc_collect();
            }
        }
    }

    /// Memory used by the EVAL interpreter, in bytes.
    pub fn eval_memory(&self) -> usize {
        self.eval.lua.used_memory()
    }

    /// Memory used by the FUNCTION interpreter, in bytes.
    pub fn functions_vm_memory(&self) -> usize {
        self.func.lua.used_memory()
    }

    /// Bytes held by the EVAL script cache outside Lua (bodies, ids, table entries).
    pub fn cache_memory(&self) -> usize {
        self.scripts.iter().map(|(sha, s)| sha.len() + s.body.len() + 64).sum()
    }

    /// Bytes held by the loaded libraries' code and their function index.
    pub fn functions_memory(&self) -> usize {
        let code: usize = self.libs.libs.values().map(|l| l.name.len() + l.code.len() + 64).sum();
        code + self.libs.functions.iter().map(|(k, v)| k.len() + v.len() + 64).sum::<usize>()
    }
}

impl Default for Scripting {
    fn default() -> Self {
        Scripting::new()
    }
}

/// Client id of the scripts' own client (real clients count from 1).
pub const SCRIPT_CLIENT_ID: u64 = 0;

/// The fake client scripts run their commands as.
fn script_client() -> Client {
    let addr: std::net::SocketAddr = ([0, 0, 0, 0], 0).into();
    let mut info = ClientInfo::new(SCRIPT_CLIENT_ID, addr, addr, -1);
    info.flags = "S".into();
    let shared = Rc::new(ClientShared::new(info));
    Client::new(SCRIPT_CLIENT_ID, shared, true)
}

/// `sha` lowercased into `buf`, as a key of [`Scripting::scripts`]; `None` when it cannot be
/// one (not 40 ASCII characters).
pub fn lowercase_sha<'b>(sha: &[u8], buf: &'b mut [u8; 40]) -> Option<&'b str> {
    if sha.len() != 40 {
        return None;
    }
    for (b, c) in buf.iter_mut().zip(sha) {
        *b = c.to_ascii_lowercase();
    }
    std::str::from_utf8(buf).ok()
}

/// Lowercase hex SHA1 of `data` (script ids, `redis.sha1hex`).
pub fn sha1_hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}
