//! Command table and the per-family command files.
//!
//! Each family file (`string.rs`, `keys.rs`, ...) begins with its `COMMANDS` table, like the
//! family registrations of Redis's `t_*.c` / Dragonfly's `*_family.cc`: name, arity, flags, key
//! positions, handler. [`registry`] merges every family's table into one lookup map. A command
//! that is not in any table answers Redis's `ERR unknown command`.

pub mod acl;
pub mod args;
pub mod bitops;
pub mod cluster;
pub mod command;
pub mod connection;
pub mod function;
pub mod geo;
pub mod hash;
pub mod hyperloglog;
pub mod keys;
pub mod latency;
pub mod list;
pub mod lolwut;
pub mod memory;
pub mod migrate;
pub mod module;
pub mod scripting;
pub mod pubsub;
pub mod multi;
pub mod persistence;
pub mod server;
pub mod set;
pub mod slowlog;
pub mod sort;
pub mod stream;
pub mod stream_group;
pub mod string;
pub mod zset;

use std::sync::OnceLock;

pub use crate::dispatch::Ctx;
pub use crate::error::{CmdError, CmdResult};

/// Command flags, with Redis's meanings (see `COMMAND INFO`).
pub mod flags {
    pub const WRITE: u32 = 1;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const FAST: u32 = 1 << 11;
    pub const NO_AUTH: u32 = 1 << 12;
    pub const MAY_REPLICATE: u32 = 1 << 13;
    pub const NO_MULTI: u32 = 1 << 14;
    pub const MOVABLE_KEYS: u32 = 1 << 15;
    pub const ALLOW_BUSY: u32 = 1 << 16;
    pub const NO_MANDATORY_KEYS: u32 = 1 << 17;
    pub const PROTECTED: u32 = 1 << 18;
    pub const NO_ASYNC_LOADING: u32 = 1 << 19;
    pub const SENTINEL: u32 = 1 << 20;
    pub const ONLY_SENTINEL: u32 = 1 << 21;
    /// May touch keys it does not name (SCAN, RANDOMKEY: lazy expiry of any key); Redis does
    /// not wrap what such a command propagates in MULTI/EXEC. Hidden from COMMAND INFO, as in
    /// Redis 7.0.
    pub const TOUCHES_ARBITRARY_KEYS: u32 = 1 << 22;
    /// Runs as if ASKING was sent first (RESTORE-ASKING); only meaningful in cluster mode,
    /// which ferrodis does not have, so it only shows in COMMAND INFO.
    pub const ASKING: u32 = 1 << 23;

    /// Flag names as COMMAND INFO prints them, in Redis's order (`may_replicate` is hidden
    /// there on purpose).
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (ASKING, "asking"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_MULTI, "no_multi"),
        (MOVABLE_KEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
    ];
}

/// A handler: runs the command and writes its reply, or returns an error for the dispatcher
/// to render. `argv[0]` is the command name as the client sent it.
pub type Handler = fn(&mut Ctx<'_>, &[&[u8]]) -> CmdResult;

/// Legacy key positions (COMMAND INFO's first key, last key, step; 0 = no keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPos {
    pub first: i32,
    pub last: i32,
    pub step: i32,
}

/// One command (or subcommand of a container command such as CONFIG).
#[derive(Debug)]
pub struct CommandSpec {
    /// Lowercase name; for a subcommand, just the subcommand (`get` of `config|get`).
    pub name: &'static str,
    /// Redis arity: exact argument count including the name when positive, minimum when negative.
    pub arity: i32,
    pub flags: u32,
    pub keys: KeyPos,
    pub handler: Handler,
    /// Non-empty for container commands; the dispatcher picks one by `argv[1]`.
    pub subcommands: &'static [CommandSpec],
    /// For subcommands, the parent's name (set through [`CommandSpec::sub`]).
    pub parent: Option<&'static str>,
}

impl CommandSpec {
    /// A command whose keys are at `first..=last` stepping `step` (use 0,0,0 for none).
    pub const fn new(
        name: &'static str,
        arity: i32,
        flags: u32,
        first: i32,
        last: i32,
        step: i32,
        handler: Handler,
    ) -> Self {
        CommandSpec {
            name,
            arity,
            flags,
            keys: KeyPos { first, last, step },
            handler,
            subcommands: &[],
            parent: None,
        }
    }

    /// A container command (CONFIG, CLIENT, OBJECT, ...).
    pub const fn container(
        name: &'static str,
        arity: i32,
        flags: u32,
        subcommands: &'static [CommandSpec],
    ) -> Self {
        CommandSpec {
            name,
            arity,
            flags,
            keys: KeyPos { first: 0, last: 0, step: 0 },
            handler: container_without_subcommand,
            subcommands,
            parent: None,
        }
    }

    /// A subcommand of `parent`.
    pub const fn sub(
        parent: &'static str,
        name: &'static str,
        arity: i32,
        flags: u32,
        first: i32,
        last: i32,
        step: i32,
        handler: Handler,
    ) -> Self {
        CommandSpec {
            name,
            arity,
            flags,
            keys: KeyPos { first, last, step },
            handler,
            subcommands: &[],
            parent: Some(parent),
        }
    }

    /// The name used in errors and COMMAND output: `get`, or `config|get` for a subcommand.
    pub fn full_name(&self) -> String {
        match self.parent {
            Some(p) => format!("{p}|{}", self.name),
            None => self.name.to_string(),
        }
    }

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// Whether `argc` satisfies the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let a = self.arity;
        if a >= 0 {
            argc == a as usize
        } else {
            argc >= (-a) as usize
        }
    }

    pub fn find_sub(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        // Subcommand tables are static, so the references live forever.
        let subs: &'static [CommandSpec] = self.subcommands;
        subs.iter().find(|s| s.name.as_bytes().eq_ignore_ascii_case(name))
    }
}

