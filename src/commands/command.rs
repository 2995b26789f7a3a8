//! COMMAND and its subcommands: introspection of the command table (Redis `server.c`).
//!
//! What COMMAND INFO / COMMAND DOCS print comes from [`command_meta`](super::command_meta),
//! generated from a real Redis 7.0.15 by `tools/gen_command_meta.py`. The registry decides what
//! is visible: a command (or subcommand) that ferrodis does not implement is never listed, so
//! clients that discover commands through COMMAND see exactly what they can call.

#[rustfmt::skip]
#[path = "command_meta.rs"]
mod command_meta;

use super::flags::*;
use super::{args, registry, CmdError, CmdResult, CommandSpec, Ctx};
use crate::protocol::ReplyBuf;
use command_meta::META;

pub(crate) const COMMANDS: &[CommandSpec] = &[CommandSpec {
    name: "command",
    arity: -1,
    flags: LOADING | STALE | SENTINEL,
    keys: super::KeyPos {
        first: 0,
        last: 0,
        step: 0,
    },
    handler: command,
    subcommands: SUBCOMMANDS,
    parent: None,
}];

const F: u32 = LOADING | STALE | SENTINEL;
const SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::sub("command", "count", 2, F, 0, 0, 0, count),
    CommandSpec::sub("command", "docs", -2, F, 0, 0, 0, docs),
    CommandSpec::sub("command", "getkeys", -4, F, 0, 0, 0, getkeys),
    CommandSpec::sub(
        "command",
        "getkeysandflags",
        -4,
        F,
        0,
        0,
        0,
        getkeysandflags,
    ),
    CommandSpec::sub("command", "help", 2, F, 0, 0, 0, help),
    CommandSpec::sub("command", "info", -2, F, 0, 0, 0, info),
    CommandSpec::sub("command", "list", -2, F, 0, 0, 0, list),
];

/// A node of a stored reply, typed as Redis sends it in RESP3 and flattened for RESP2 clients
/// the way Redis does it (maps become arrays of pairs, sets become arrays).
#[derive(Debug)]
pub enum N {
    /// Simple string (`+`).
    S(&'static str),
    /// Bulk string (`$`).
    B(&'static str),
    I(i64),
    A(&'static [N]),
    /// A map, as a flat list of keys and values.
    M(&'static [N]),
    Set(&'static [N]),
    Null,
}

/// Where a key spec starts looking for keys.
#[derive(Debug)]
pub enum Begin {
    Index(i32),
    /// Keyword to look for, and the index to start from (negative: from the end, backwards).
    Keyword(&'static str, i32),
    Unknown,
}

/// How a key spec finds its keys once it has a start.
#[derive(Debug)]
pub enum Find {
    Range { lastkey: i32, step: i32, limit: i32 },
    Keynum { idx: i32, first: i32, step: i32 },
    Unknown,
}

/// One key spec of a command.
#[derive(Debug)]
pub struct KeySpec {
    pub flags: &'static [&'static str],
    pub begin: Begin,
    pub find: Find,
}

/// Redis's metadata for one command or subcommand.
#[derive(Debug)]
pub struct CmdMeta {
    /// Full name (`get`, `config|get`).
    pub name: &'static str,
    pub arity: i32,
    pub flags: &'static [&'static str],
    pub first: i32,
    pub last: i32,
    pub step: i32,
    pub acl: &'static [&'static str],
    pub key_specs: &'static [KeySpec],
    /// Redis extracts this command's keys with a dedicated function, not only key specs.
    pub getkeys_proc: bool,
    /// COMMAND INFO fields 1 to 9 (all but the subcommands).
    pub info: &'static [N],
    /// COMMAND DOCS map entries (all but the subcommands).
    pub docs: &'static [N],
    pub subcommands: &'static [CmdMeta],
}

/// Finds the metadata of `full_name` (`get` or `config|get`, lowercase).
pub fn meta(full_name: &str) -> Option<&'static CmdMeta> {
    let (top, sub) = match full_name.split_once('|') {
        Some((t, _)) => (t, Some(full_name)),
        None => (full_name, None),
    };
    let m = META
        .binary_search_by(|m| m.name.cmp(top))
        .ok()
        .map(|i| &META[i])?;
    match sub {
        None => Some(m),
        Some(full) => m.subcommands.iter().find(|s| s.name == full),
    }
}

/// Metadata of a registered command.
pub fn meta_of(spec: &CommandSpec) -> Option<&'static CmdMeta> {
    meta(&spec.full_name())
}

/// Looks up a command by name as a client wrote it, `container|sub` included.
pub(crate) fn lookup_by_name(name: &[u8]) -> Option<&'static CommandSpec> {
    let reg = registry();
    match name.iter().position(|&b| b == b'|') {
        None => reg.lookup(name).map(|(_, s)| s),
        Some(i) => {
            let (_, top) = reg.lookup(&name[..i])?;
            top.find_sub(&name[i + 1..])
        }
    }
}

