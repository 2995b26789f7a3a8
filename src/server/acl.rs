//! Access control lists: the user table, each user's rules (passwords, flags and selectors of
//! commands, key patterns and channel patterns), the permission check, and the ACL log.
//!
//! A user's rules are applied with [`User::apply`], one rule at a time, exactly as Redis's
//! `ACLSetUser` reads them; [`User::describe`] turns them back into the canonical rule string of
//! ACL LIST and ACL SAVE. Commands are numbered once ([`index`]), subcommands included, so a
//! selector's command permissions are a bit set, with the last bit standing for commands that
//! do not exist yet (`+@all` sets it, `-@all` clears it).
//!
//! Clients hold their user as an `Rc<AclUser>`; modifications happen in place, so they apply to
//! every client of the user at once. [`AclUser::unrestricted`] is kept up to date after each
//! change: a client whose user may do everything pays a single branch per command.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::sync::OnceLock;

use crate::commands::{flags, registry, CommandSpec};

/// Redis's ACL categories, in its order (ACL CAT, COMMAND INFO, rule descriptions).
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The category bit of a category name (case-insensitive), 0 if there is none.
pub fn category_flag(name: &[u8]) -> u32 {
    CATEGORIES
        .iter()
        .position(|c| c.as_bytes().eq_ignore_ascii_case(name))
        .map_or(0, |i| 1 << i)
}

/// Number of command bits; the last one stands for commands added in the future.
const BITS: usize = 1024;
const WORDS: usize = BITS / 64;
const FUTURE: usize = BITS - 1;

/// One command or subcommand as ACL rules see it.
pub struct CmdEntry {
    pub spec: &'static CommandSpec,
    /// `get`, `config|get`.
    pub full: String,
    /// Category bits (see [`CATEGORIES`]).
    pub cats: u32,
    /// Ids of the subcommands of a container.
    pub subs: Vec<usize>,
    pub is_sub: bool,
    /// Redis's metadata (key specs, categories).
    pub meta: Option<&'static crate::commands::command::CmdMeta>,
}

/// Every command numbered: top-level commands in registry order, each followed by its
/// subcommands.
pub struct CmdIndex {
    pub entries: Vec<CmdEntry>,
    /// Top-level ids, in order.
    pub top: Vec<usize>,
    by_addr: HashMap<usize, usize>,
}

impl CmdIndex {
    /// The ACL id of a registered command.
    pub fn id_of(&self, spec: &CommandSpec) -> Option<usize> {
        self.by_addr
            .get(&(spec as *const CommandSpec as usize))
            .copied()
    }
}

fn entry(spec: &'static CommandSpec, is_sub: bool) -> CmdEntry {
    let meta = crate::commands::command::meta_of(spec);
    let cats = meta.map_or(0, |m| {
        m.acl.iter().fold(0, |acc, c| {
            acc | category_flag(c.trim_start_matches('@').as_bytes())
        })
    });
    CmdEntry {
        spec,
        full: spec.full_name(),
        cats,
        subs: Vec::new(),
        is_sub,
        meta,
    }
}

/// The command numbering, built once.
pub fn index() -> &'static CmdIndex {
    static INDEX: OnceLock<CmdIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut idx = CmdIndex {
            entries: Vec::new(),
            top: Vec::new(),
            by_addr: HashMap::new(),
        };
        for &spec in &registry().all {
            let id = idx.entries.len();
            idx.top.push(id);
            idx.by_addr.insert(spec as *const CommandSpec as usize, id);
            idx.entries.push(entry(spec, false));
            let subs: &'static [CommandSpec] = spec.subcommands;
            for sub in subs {
                let sid = idx.entries.len();
                idx.by_addr.insert(sub as *const CommandSpec as usize, sid);
                idx.entries[id].subs.push(sid);
                idx.entries.push(entry(sub, true));
            }
        }
        assert!(
            idx.entries.len() < FUTURE,
            "too many commands for the ACL bit set"
        );
        idx
    })
}

/// Why a rule was refused (Redis's errno values in `ACLSetUser`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError {
    /// Unknown command or category.
    NoEnt,
    Syntax,
    AfterAllKeys,
    AfterAllChannels,
    NoSuchPassword,
    BadHash,
    Duplicate,
    FirstArgOfSub,
}

impl RuleError {
    /// Redis's text for the error (`ACLSetUserStringError`).
    pub fn text(self) -> &'static str {
        match self {
            RuleError::NoEnt => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::AfterAllKeys => {
                "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and \
                 does not have any effect. Try 'resetkeys' to start with an empty list of \
                 patterns"
            }
            RuleError::AfterAllChannels => {
                "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid \
                 and does not have any effect. Try 'resetchannels' to start with an empty list \
                 of channels"
            }
            RuleError::NoSuchPassword => {
                "The password you are trying to remove from the user does not exist"
            }
            RuleError::BadHash => {
                "The password hash must be exactly 64 characters and contain only lowercase \
                 hexadecimal characters"
            }
            RuleError::Duplicate => {
                "Duplicate user found. A user can only be defined once in config files"
            }
            RuleError::FirstArgOfSub => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

/// Key permission bits of a key pattern.
pub const PERM_READ: u8 = 1;
pub const PERM_WRITE: u8 = 2;
const PERM_ALL: u8 = PERM_READ | PERM_WRITE;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern {
    pub perms: u8,
    pub pattern: Vec<u8>,
}

impl KeyPattern {
    /// `~pat`, `%R~pat` or `%W~pat`.
    fn describe(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self.perms {
            PERM_READ => b"%R~",
            PERM_WRITE => b"%W~",
            _ => b"~",
        });
        out.extend_from_slice(&self.pattern);
    }
}

/// A set of permissions: the user's root one, or a `(...)` selector.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub root: bool,
    pub allkeys: bool,
    pub allchannels: bool,
    pub allcommands: bool,
    bits: [u64; WORDS],
    /// First arguments allowed for commands whose bit is clear (`+select|0`).
    firstargs: BTreeMap<usize, Vec<Vec<u8>>>,
    pub patterns: Vec<KeyPattern>,
    pub channels: Vec<Vec<u8>>,
}