/// Only reached when a container is called with no subcommand, which arity rules out for all
/// containers (they need at least 2 arguments).
fn container_without_subcommand(_ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    Err(CmdError::WrongArity(String::from_utf8_lossy(argv[0]).to_lowercase()))
}

/// Every family's table.
fn families() -> [&'static [CommandSpec]; 31] {
    [
        string::COMMANDS,
        bitops::COMMANDS,
        keys::COMMANDS,
        connection::COMMANDS,
        server::COMMANDS,
        command::COMMANDS,
        function::COMMANDS,
        list::COMMANDS,
        hash::COMMANDS,
        set::COMMANDS,
        zset::COMMANDS,
        geo::COMMANDS,
        stream::COMMANDS,
        stream_group::COMMANDS,
        memory::COMMANDS,
        sort::COMMANDS,
        scripting::COMMANDS,
        pubsub::COMMANDS,
        multi::COMMANDS,
        persistence::COMMANDS,
        crate::aof::waitaof::COMMANDS,
        crate::replication::commands::COMMANDS,
        crate::aof::rewrite::COMMANDS,
        slowlog::COMMANDS,
        latency::COMMANDS,
        module::COMMANDS,
        hyperloglog::COMMANDS,
        cluster::COMMANDS,
        migrate::COMMANDS,
        acl::COMMANDS,
        lolwut::COMMANDS,
    ]
}

/// Command lookup table plus a dense id per top-level command (for per-command statistics).
///
/// Why not a `HashMap`: the lookup runs once per command and profiling showed the generic
/// path (copy, lowercase, streaming hash, probe, compare) at ~200 instructions, more than the
/// whole GET handler. Command names are short, so lowercasing and hashing happen in one pass
/// over at most four 8-byte words, into an open-addressing table sized for a load under 1/4.
pub struct Registry {
    slots: Vec<Option<(&'static str, usize)>>,
    pub all: Vec<&'static CommandSpec>,
}

/// Longest command name the table accepts (Redis's longest is 26 bytes).
const MAX_NAME: usize = 32;

/// Lowercases `name` into `buf` and hashes it (a multiply-xorshift over 8-byte words; the
/// names are our own fixed set, so no keyed hash is needed).
#[inline]
fn fold_name(name: &[u8], buf: &mut [u8; MAX_NAME]) -> u64 {
    buf[..name.len()].copy_from_slice(name);
    let mut h = name.len() as u64;
    for chunk in buf.chunks_exact_mut(8).take(name.len().div_ceil(8)) {
        let mut w = u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        // ASCII lowercase of eight bytes at once: set bit 5 of exactly the bytes in 'A'..='Z'
        // (bit 7 is cleared first so that no addition carries into the next byte).
        let low7 = w & 0x7f7f7f7f7f7f7f7f;
        let upper = (low7.wrapping_add(0x3f3f3f3f3f3f3f3f) ^ low7.wrapping_add(0x2525252525252525))
            & !w
            & 0x8080808080808080;
        w |= upper >> 2;
        chunk.copy_from_slice(&w.to_le_bytes());
        h = (h ^ w).wrapping_mul(0x9e3779b97f4a7c15);
        h ^= h >> 29;
    }
    h
}

impl Registry {
    /// Finds a top-level command by name, ignoring case.
    #[inline]
    pub fn lookup(&self, name: &[u8]) -> Option<(usize, &'static CommandSpec)> {
        if name.is_empty() || name.len() > MAX_NAME {
            return None;
        }
        let mut buf = [0u8; MAX_NAME];
        let mask = self.slots.len() - 1;
        let mut i = fold_name(name, &mut buf) as usize & mask;
        let lower = &buf[..name.len()];
        loop {
            match self.slots[i] {
                None => return None,
                Some((n, id)) if n.as_bytes() == lower => return Some((id, self.all[id])),
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }
}

/// The process-wide command registry.
pub fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| {
        let all: Vec<&'static CommandSpec> = families().into_iter().flatten().collect();
        let size = (all.len() * 4).next_power_of_two();
        let mut slots = vec![None; size];
        for (id, spec) in all.iter().enumerate() {
            assert!(!spec.name.is_empty() && spec.name.len() <= MAX_NAME, "{}", spec.name);
            let mut buf = [0u8; MAX_NAME];
            let mut i = fold_name(spec.name.as_bytes(), &mut buf) as usize & (size - 1);
            while let Some((n, _)) = slots[i] {
                assert!(n != spec.name, "command {} registered twice", spec.name);
                i = (i + 1) & (size - 1);
            }
            slots[i] = Some((spec.name, id));
        }
        Registry { slots, all }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_lowercase_and_unique() {
        let reg = registry();
        for spec in &reg.all {
            assert_eq!(spec.name, spec.name.to_lowercase());
            for sub in spec.subcommands {
                assert_eq!(sub.parent, Some(spec.name), "{} parent", sub.name);
            }
        }
        assert!(reg.lookup(b"GET").is_some());
        assert!(reg.lookup(b"nosuchcommand").is_none());
        assert!(reg.lookup(b"").is_none());
        assert!(reg.lookup(b"get\0").is_none());
        assert!(reg.lookup(b"GE@").is_none());
        for (id, spec) in reg.all.iter().enumerate() {
            let upper = spec.name.to_uppercase();
            assert_eq!(reg.lookup(upper.as_bytes()).map(|f| f.0), Some(id), "{}", spec.name);
            assert_eq!(reg.lookup(spec.name.as_bytes()).map(|f| f.0), Some(id));
        }
    }
}