/// Looks up a command from an argument vector (`config get x` finds `config|get`), like
/// Redis's `lookupCommand`.
fn lookup_argv(argv: &[&[u8]]) -> Option<&'static CommandSpec> {
    let (_, top) = registry().lookup(argv[0])?;
    if top.subcommands.is_empty() || argv.len() < 2 {
        return Some(top);
    }
    top.find_sub(argv[1])
}

/// Writes a stored reply node.
fn emit(out: &mut ReplyBuf, n: &N) {
    match n {
        N::S(s) => out.simple(s),
        N::B(s) => out.bulk(s.as_bytes()),
        N::I(i) => out.integer(*i),
        N::Null => out.null(),
        N::A(items) => {
            out.array(items.len());
            items.iter().for_each(|i| emit(out, i));
        }
        N::M(items) => {
            out.map(items.len() / 2);
            items.iter().for_each(|i| emit(out, i));
        }
        N::Set(items) => {
            out.set(items.len());
            items.iter().for_each(|i| emit(out, i));
        }
    }
}

/// The implemented subcommands of `spec` that have metadata, in metadata order.
fn visible_subs(spec: &'static CommandSpec) -> Vec<(&'static CommandSpec, &'static CmdMeta)> {
    let mut v: Vec<_> = spec
        .subcommands
        .iter()
        .filter_map(|s| Some((s, meta_of(s)?)))
        .collect();
    v.sort_by(|a, b| a.1.name.cmp(b.1.name));
    v
}

/// One COMMAND INFO entry; a null for an unknown command.
fn emit_info(out: &mut ReplyBuf, spec: Option<&'static CommandSpec>) {
    let Some((spec, m)) = spec.and_then(|s| Some((s, meta_of(s)?))) else {
        out.null();
        return;
    };
    out.array(m.info.len() + 1);
    m.info.iter().for_each(|n| emit(out, n));
    let subs = visible_subs(spec);
    // Redis sends an empty set, not an empty array, for a command without subcommands.
    if subs.is_empty() {
        out.set(0);
    } else {
        out.array(subs.len());
    }
    for (s, _) in subs {
        emit_info(out, Some(s));
    }
}

/// One COMMAND DOCS value (the map after the name).
fn emit_docs(out: &mut ReplyBuf, spec: &'static CommandSpec, m: &'static CmdMeta) {
    let subs = visible_subs(spec);
    let extra = usize::from(!subs.is_empty());
    out.map(m.docs.len() / 2 + extra);
    m.docs.iter().for_each(|n| emit(out, n));
    if !subs.is_empty() {
        out.bulk(b"subcommands");
        out.map(subs.len());
        for (s, sm) in subs {
            out.bulk(sm.name.as_bytes());
            emit_docs(out, s, sm);
        }
    }
}

/// Every registered top-level command that has metadata.
fn visible_commands() -> impl Iterator<Item = &'static CommandSpec> {
    registry()
        .all
        .iter()
        .copied()
        .filter(|s| meta_of(s).is_some())
}

/// Information about every command.
///
/// ```text
/// COMMAND
/// ```
fn command(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    let all: Vec<_> = visible_commands().collect();
    ctx.out.array(all.len());
    for s in all {
        emit_info(ctx.out, Some(s));
    }
    Ok(())
}

/// ```text
/// COMMAND COUNT
/// ```
fn count(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    ctx.out.integer(visible_commands().count() as i64);
    Ok(())
}

/// Documentation of the named commands (unknown names are left out), or of all of them.
///
/// ```text
/// COMMAND DOCS [command-name ...]
/// ```
fn docs(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let specs: Vec<&'static CommandSpec> = if argv.len() == 2 {
        visible_commands().collect()
    } else {
        argv[2..].iter().filter_map(|n| lookup_by_name(n)).collect()
    };
    let found: Vec<_> = specs
        .into_iter()
        .filter_map(|s| Some((s, meta_of(s)?)))
        .collect();
    ctx.out.map(found.len());
    for (s, m) in found {
        ctx.out.bulk(m.name.as_bytes());
        emit_docs(ctx.out, s, m);
    }
    Ok(())
}