/// Whether a user name or pattern holds a space or NUL (`isspace` or 0), which rules refuse.
pub fn has_spaces(s: &[u8]) -> bool {
    s.iter()
        .any(|&c| c == 0 || c.is_ascii_whitespace() || c == 0x0b)
}

impl Selector {
    fn new(root: bool, allchannels: bool) -> Self {
        Selector {
            root,
            allchannels,
            ..Default::default()
        }
    }

    fn bit(&self, id: usize) -> bool {
        self.bits[id / 64] & (1 << (id % 64)) != 0
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if on {
            self.bits[id / 64] |= 1 << (id % 64);
        } else {
            self.bits[id / 64] &= !(1 << (id % 64));
            self.allcommands = false;
        }
    }

    /// Allows or denies a command and, for a container, all its subcommands.
    fn change_perm(&mut self, id: usize, allow: bool) {
        self.set_bit(id, allow);
        self.firstargs.remove(&id);
        for &sub in &index().entries[id].subs {
            self.set_bit(sub, allow);
        }
    }

    fn set_category(&mut self, cat: u32, allow: bool) {
        let idx = index();
        for &top in &idx.top {
            let e = &idx.entries[top];
            if e.cats & cat != 0 {
                self.change_perm(top, allow);
            }
            for &sub in &e.subs {
                if idx.entries[sub].cats & cat != 0 {
                    self.change_perm(sub, allow);
                }
            }
        }
    }