/// ```text
/// COMMAND INFO [command-name ...]
/// ```
fn info(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if argv.len() == 2 {
        return command(ctx, argv);
    }
    ctx.out.array(argv.len() - 2);
    for name in &argv[2..] {
        emit_info(ctx.out, lookup_by_name(name));
    }
    Ok(())
}

/// Names of all commands and subcommands, optionally filtered.
///
/// ```text
/// COMMAND LIST [FILTERBY MODULE module-name|ACLCAT category|PATTERN pattern]
/// ```
fn list(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let mut filter: Option<(&[u8], &[u8])> = None;
    let mut i = 2;
    while i < argv.len() {
        if args::is(argv[i], "filterby") && argv.len() - 1 - i == 2 {
            let kind = argv[i + 1];
            if !["module", "aclcat", "pattern"]
                .iter()
                .any(|k| args::is(kind, k))
            {
                return Err(CmdError::Syntax);
            }
            filter = Some((kind, argv[i + 2]));
            i += 3;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let mut names = Vec::new();
    for spec in visible_commands() {
        let m = meta_of(spec).expect("visible commands have metadata");
        let subs = visible_subs(spec);
        for m in std::iter::once(m).chain(subs.into_iter().map(|(_, sm)| sm)) {
            if filter.map_or(true, |(kind, arg)| list_filter_keeps(m, kind, arg)) {
                names.push(m.name);
            }
        }
    }
    ctx.out.bulk_array(names.iter().map(|n| n.as_bytes()));
    Ok(())
}

/// Whether `m` passes `FILTERBY kind arg`. No modules exist, so MODULE keeps nothing.
fn list_filter_keeps(m: &CmdMeta, kind: &[u8], arg: &[u8]) -> bool {
    if args::is(kind, "module") {
        false
    } else if args::is(kind, "aclcat") {
        m.acl
            .iter()
            .any(|c| c.as_bytes()[1..].eq_ignore_ascii_case(arg))
    } else {
        crate::util::glob::matches(arg, m.name.as_bytes(), true)
    }
}

/// The keys of a command line and their key-spec flags, as Redis's
/// `getKeysFromCommandWithSpecs` finds them for COMMAND GETKEYS and for ACL checks: the key
/// specs when they describe the command fully, else the command's own key finder (SORT's
/// STORE can sit anywhere among its options, SET's and BITFIELD's flags depend on their
/// arguments, MIGRATE's KEYS form is beyond its specs). `None` when the line names no key the
/// specs can find.
pub(crate) fn command_keys(
    m: &CmdMeta,
    argv: &[&[u8]],
) -> Option<Vec<(usize, &'static [&'static str])>> {
    let varflags = m.key_specs.iter().any(|k| k.flags.contains(&"variable_flags"));
    if m.name == "sort" || m.name == "sort_ro" {
        Some(super::sort::get_keys(argv, m.name == "sort_ro"))
    } else if varflags {
        variable_flag_keys(m.name, argv)
    } else {
        keys_from_specs(m, argv).or_else(|| match m.name {
            "migrate" => super::migrate::get_keys(argv),
            _ => None,
        })
    }
}

/// ```text
/// COMMAND GETKEYS command [arg ...]
/// ```
fn getkeys(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    getkeys_impl(ctx, argv, false)
}

/// ```text
/// COMMAND GETKEYSANDFLAGS command [arg ...]
/// ```
fn getkeysandflags(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    getkeys_impl(ctx, argv, true)
}

fn getkeys_impl(ctx: &mut Ctx<'_>, argv: &[&[u8]], with_flags: bool) -> CmdResult {
    let cmd_argv = &argv[2..];
    let spec = lookup_argv(cmd_argv);
    let Some(m) = spec.and_then(meta_of) else {
        return Err(CmdError::err("Invalid command specified"));
    };
    let has_keyspec = m.key_specs.iter().any(|k| !k.flags.contains(&"not_key"));
    if !m.getkeys_proc && !has_keyspec {
        return Err(CmdError::err("The command has no key arguments"));
    }
    let argc = cmd_argv.len() as i64;
    let arity = i64::from(m.arity);
    if (arity > 0 && arity != argc) || argc < -arity {
        return Err(CmdError::err(
            "Invalid number of arguments specified for command",
        ));
    }
    let keys = if has_keyspec || m.getkeys_proc { command_keys(m, cmd_argv) } else { None };
    let Some(keys) = keys else {
        if m.flags.contains(&"no_mandatory_keys") {
            ctx.out.array(0);
            return Ok(());
        }
        return Err(CmdError::err("Invalid arguments specified for command"));
    };
    ctx.out.array(keys.len());
    for (pos, flags) in keys {
        if with_flags {
            ctx.out.array(2);
            ctx.out.bulk(cmd_argv[pos]);
            ctx.out.set(flags.len());
            flags.iter().for_each(|f| ctx.out.simple(f));
        } else {
            ctx.out.bulk(cmd_argv[pos]);
        }
    }
    Ok(())
}

/// The key of SET and BITFIELD, whose flags depend on the arguments (their key specs say
/// `variable_flags`), found as Redis's `setGetKeys` / `bitfieldGetKeys` do: SET with GET reads
/// and updates its key, otherwise overwrites it; BITFIELD with only GETs (and OVERFLOWs) just
/// reads it.
fn variable_flag_keys(
    name: &str,
    argv: &[&[u8]],
) -> Option<Vec<(usize, &'static [&'static str])>> {
    const RW: &[&str] = &["RW", "access", "update"];
    let flags: &'static [&'static str] = match name {
        "set" => {
            if argv.iter().skip(3).any(|a| args::is(a, "get")) {
                RW
            } else {
                &["OW", "update"]
            }
        }
        "bitfield" => {
            let mut i = 2;
            let mut readonly = true;
            while i < argv.len() {
                let rest = argv.len() - i - 1;
                let a = argv[i];
                if args::is(a, "get") && rest >= 2 {
                    i += 3;
                } else if args::is(a, "overflow") && rest >= 1 {
                    i += 2;
                } else {
                    // SET / INCRBY, or a syntax error: assume a write, like Redis.
                    readonly = false;
                    break;
                }
            }
            if readonly {
                &["RO", "access"]
            } else {
                RW
            }
        }
        _ => return None,
    };
    (argv.len() > 1).then(|| vec![(1, flags)])
}