    fn count_category(&self, cat: u32) -> (usize, usize) {
        let (mut on, mut off) = (0, 0);
        for e in index()
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.cats & cat != 0)
        {
            if self.bit(e.0) {
                on += 1;
            } else {
                off += 1;
            }
        }
        (on, off)
    }

    fn add_firstarg(&mut self, id: usize, arg: &[u8]) {
        let list = self.firstargs.entry(id).or_default();
        if !list.iter().any(|a| a.eq_ignore_ascii_case(arg)) {
            list.push(arg.to_vec());
        }
    }

    /// Applies one selector rule (Redis's `ACLSetSelector`).
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        if is("allkeys") || is("~*") {
            self.allkeys = true;
            self.patterns.clear();
        } else if is("resetkeys") {
            self.allkeys = false;
            self.patterns.clear();
        } else if is("allchannels") || is("&*") {
            self.allchannels = true;
            self.channels.clear();
        } else if is("resetchannels") {
            self.allchannels = false;
            self.channels.clear();
        } else if is("allcommands") || is("+@all") {
            self.bits = [u64::MAX; WORDS];
            self.allcommands = true;
            self.firstargs.clear();
        } else if is("nocommands") || is("-@all") {
            self.bits = [0; WORDS];
            self.allcommands = false;
            self.firstargs.clear();
        } else if op.first() == Some(&b'~') || op.first() == Some(&b'%') {
            self.add_key_pattern(op)?;
        } else if op.first() == Some(&b'&') {
            if self.allchannels {
                return Err(RuleError::AfterAllChannels);
            }
            if has_spaces(&op[1..]) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|c| c == &op[1..]) {
                self.channels.push(op[1..].to_vec());
            }
            self.allchannels = false;
        } else if op.first() == Some(&b'+') && op.get(1) != Some(&b'@') {
            self.allow_command(&op[1..])?;
        } else if op.first() == Some(&b'-') && op.get(1) != Some(&b'@') {
            let id = lookup(&op[1..]).ok_or(RuleError::NoEnt)?;
            self.change_perm(id, false);
        } else if matches!(op.first(), Some(b'+' | b'-')) && op.get(1) == Some(&b'@') {
            let cat = category_flag(&op[2..]);
            if cat == 0 {
                return Err(RuleError::NoEnt);
            }
            self.set_category(cat, op[0] == b'+');
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    fn add_key_pattern(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if self.allkeys {
            return Err(RuleError::AfterAllKeys);
        }
        let mut perms = 0;
        let mut offset = 1;
        if op[0] == b'%' {
            loop {
                let Some(&c) = op.get(offset) else {
                    break;
                };
                if c.to_ascii_uppercase() == b'R' && perms & PERM_READ == 0 {
                    perms |= PERM_READ;
                } else if c.to_ascii_uppercase() == b'W' && perms & PERM_WRITE == 0 {
                    perms |= PERM_WRITE;
                } else if c == b'~' {
                    offset += 1;
                    break;
                } else {
                    return Err(RuleError::Syntax);
                }
                offset += 1;
            }
        } else {
            perms = PERM_ALL;
        }
        let pattern = &op[offset.min(op.len())..];
        if has_spaces(pattern) {
            return Err(RuleError::Syntax);
        }
        match self.patterns.iter_mut().find(|p| p.pattern == pattern) {
            Some(p) => p.perms |= perms,
            None => self.patterns.push(KeyPattern {
                perms,
                pattern: pattern.to_vec(),
            }),
        }
        self.allkeys = false;
        Ok(())
    }

    /// `+cmd`, `+container|sub`, or `+cmd|firstarg`.
    fn allow_command(&mut self, name: &[u8]) -> Result<(), RuleError> {
        let Some(bar) = name.iter().rposition(|&c| c == b'|') else {
            let id = lookup(name).ok_or(RuleError::NoEnt)?;
            self.change_perm(id, true);
            return Ok(());
        };
        let (cmd, sub) = (&name[..bar], &name[bar + 1..]);
        let id = lookup(cmd).ok_or(RuleError::NoEnt)?;
        let entry = &index().entries[id];
        if entry.is_sub {
            return Err(RuleError::FirstArgOfSub);
        }
        if sub.is_empty() {
            return Err(RuleError::Syntax);
        }
        if !entry.subs.is_empty() {
            let sid = lookup(name).ok_or(RuleError::NoEnt)?;
            self.change_perm(sid, true);
        } else {
            tracing::warn!(
                "Deprecation warning: Allowing a first arg of an otherwise blocked command is \
                 a misuse of ACL and may get disabled in the future (offender: +{})",
                String::from_utf8_lossy(name)
            );
            self.add_firstarg(id, sub);
        }
        Ok(())
    }

    /// The command part of the description: `+@all -get`, `-@all +@read ...`.
    pub fn describe_commands(&self) -> String {
        let idx = index();
        let additive = !self.bit(FUTURE);
        let mut rules = String::new();
        let mut fake = Selector::default();
        if additive {
            rules.push_str("-@all ");
        } else {
            rules.push_str("+@all ");
            fake.bits = [u64::MAX; WORDS];
        }
        let mut temp = Selector {
            bits: self.bits,
            ..Default::default()
        };
        let mut applied = [false; 32];
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (usize::MAX, 0);
            for (j, _) in CATEGORIES.iter().enumerate().filter(|(j, _)| !applied[*j]) {
                let (on, off) = temp.count_category(1 << j);
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(j);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(j) = best else {
                break;
            };
            fake.set_category(1 << j, additive);
            temp.set_category(1 << j, !additive);
            rules.push_str(if additive { "+@" } else { "-@" });
            rules.push_str(CATEGORIES[j]);
            rules.push(' ');
            applied[j] = true;
        }
        for &top in &idx.top {
            self.describe_single(&mut fake, top, &mut rules);
            for &sub in &idx.entries[top].subs {
                self.describe_single(&mut fake, sub, &mut rules);
            }
        }
        rules.pop();
        rules
    }

    fn describe_single(&self, fake: &mut Selector, id: usize, rules: &mut String) {
        let e = &index().entries[id];
        let userbit = self.bit(id);
        if userbit != fake.bit(id) {
            rules.push(if userbit { '+' } else { '-' });
            rules.push_str(&e.full);
            rules.push(' ');
            fake.change_perm(id, userbit);
        }
        if !userbit {
            for arg in self.firstargs.get(&id).into_iter().flatten() {
                rules.push('+');
                rules.push_str(&e.full);
                rules.push('|');
                rules.push_str(&String::from_utf8_lossy(arg));
                rules.push(' ');
            }
        }
    }

    /// The key patterns as GETUSER shows them (`~*`, or the patterns joined by spaces).
    pub fn describe_keys(&self) -> Vec<u8> {
        if self.allkeys {
            return b"~*".to_vec();
        }
        let mut out = Vec::new();
        for (i, p) in self.patterns.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            p.describe(&mut out);
        }
        out
    }

    /// The channel patterns as GETUSER shows them.
    pub fn describe_channels(&self) -> Vec<u8> {
        if self.allchannels {
            return b"&*".to_vec();
        }
        let mut out = Vec::new();
        for (i, c) in self.channels.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.push(b'&');
            out.extend_from_slice(c);
        }
        out
    }

    /// The whole selector as rules (`ACLDescribeSelector`).
    fn describe(&self, out: &mut Vec<u8>) {
        if self.allkeys {
            out.extend_from_slice(b"~* ");
        } else {
            for p in &self.patterns {
                p.describe(out);
                out.push(b' ');
            }
        }
        if self.allchannels {
            out.extend_from_slice(b"&* ");
        } else {
            out.extend_from_slice(b"resetchannels ");
            for c in &self.channels {
                out.push(b'&');
                out.extend_from_slice(c);
                out.push(b' ');
            }
        }
        out.extend_from_slice(self.describe_commands().as_bytes());
    }

    fn unrestricted(&self) -> bool {
        self.allkeys && self.allchannels && self.allcommands
    }

    /// Checks one command against this selector (`ACLSelectorCheckCmd`).
    fn check(&self, req: &mut Request<'_>) -> Result<(), Denied> {
        let spec = req.spec;
        if !self.allcommands && !spec.has(flags::NO_AUTH) && !self.bit(req.id) {
            let at = if spec.parent.is_some() { 2 } else { 1 };
            let allowed = match (self.firstargs.get(&req.id), req.argv.get(at)) {
                (Some(list), Some(arg)) => list.iter().any(|a| a.eq_ignore_ascii_case(arg)),
                _ => false,
            };
            if !allowed {
                return Err(Denied {
                    reason: Reason::Command,
                    pos: 0,
                });
            }
        }
        if !self.allkeys {
            let argv = req.argv;
            for &(pos, perms) in req.keys() {
                let key = argv[pos];
                let ok = self.patterns.iter().any(|p| {
                    p.perms & perms == perms && crate::util::glob::matches(&p.pattern, key, false)
                });
                if !ok {
                    return Err(Denied {
                        reason: Reason::Key,
                        pos,
                    });
                }
            }
        }
        if !self.allchannels {
            let argv = req.argv;
            for &(pos, pattern) in req.channels() {
                if !channel_allowed(&self.channels, argv[pos], pattern) {
                    return Err(Denied {
                        reason: Reason::Channel,
                        pos,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Whether `channel` (or, for PSUBSCRIBE, the pattern itself) is allowed by `list`.
fn channel_allowed(list: &[Vec<u8>], channel: &[u8], is_pattern: bool) -> bool {
    list.iter().any(|p| {
        if is_pattern {
            p == channel
        } else {
            crate::util::glob::matches(p, channel, false)
        }
    })
}

/// A command name as ACL rules write it (`get`, `config|get`), to its id.
fn lookup(name: &[u8]) -> Option<usize> {
    let spec = crate::commands::command::lookup_by_name(name)?;
    if name.iter().filter(|&&c| c == b'|').count() > 1 {
        return None;
    }
    index().id_of(spec)
}

/// Why a command was refused, in Redis's order of relevance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    Command = 1,
    Key = 2,
    Auth = 3,
    Channel = 4,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Auth => "auth",
            Reason::Channel => "channel",
        }
    }
}

/// A refused command: the reason and the argument at fault (key or channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied {
    pub reason: Reason,
    pub pos: usize,
}

/// A command being checked, with its keys and channels found once for all selectors.
pub struct Request<'a> {
    pub id: usize,
    pub spec: &'static CommandSpec,
    pub argv: &'a [&'a [u8]],
    keys: Option<Vec<(usize, u8)>>,
    channels: Option<Vec<(usize, bool)>>,
}

impl<'a> Request<'a> {
    /// `None` for a command that is not registered (cannot happen for resolved commands).
    pub fn new(spec: &'static CommandSpec, argv: &'a [&'a [u8]]) -> Option<Self> {
        let id = index().id_of(spec)?;
        Some(Request {
            id,
            spec,
            argv,
            keys: None,
            channels: None,
        })
    }

    fn keys(&mut self) -> &[(usize, u8)] {
        let (spec, argv) = (self.spec, self.argv);
        self.keys
            .get_or_insert_with(|| crate::commands::acl::command_keys(spec, argv))
    }

    fn channels(&mut self) -> &[(usize, bool)] {
        let (spec, argv) = (self.spec, self.argv);
        self.channels
            .get_or_insert_with(|| crate::commands::acl::command_channels(spec, argv))
    }
}

/// User flags, in the order descriptions list them.
pub const FLAG_ON: u8 = 1;
pub const FLAG_OFF: u8 = 2;
pub const FLAG_NOPASS: u8 = 4;
pub const FLAG_SKIP_SANITIZE: u8 = 8;
pub const FLAG_SANITIZE: u8 = 16;
pub const FLAG_NAMES: &[(u8, &str)] = &[
    (FLAG_ON, "on"),
    (FLAG_OFF, "off"),
    (FLAG_NOPASS, "nopass"),
    (FLAG_SKIP_SANITIZE, "skip-sanitize-payload"),
    (FLAG_SANITIZE, "sanitize-payload"),
];

/// A user's rules.
#[derive(Debug, Clone)]
pub struct User {
    pub flags: u8,
    /// SHA-256 hashes, lowercase hex.
    pub passwords: Vec<String>,
    /// The root selector first, then the `(...)` selectors.
    pub selectors: Vec<Selector>,
}

impl User {
    /// A new user: disabled, no passwords, no permissions.
    pub fn new(allchannels: bool) -> Self {
        User {
            flags: FLAG_OFF,
            passwords: Vec::new(),
            selectors: vec![Selector::new(true, allchannels)],
        }
    }

    pub fn enabled(&self) -> bool {
        self.flags & FLAG_OFF == 0
    }

    pub fn nopass(&self) -> bool {
        self.flags & FLAG_NOPASS != 0
    }

    pub fn root(&self) -> &Selector {
        &self.selectors[0]
    }

    /// Applies one rule (Redis's `ACLSetUser`); `allchannels` is `acl-pubsub-default`.
    pub fn apply(&mut self, op: &[u8], allchannels: bool) -> Result<(), RuleError> {
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        if op.is_empty() {
            return Ok(());
        }
        if is("on") {
            self.flags = (self.flags | FLAG_ON) & !FLAG_OFF;
        } else if is("off") {
            self.flags = (self.flags | FLAG_OFF) & !FLAG_ON;
        } else if is("skip-sanitize-payload") {
            self.flags = (self.flags | FLAG_SKIP_SANITIZE) & !FLAG_SANITIZE;
        } else if is("sanitize-payload") {
            self.flags = (self.flags | FLAG_SANITIZE) & !FLAG_SKIP_SANITIZE;
        } else if is("nopass") {
            self.flags |= FLAG_NOPASS;
            self.passwords.clear();
        } else if is("resetpass") {
            self.flags &= !FLAG_NOPASS;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let hash = password_hash_of(op)?;
            if !self.passwords.contains(&hash) {
                self.passwords.push(hash);
            }
            self.flags &= !FLAG_NOPASS;
        } else if op[0] == b'<' || op[0] == b'!' {
            let hash = password_hash_of(op)?;
            let at = self.passwords.iter().position(|p| *p == hash);
            self.passwords.remove(at.ok_or(RuleError::NoSuchPassword)?);
        } else if op[0] == b'(' && op[op.len() - 1] == b')' {
            let mut sel = Selector::new(false, allchannels);
            let inner = &op[1..op.len() - 1];
            // Unbalanced quotes leave the selector empty, as in Redis.
            let words = crate::protocol::inline::split_args(inner).unwrap_or_default();
            for w in &words {
                sel.apply(w)?;
            }
            self.selectors.push(sel);
        } else if is("clearselectors") {
            self.selectors.truncate(1);
        } else if is("reset") {
            for r in ["resetpass", "resetkeys", "resetchannels"] {
                self.apply(r.as_bytes(), allchannels)?;
            }
            if allchannels {
                self.apply(b"allchannels", allchannels)?;
            }
            for r in ["off", "sanitize-payload", "clearselectors", "-@all"] {
                self.apply(r.as_bytes(), allchannels)?;
            }
        } else {
            self.selectors[0].apply(op)?;
        }
        Ok(())
    }