/// Key positions (and their spec flags) found by the key specs of `m` in `argv` (`argv[0]` is
/// the command name). `None` when a spec cannot be applied (the arguments are invalid or the
/// spec is incomplete), in which case Redis falls back to a key-extraction function.
pub fn keys_from_specs(
    m: &CmdMeta,
    argv: &[&[u8]],
) -> Option<Vec<(usize, &'static [&'static str])>> {
    let argc = argv.len() as i64;
    let mut keys = Vec::new();
    for spec in m.key_specs {
        if spec.flags.contains(&"not_key") {
            continue;
        }
        let Some(first) = spec_begin(spec, argv) else {
            continue;
        };
        let (first, last, step) = spec_range(spec, argv, first)?;
        if last >= argc || last < first || first >= argc {
            return None;
        }
        let mut i = first;
        while i <= last {
            keys.push((i as usize, spec.flags));
            i += step.max(1);
        }
        if spec.flags.contains(&"incomplete") {
            return None;
        }
    }
    Some(keys)
}

/// Index of the first key of `spec`; `None` when its keyword is absent (the spec is skipped).
/// An unknown begin-search yields index 0, which the range check then rejects.
fn spec_begin(spec: &KeySpec, argv: &[&[u8]]) -> Option<i64> {
    let argc = argv.len() as i64;
    match spec.begin {
        Begin::Index(pos) => Some(i64::from(pos)),
        Begin::Keyword(word, from) => {
            let from = i64::from(from);
            let (start, end) = if from > 0 {
                (from, argc - 1)
            } else {
                (argc + from, 1)
            };
            let mut i = start;
            loop {
                if i >= argc || i < 1 {
                    return None;
                }
                if args::is(argv[i as usize], word) {
                    return Some(i + 1);
                }
                if i == end {
                    return None;
                }
                i += if start <= end { 1 } else { -1 };
            }
        }
        Begin::Unknown => Some(-1),
    }
}

/// First key, last key and step for `spec` starting at `first`; `None` for an invalid spec.
fn spec_range(spec: &KeySpec, argv: &[&[u8]], first: i64) -> Option<(i64, i64, i64)> {
    if first < 0 {
        return None;
    }
    let argc = argv.len() as i64;
    match spec.find {
        Find::Range {
            lastkey,
            step,
            limit,
        } => {
            let (lastkey, limit) = (i64::from(lastkey), i64::from(limit));
            let last = if lastkey >= 0 {
                first + lastkey
            } else if limit == 0 {
                argc + lastkey
            } else {
                first + ((argc - first) / limit + lastkey)
            };
            Some((first, last, i64::from(step)))
        }
        Find::Keynum {
            idx,
            first: firstkey,
            step,
        } => {
            let at = first + i64::from(idx);
            if i64::from(idx) >= argc || at >= argc {
                return None;
            }
            let n = crate::protocol::decode::parse_i64(argv[at as usize]).filter(|n| *n >= 0)?;
            let first = first + i64::from(firstkey);
            Some((first, first + n - 1, i64::from(step)))
        }
        Find::Unknown => None,
    }
}

/// ```text
/// COMMAND HELP
/// ```
fn help(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    reply_help(ctx.out, "COMMAND", COMMAND_HELP);
    Ok(())
}

const COMMAND_HELP: &[&str] = &[
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
];

/// Writes a HELP reply the way Redis's `addReplyHelp` does: a title line, the given lines and
/// a closing entry for HELP itself, all as simple strings.
pub fn reply_help(out: &mut ReplyBuf, cmd: &str, lines: &[&str]) {
    out.array(lines.len() + 3);
    out.simple(&format!(
        "{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ));
    lines.iter().for_each(|l| out.simple(l));
    out.simple("HELP");
    out.simple("    Prints this help.");
}

#[cfg(test)]
mod tests {
    use super::super::flags::NAMES;
    use super::*;

    /// Every registered command must agree with Redis on arity, key positions and flags.
    #[test]
    fn registry_agrees_with_redis_metadata() {
        let mut problems = Vec::new();
        for top in &registry().all {
            let specs = std::iter::once(*top).chain(top.subcommands.iter());
            for spec in specs {
                let name = spec.full_name();
                let Some(m) = meta(&name) else {
                    problems.push(format!("{name}: not a Redis 7.0 command"));
                    continue;
                };
                if m.arity != spec.arity {
                    problems.push(format!("{name}: arity {} != {}", spec.arity, m.arity));
                }
                let k = spec.keys;
                if (k.first, k.last, k.step) != (m.first, m.last, m.step) {
                    problems.push(format!(
                        "{name}: keys {:?} != {:?}",
                        k,
                        (m.first, m.last, m.step)
                    ));
                }
                let ours: Vec<&str> = NAMES
                    .iter()
                    .filter(|(f, _)| spec.has(*f))
                    .map(|(_, n)| *n)
                    .collect();
                let theirs: Vec<&str> = m
                    .flags
                    .iter()
                    .copied()
                    .filter(|f| *f != "movablekeys")
                    .collect();
                let ours: Vec<&str> = ours.into_iter().filter(|f| *f != "movablekeys").collect();
                let mut a = ours.clone();
                let mut b = theirs.clone();
                a.sort_unstable();
                b.sort_unstable();
                if a != b {
                    problems.push(format!("{name}: flags {ours:?} != {theirs:?}"));
                }
            }
        }
        assert!(
            problems.is_empty(),
            "metadata mismatches:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn key_specs_find_keys() {
        let m = meta("mset").unwrap();
        let argv: Vec<&[u8]> = vec![b"mset", b"a", b"1", b"b", b"2"];
        let keys: Vec<usize> = keys_from_specs(m, &argv)
            .unwrap()
            .iter()
            .map(|k| k.0)
            .collect();
        assert_eq!(keys, vec![1, 3]);
        let m = meta("eval").unwrap();
        let argv: Vec<&[u8]> = vec![b"eval", b"s", b"2", b"x", b"y", b"z"];
        let keys: Vec<usize> = keys_from_specs(m, &argv)
            .unwrap()
            .iter()
            .map(|k| k.0)
            .collect();
        assert_eq!(keys, vec![3, 4]);
        let argv: Vec<&[u8]> = vec![b"eval", b"s", b"5", b"x"];
        assert!(keys_from_specs(m, &argv).is_none());
        let m = meta("georadius").unwrap();
        let argv: Vec<&[u8]> = vec![b"georadius", b"k", b"1", b"2", b"3", b"m", b"store", b"d"];
        let keys: Vec<usize> = keys_from_specs(m, &argv)
            .unwrap()
            .iter()
            .map(|k| k.0)
            .collect();
        assert_eq!(keys, vec![1, 7]);
    }

    #[test]
    fn metadata_is_sorted_and_complete() {
        assert!(META.windows(2).all(|w| w[0].name < w[1].name));
        // Redis 7.0's 240 commands plus WAITAOF (Redis 7.2, issue 6).
        assert_eq!(META.len(), 241);
        assert!(meta("config|get").is_some());
        assert!(meta("nosuch").is_none());
    }
}