    /// The rules that rebuild this user (`ACLDescribeUser`), as ACL LIST shows them.
    pub fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (f, name) in FLAG_NAMES {
            if self.flags & f != 0 {
                out.extend_from_slice(name.as_bytes());
                out.push(b' ');
            }
        }
        for p in &self.passwords {
            out.push(b'#');
            out.extend_from_slice(p.as_bytes());
            out.push(b' ');
        }
        for s in &self.selectors {
            if s.root {
                s.describe(&mut out);
            } else {
                out.extend_from_slice(b" (");
                s.describe(&mut out);
                out.push(b')');
            }
        }
        out
    }

    /// Whether some selector allows every command, key and channel.
    pub fn unrestricted(&self) -> bool {
        self.selectors.iter().any(Selector::unrestricted)
    }

    /// Checks a command against every selector (`ACLCheckAllUserCommandPerm`): allowed if one
    /// allows it; otherwise the most relevant refusal.
    pub fn check(&self, req: &mut Request<'_>) -> Result<(), Denied> {
        let mut worst = Denied {
            reason: Reason::Command,
            pos: 0,
        };
        for s in &self.selectors {
            match s.check(req) {
                Ok(()) => return Ok(()),
                Err(d) => {
                    if d.reason > worst.reason || (d.reason == worst.reason && d.pos > worst.pos) {
                        worst = d;
                    }
                }
            }
        }
        Err(worst)
    }

    /// Whether some selector allows the command and every key for `perms`
    /// (`ACLUserCheckCmdWithUnrestrictedKeyAccess`): SORT's BY and GET may then read any key.
    pub fn unrestricted_key_access(&self, req: &mut Request<'_>, perms: u8) -> bool {
        self.selectors.iter().any(|s| {
            s.check(req).is_ok()
                && (s.allkeys
                    || s.patterns
                        .iter()
                        .any(|p| p.perms & perms == perms && p.pattern == b"*"))
        })
    }

    /// Whether some selector allows the channel (`ACLUserCheckChannelPerm`).
    pub fn channel_allowed(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.selectors
            .iter()
            .any(|s| s.allchannels || channel_allowed(&s.channels, channel, is_pattern))
    }

    /// Every channel pattern of every selector, or `None` if one allows all channels.
    fn all_channels(&self) -> Option<Vec<&Vec<u8>>> {
        if self.selectors.iter().any(|s| s.allchannels) {
            return None;
        }
        Some(
            self.selectors
                .iter()
                .flat_map(|s| s.channels.iter())
                .collect(),
        )
    }

    fn password_matches(&self, pass: &[u8]) -> bool {
        let hashed = hash_password(pass);
        let mut found = false;
        for p in &self.passwords {
            // Compare every byte so that the time taken says nothing about the hash.
            let diff = p
                .bytes()
                .zip(hashed.bytes())
                .fold(0u8, |d, (a, b)| d | (a ^ b));
            found |= diff == 0 && p.len() == hashed.len();
        }
        found
    }
}

/// The hash a `>pass`, `<pass`, `#hash` or `!hash` rule names.
fn password_hash_of(op: &[u8]) -> Result<String, RuleError> {
    if op[0] == b'>' || op[0] == b'<' {
        return Ok(hash_password(&op[1..]));
    }
    let h = &op[1..];
    if h.len() != 64 || !h.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(RuleError::BadHash);
    }
    Ok(String::from_utf8_lossy(h).into_owned())
}

/// SHA-256 of a password, in lowercase hex.
pub fn hash_password(pass: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(pass).iter().map(|b| format!("{b:02x}")).collect()
}

/// A user as clients hold it: the rules, changed in place, and whether they allow everything.
#[derive(Debug)]
pub struct AclUser {
    pub name: Vec<u8>,
    pub rules: RefCell<User>,
    /// Kept equal to `rules.unrestricted()` (always true for the internal superuser).
    pub unrestricted: Cell<bool>,
    superuser: bool,
}

impl AclUser {
    fn new(name: &[u8], rules: User) -> Rc<Self> {
        let free = rules.unrestricted();
        Rc::new(AclUser {
            name: name.to_vec(),
            rules: RefCell::new(rules),
            unrestricted: Cell::new(free),
            superuser: false,
        })
    }

    /// Replaces the rules and refreshes the unrestricted flag.
    pub fn set_rules(&self, rules: User) {
        if !self.superuser {
            self.unrestricted.set(rules.unrestricted());
        }
        *self.rules.borrow_mut() = rules;
    }

    pub fn is_superuser(&self) -> bool {
        self.superuser
    }

    /// The user name as text (CLIENT LIST, the ACL log).
    pub fn name_text(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

thread_local! {
    static SUPERUSER: Rc<AclUser> = Rc::new(AclUser {
        name: Vec::new(),
        rules: RefCell::new(User::new(true)),
        unrestricted: Cell::new(true),
        superuser: true,
    });
}

/// The user of internal clients (scripts' own client, the AOF loader, a replica's master):
/// Redis's user-less clients, which every command is allowed.
pub fn superuser() -> Rc<AclUser> {
    SUPERUSER.with(Rc::clone)
}

/// Where a logged refusal happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogContext {
    Toplevel,
    Lua,
    Multi,
}

impl LogContext {
    pub fn name(self) -> &'static str {
        match self {
            LogContext::Toplevel => "toplevel",
            LogContext::Lua => "lua",
            LogContext::Multi => "multi",
        }
    }
}

/// One ACL LOG entry.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub count: u64,
    pub reason: Reason,
    pub context: LogContext,
    pub object: Vec<u8>,
    pub username: Vec<u8>,
    /// Unix milliseconds of the last occurrence.
    pub ctime: u64,
    /// CLIENT INFO line of the last client.
    pub cinfo: String,
}

/// Repeats within this many milliseconds join the same entry.
const LOG_GROUPING_MS: u64 = 60_000;

/// The user table, the default user, and the ACL log.
pub struct Acl {
    pub users: BTreeMap<Vec<u8>, Rc<AclUser>>,
    pub default: Rc<AclUser>,
    /// Newest first.
    pub log: VecDeque<LogEntry>,
}

impl Default for Acl {
    fn default() -> Self {
        Acl::new()
    }
}

impl Acl {
    /// Just the default user: `on nopass ~* &* +@all`.
    pub fn new() -> Self {
        let default = AclUser::new(b"default", default_rules());
        let mut users = BTreeMap::new();
        users.insert(b"default".to_vec(), default.clone());
        Acl {
            users,
            default,
            log: VecDeque::new(),
        }
    }

    /// Sets up the users a configuration defines: `requirepass`, `user` lines, `aclfile`.
    pub fn from_config(cfg: &crate::config::Config) -> Result<Self, String> {
        let mut acl = Acl::new();
        acl.set_default_password(&cfg.requirepass);
        let allch = pubsub_default(cfg);
        if !cfg.acl_users.is_empty() && !aclfile(cfg).is_empty() {
            return Err(
                "Configuring Redis with users defined in redis.conf and at the same \
                        setting an ACL file path is invalid. This setup is very likely to lead \
                        to configuration errors and security holes, please define either an \
                        ACL file or declare users directly in your redis.conf, but not both."
                    .into(),
            );
        }
        for line in &cfg.acl_users {
            acl.load_configured_user(line, allch)?;
        }
        if !aclfile(cfg).is_empty() {
            let (users, errors) = parse_acl_file(cfg);
            if !errors.is_empty() {
                return Err(format!(
                    "Aborting Redis startup because of ACL errors: {errors}"
                ));
            }
            acl.replace_users(users);
        }
        Ok(acl)
    }

    fn load_configured_user(&mut self, line: &[Vec<u8>], allch: bool) -> Result<(), String> {
        let name = &line[0];
        if has_spaces(name) {
            return Err(format!("Spaces not allowed in ACL usernames\n{CRITICAL}"));
        }
        let mut user = if name == b"default" {
            let mut u = self.default.rules.borrow().clone();
            let _ = u.apply(b"reset", allch);
            u
        } else {
            User::new(allch)
        };
        for rule in &line[1..] {
            if let Err(e) = user.apply(rule, allch) {
                return Err(format!(
                    "Error loading ACL rule '{}' for the user named '{}': {}\n{CRITICAL}",
                    String::from_utf8_lossy(rule),
                    String::from_utf8_lossy(name),
                    e.text()
                ));
            }
        }
        if !user.enabled() {
            tracing::info!(
                "The user '{}' is disabled (there is no 'on' modifier in the user description). \
                 Make sure this is not a configuration error.",
                String::from_utf8_lossy(name)
            );
        }
        self.put_user(name, user);
        Ok(())
    }

    /// Creates or replaces the rules of a user.
    pub fn put_user(&mut self, name: &[u8], rules: User) {
        match self.users.get(name) {
            Some(u) => u.set_rules(rules),
            None => {
                self.users.insert(name.to_vec(), AclUser::new(name, rules));
            }
        }
    }

    /// `requirepass`: a password replaces the default user's passwords; none makes it nopass.
    pub fn set_default_password(&mut self, pass: &str) {
        let mut rules = self.default.rules.borrow().clone();
        let _ = rules.apply(b"resetpass", false);
        if pass.is_empty() {
            let _ = rules.apply(b"nopass", false);
        } else {
            let mut op = b">".to_vec();
            op.extend_from_slice(pass.as_bytes());
            let _ = rules.apply(&op, false);
        }
        self.default.set_rules(rules);
    }

    /// Whether clients must authenticate before running commands (the default user needs a
    /// password or is disabled).
    pub fn auth_required(&self) -> bool {
        let d = self.default.rules.borrow();
        !d.nopass() || !d.enabled()
    }

    /// Whether a new connection starts authenticated (as the default user).
    pub fn default_authenticated(&self) -> bool {
        !self.auth_required()
    }

    /// Checks a user name and password (`ACLCheckUserCredentials`).
    pub fn check_credentials(&self, name: &[u8], pass: &[u8]) -> Option<Rc<AclUser>> {
        let u = self.users.get(name)?;
        let rules = u.rules.borrow();
        if !rules.enabled() {
            return None;
        }
        (rules.nopass() || rules.password_matches(pass)).then(|| u.clone())
    }

    /// Replaces every user by `users` (ACL LOAD, or an ACL file at start-up). The default user
    /// keeps its identity (its clients stay); the other users are new objects. Returns the
    /// names of the previous users other than default, whose clients must be disconnected.
    pub fn replace_users(&mut self, mut users: BTreeMap<Vec<u8>, User>) -> Vec<Vec<u8>> {
        let default = users.remove(&b"default"[..]).unwrap_or_else(default_rules);
        self.default.set_rules(default);
        let old: Vec<Vec<u8>> = self
            .users
            .keys()
            .filter(|k| k.as_slice() != b"default")
            .cloned()
            .collect();
        self.users.retain(|k, _| k.as_slice() == b"default");
        for (name, rules) in users {
            self.users.insert(name.clone(), AclUser::new(&name, rules));
        }
        old
    }

    /// Adds a refusal to the log, joining a recent identical one (`addACLLogEntry`).
    pub fn log_denial(&mut self, mut entry: LogEntry, max_len: usize) {
        let found = self.log.iter().take(10).position(|e| {
            e.reason == entry.reason
                && e.context == entry.context
                && e.ctime.abs_diff(entry.ctime) <= LOG_GROUPING_MS
                && e.object == entry.object
                && e.username == entry.username
        });
        if let Some(i) = found {
            if let Some(mut e) = self.log.remove(i) {
                e.count += 1;
                e.ctime = entry.ctime;
                e.cinfo = std::mem::take(&mut entry.cinfo);
                self.log.push_front(e);
            }
            return;
        }
        self.log.push_front(entry);
        self.log.truncate(max_len);
    }

    /// The ACL file as rules (ACL SAVE): one `user <name> <rules>` line per user, sorted.
    pub fn file_text(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, u) in &self.users {
            out.extend_from_slice(b"user ");
            out.extend_from_slice(name);
            out.push(b' ');
            out.extend_from_slice(&u.rules.borrow().describe());
            out.push(b'\n');
        }
        out
    }
}

/// The `user` lines CONFIG REWRITE writes: every user, unless an `aclfile` holds them.
pub fn config_lines(acl: &Acl, cfg: &crate::config::Config) -> Vec<String> {
    if !aclfile(cfg).is_empty() {
        return Vec::new();
    }
    let text = acl.file_text();
    String::from_utf8_lossy(&text)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The last line logged when the config file's users cannot be created.
const CRITICAL: &str = "Critical error while loading ACLs. Exiting.";

/// The default user's initial rules.
fn default_rules() -> User {
    let mut u = User::new(false);
    for r in ["+@all", "~*", "&*", "on", "nopass"] {
        let _ = u.apply(r.as_bytes(), false);
    }
    u
}

/// `acl-pubsub-default`: whether new selectors allow every channel.
pub fn pubsub_default(cfg: &crate::config::Config) -> bool {
    cfg.get_by_name("acl-pubsub-default") == Some("allchannels")
}

/// The `aclfile` setting.
pub fn aclfile(cfg: &crate::config::Config) -> &str {
    cfg.get_by_name("aclfile").unwrap_or("")
}

/// Joins the words of a `(...)` selector written across several arguments
/// (`ACLMergeSelectorArguments`). On an unclosed selector, returns the index of its start.
pub fn merge_selectors(args: &[&[u8]]) -> Result<Vec<Vec<u8>>, usize> {
    let mut out = Vec::new();
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (j, &a) in args.iter().enumerate() {
        if let Some((_, sel)) = open.as_mut() {
            sel.push(b' ');
            sel.extend_from_slice(a);
            if a.last() == Some(&b')') {
                out.push(open.take().map(|o| o.1).unwrap_or_default());
            }
            continue;
        }
        if a.first() == Some(&b'(') && a.last() != Some(&b')') {
            open = Some((j, a.to_vec()));
            continue;
        }
        out.push(a.to_vec());
    }
    match open {
        Some((j, _)) => Err(j),
        None => Ok(out),
    }
}

/// Checks a config file's `user <name> <rules...>` line the way Redis does while reading the
/// file (`ACLAppendUserForLoading`): unknown commands are only reported when the users are
/// created. `seen` holds the names of the lines before. The error is the config file's.
pub fn check_user_line(args: &[Vec<u8>], seen: &[Vec<Vec<u8>>]) -> Result<Vec<Vec<u8>>, String> {
    let text = |i: usize| String::from_utf8_lossy(args.get(i).map_or(&[][..], |a| a)).into_owned();
    let fail =
        |i: usize, e: RuleError| format!("Error in user declaration '{}': {}", text(i), e.text());
    if seen.iter().any(|l| l[0] == args[1]) {
        return Err(fail(1, RuleError::Duplicate));
    }
    let refs: Vec<&[u8]> = args[2..].iter().map(Vec::as_slice).collect();
    let merged = merge_selectors(&refs).map_err(|j| fail(j, RuleError::Syntax))?;
    let mut probe = User::new(false);
    for (j, rule) in merged.iter().enumerate() {
        if let Err(e) = probe.apply(rule, false) {
            if e != RuleError::NoEnt {
                return Err(fail(j, e));
            }
        }
    }
    let mut line = vec![args[1].clone()];
    line.extend(merged);
    Ok(line)
}

/// Reads the ACL file (`ACLLoadFromFile`): the users it defines, or Redis's error text.
pub fn parse_acl_file(cfg: &crate::config::Config) -> (BTreeMap<Vec<u8>, User>, String) {
    let path = aclfile(cfg);
    let allch = pubsub_default(cfg);
    let mut users = BTreeMap::new();
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) => {
            let why = crate::config::io_reason(&e);
            return (
                users,
                format!("Error loading ACLs, opening file '{path}': {why}"),
            );
        }
    };
    let mut errors = String::new();
    for (i, raw) in text.split(|&c| c == b'\n').enumerate() {
        let line = trim_bytes(raw, b" \t\r\n");
        if !line.is_empty() {
            let at = format!("{path}:{}", i + 1);
            parse_acl_line(&at, line, allch, &mut users, &mut errors);
        }
    }
    if !errors.is_empty() {
        errors.push_str(
            "WARNING: ACL errors detected, no change to the previously active ACL rules was \
             performed",
        );
    }
    (users, errors)
}

/// `r` without the bytes of `set` at either end (`sdstrim`).
fn trim_bytes<'r>(r: &'r [u8], set: &[u8]) -> &'r [u8] {
    let start = r.iter().position(|c| !set.contains(c)).unwrap_or(r.len());
    let end = r
        .iter()
        .rposition(|c| !set.contains(c))
        .map_or(start, |e| e + 1);
    &r[start..end.max(start)]
}

/// One line of the ACL file: adds its user to `users`, or appends Redis's complaints about it
/// to `errors` (`at` is `path:line`).
fn parse_acl_line(
    at: &str,
    line: &[u8],
    allch: bool,
    users: &mut BTreeMap<Vec<u8>, User>,
    errors: &mut String,
) {
    let argv: Vec<&[u8]> = line.split(|&c| c == b' ').collect();
    if argv[0] != b"user" || argv.len() < 2 {
        errors.push_str(&format!(
            "{at} should start with user keyword followed by the username. "
        ));
        return;
    }
    let name = argv[1];
    let shown = String::from_utf8_lossy(name);
    if has_spaces(name) {
        errors.push_str(&format!(
            "'{at}: username '{shown}' contains invalid characters. "
        ));
        return;
    }
    if users.contains_key(name) {
        let linenum = at.rsplit(':').next().unwrap_or("");
        errors.push_str(&format!(
            "WARNING: Duplicate user '{shown}' found on line {linenum}. "
        ));
        return;
    }
    let mut user = User::new(allch);
    let merged = merge_selectors(&argv[2..]).unwrap_or_else(|_| {
        errors.push_str(&format!(
            "{at}: Unmatched parenthesis in selector definition."
        ));
        Vec::new()
    });
    let mut syntax_error = false;
    for rule in &merged {
        let rule = trim_bytes(rule, b"\t\r\n");
        match user.apply(rule, allch) {
            Err(e) if e == RuleError::NoEnt => errors.push_str(&format!(
                "{at}: Error in applying operation '{}': {}. ",
                String::from_utf8_lossy(rule),
                e.text()
            )),
            Err(e) if !syntax_error => {
                errors.push_str(&format!("{at}: {}. ", e.text()));
                syntax_error = true;
            }
            _ => {}
        }
    }
    users.insert(name.to_vec(), user);
}

/// Whether the change of a user's rules from `old` to `new` takes away channels that its
/// subscribed clients may be using (`ACLKillPubsubClientsIfNeeded`); returns the new channel
/// list to check those clients against, `None` when nothing was taken away.
pub fn revoked_channels(new: &User, old: &User) -> Option<Vec<Vec<u8>>> {
    let upcoming = new.all_channels()?;
    let kept = match old.all_channels() {
        None => false,
        Some(before) => before.iter().all(|c| upcoming.contains(c)),
    };
    (!kept).then(|| upcoming.into_iter().cloned().collect())
}

/// Whether a subscription survives the channel list `list` (patterns must be listed as they
/// are; channels must match a listed pattern).
pub fn subscription_allowed(list: &[Vec<u8>], name: &[u8], is_pattern: bool) -> bool {
    channel_allowed(list, name, is_pattern)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_vectors() {
        assert_eq!(
            hash_password(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hash_password(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let long = vec![b'a'; 1000];
        assert_eq!(
            hash_password(&long),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
        );
    }

    #[test]
    fn default_user_is_unrestricted_and_described_like_redis() {
        let acl = Acl::new();
        assert!(acl.default.unrestricted.get());
        let d = acl.default.rules.borrow().describe();
        assert_eq!(String::from_utf8_lossy(&d), "on nopass ~* &* +@all");
        assert!(!acl.auth_required());
    }

    #[test]
    fn rules_apply_and_describe() {
        let mut u = User::new(false);
        for r in ["on", ">pw", "~obj:*", "%R~read*", "&chan", "+@all", "-get"] {
            u.apply(r.as_bytes(), false).unwrap();
        }
        let d = String::from_utf8(u.describe()).unwrap();
        let hash = hash_password(b"pw");
        assert_eq!(
            d,
            format!("on #{hash} ~obj:* %R~read* resetchannels &chan +@all -get")
        );
        assert!(!u.unrestricted());
        assert_eq!(u.apply(b"~*", false), Ok(()));
        assert_eq!(u.apply(b"~x", false), Err(RuleError::AfterAllKeys));
        assert_eq!(u.apply(b"+nosuch", false), Err(RuleError::NoEnt));
        assert_eq!(u.apply(b"<nope", false), Err(RuleError::NoSuchPassword));
        assert_eq!(u.apply(b"#abc", false), Err(RuleError::BadHash));
        assert_eq!(
            u.apply(b"+config|get|x", false),
            Err(RuleError::FirstArgOfSub)
        );
        assert_eq!(u.apply(b"bogus", false), Err(RuleError::Syntax));
    }

    #[test]
    fn merging_selector_words() {
        let args: [&[u8]; 4] = [b"on", b"(~x", b"+get)", b"off"];
        let m = merge_selectors(&args).unwrap();
        assert_eq!(
            m,
            vec![b"on".to_vec(), b"(~x +get)".to_vec(), b"off".to_vec()]
        );
        let bad: [&[u8]; 2] = [b"on", b"(~x"];
        assert_eq!(merge_selectors(&bad), Err(1));
    }

    #[test]
    fn log_groups_repeats() {
        let mut acl = Acl::new();
        let e = LogEntry {
            count: 1,
            reason: Reason::Command,
            context: LogContext::Toplevel,
            object: b"get".to_vec(),
            username: b"u".to_vec(),
            ctime: 1000,
            cinfo: String::new(),
        };
        acl.log_denial(e.clone(), 128);
        acl.log_denial(e.clone(), 128);
        assert_eq!(acl.log.len(), 1);
        assert_eq!(acl.log[0].count, 2);
        acl.log_denial(
            LogEntry {
                object: b"set".to_vec(),
                ..e
            },
            1,
        );
        assert_eq!(acl.log.len(), 1);
    }
}
