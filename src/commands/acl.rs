//! ACL: users and their permissions (Redis's `acl.c` commands), and the permission checks the
//! dispatcher, EXEC and scripts make for clients whose user is restricted. The user table and
//! the rules themselves live in `server::acl`.

use std::rc::Rc;

use super::args;
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::server::acl::{
    self, AclUser, Denied, LogContext, LogEntry, Reason, Request, User, CATEGORIES, FLAG_NAMES,
};
use crate::server::client::Client;
use crate::server::pubsub::Kind;
use crate::server::ServerState;

const ADM: u32 = ADMIN | NOSCRIPT | LOADING | STALE;
const PLAIN: u32 = NOSCRIPT | LOADING | STALE;

pub(crate) const COMMANDS: &[CommandSpec] = &[CommandSpec::container(
    "acl",
    -2,
    0,
    &[
        CommandSpec::sub("acl", "cat", -2, PLAIN, 0, 0, 0, cat),
        CommandSpec::sub("acl", "deluser", -3, ADM, 0, 0, 0, deluser),
        CommandSpec::sub("acl", "dryrun", -4, ADM, 0, 0, 0, dryrun),
        CommandSpec::sub("acl", "genpass", -2, PLAIN, 0, 0, 0, genpass),
        CommandSpec::sub("acl", "getuser", 3, ADM, 0, 0, 0, getuser),
        CommandSpec::sub("acl", "help", 2, LOADING | STALE, 0, 0, 0, help),
        CommandSpec::sub("acl", "list", 2, ADM, 0, 0, 0, list),
        CommandSpec::sub("acl", "load", 2, ADM, 0, 0, 0, load),
        CommandSpec::sub("acl", "log", -2, ADM, 0, 0, 0, log),
        CommandSpec::sub("acl", "save", 2, ADM, 0, 0, 0, save),
        CommandSpec::sub("acl", "setuser", -3, ADM, 0, 0, 0, setuser),
        CommandSpec::sub("acl", "users", 2, ADM, 0, 0, 0, users),
        CommandSpec::sub("acl", "whoami", 2, PLAIN, 0, 0, 0, whoami),
    ],
)];

/// Redis's reply to a subcommand given the wrong number of arguments.
fn wrong_args(argv: &[&[u8]]) -> CmdError {
    CmdError::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
        args::text(argv[1])
    ))
}

/// Creates or modifies a user; the rules apply to a copy that replaces the user only if all
/// of them are valid. Subscribers of the user lose their connection if a channel they use is
/// no longer allowed.
///
/// ```text
/// ACL SETUSER username [rule [rule ...]]
/// ```
fn setuser(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let name = argv[2];
    if acl::has_spaces(name) {
        return Err(CmdError::err(
            "Usernames can't contain spaces or null characters",
        ));
    }
    let rules = acl::merge_selectors(&argv[3..]).map_err(|j| {
        CmdError::err(format!(
            "Unmatched parenthesis in acl selector starting at '{}'.",
            args::text(argv[3 + j])
        ))
    })?;
    let allch = acl::pubsub_default(&ctx.srv.config);
    let existing = ctx.srv.acl.users.get(name).cloned();
    let mut next = match &existing {
        Some(u) => u.rules.borrow().clone(),
        None => User::new(allch),
    };
    for rule in &rules {
        next.apply(rule, allch).map_err(|e| {
            let text = format!(
                "Error in ACL SETUSER modifier '{}': {}",
                String::from_utf8_lossy(rule),
                e.text()
            );
            CmdError::err(text.replace(['\r', '\n'], " "))
        })?;
    }
    if let Some(u) = &existing {
        let revoked = acl::revoked_channels(&next, &u.rules.borrow());
        if let Some(list) = revoked {
            kill_revoked_subscribers(ctx, u, &list);
        }
    }
    ctx.srv.acl.put_user(name, next);
    ctx.out.ok();
    Ok(())
}

/// Disconnects the subscribers of `user` that use a channel or pattern `allowed` does not
/// allow any more.
fn kill_revoked_subscribers(ctx: &mut Ctx<'_>, user: &AclUser, allowed: &[Vec<u8>]) {
    let name = user.name_text();
    let me = ctx.client.id;
    let pubsub = &ctx.srv.pubsub;
    for (id, c) in &ctx.srv.clients {
        if c.info.borrow().user != name || !c.subscribed() {
            continue;
        }
        let denied = [
            (Kind::Pattern, true),
            (Kind::Channel, false),
            (Kind::Shard, false),
        ]
        .iter()
        .any(|&(kind, pattern)| {
            pubsub
                .client_names(kind, *id)
                .iter()
                .any(|n| !acl::subscription_allowed(allowed, n, pattern))
        });
        if denied {
            if *id == me {
                ctx.client.close_after_reply = true;
            } else {
                c.kill();
            }
        }
    }
}

/// Disconnects the clients authenticated as one of `names` (users that no longer exist); the
/// caller, if it is one of them, once it has its reply.
fn kill_clients_of(ctx: &mut Ctx<'_>, names: &[Vec<u8>]) {
    let names: Vec<String> = names
        .iter()
        .map(|n| String::from_utf8_lossy(n).into())
        .collect();
    let me = ctx.client.id;
    for (id, c) in &ctx.srv.clients {
        if !names.contains(&c.info.borrow().user) {
            continue;
        }
        if *id == me {
            ctx.client.close_after_reply = true;
        } else {
            c.kill();
        }
    }
    if names.iter().any(|n| *n == ctx.client.user.name_text()) && !ctx.client.user.is_superuser() {
        let default = ctx.srv.acl.default.clone();
        ctx.client.set_user(default, false);
    }
}

/// Deletes users and disconnects their clients; replies with how many existed.
///
/// ```text
/// ACL DELUSER username [username ...]
/// ```
fn deluser(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if argv[2..].iter().any(|n| *n == b"default") {
        return Err(CmdError::err("The 'default' user cannot be removed"));
    }
    let mut deleted = Vec::new();
    for name in &argv[2..] {
        if ctx.srv.acl.users.remove(*name).is_some() {
            deleted.push(name.to_vec());
        }
    }
    kill_clients_of(ctx, &deleted);
    ctx.out.integer(deleted.len() as i64);
    Ok(())
}

/// A user's flags, password hashes, root permissions and selectors, as a map.
///
/// ```text
/// ACL GETUSER username
/// ```
fn getuser(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let Some(u) = ctx.srv.acl.users.get(argv[2]).cloned() else {
        ctx.out.null();
        return Ok(());
    };
    let rules = u.rules.borrow();
    let out = &mut *ctx.out;
    out.map(6);
    out.bulk_str("flags");
    let flags: Vec<&str> = FLAG_NAMES
        .iter()
        .filter(|(f, _)| rules.flags & f != 0)
        .map(|(_, n)| *n)
        .collect();
    out.set(flags.len());
    flags.iter().for_each(|f| out.bulk_str(f));
    out.bulk_str("passwords");
    out.array(rules.passwords.len());
    rules.passwords.iter().for_each(|p| out.bulk_str(p));
    describe_selector(out, rules.root());
    out.bulk_str("selectors");
    out.array(rules.selectors.len() - 1);
    for s in &rules.selectors[1..] {
        out.map(3);
        describe_selector(out, s);
    }
    Ok(())
}

fn describe_selector(out: &mut crate::protocol::ReplyBuf, s: &acl::Selector) {
    out.bulk_str("commands");
    out.bulk_str(&s.describe_commands());
    out.bulk_str("keys");
    out.bulk(&s.describe_keys());
    out.bulk_str("channels");
    out.bulk(&s.describe_channels());
}

/// Every user as the rules that define it, sorted by name.
///
/// ```text
/// ACL LIST
/// ```
fn list(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    let acl = &ctx.srv.acl;
    ctx.out.array(acl.users.len());
    for (name, u) in &acl.users {
        let mut line = b"user ".to_vec();
        line.extend_from_slice(name);
        line.push(b' ');
        line.extend_from_slice(&u.rules.borrow().describe());
        ctx.out.bulk(&line);
    }
    Ok(())
}

/// The user names, sorted.
///
/// ```text
/// ACL USERS
/// ```
fn users(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    ctx.out.array(ctx.srv.acl.users.len());
    for name in ctx.srv.acl.users.keys() {
        ctx.out.bulk(name);
    }
    Ok(())
}

/// The caller's user name.
///
/// ```text
/// ACL WHOAMI
/// ```
fn whoami(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    if ctx.client.user.is_superuser() {
        ctx.out.null();
    } else {
        ctx.out.bulk(&ctx.client.user.name);
    }
    Ok(())
}

const NO_ACLFILE: &str = "This Redis instance is not configured to use an ACL file. You may want \
    to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you \
    have a Redis configuration file set) in order to store users in the Redis configuration.";

/// Replaces every user by the ACL file's, only if the whole file is valid; clients of the
/// replaced users (all but default) are disconnected.
///
/// ```text
/// ACL LOAD
/// ```
fn load(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    if acl::aclfile(&ctx.srv.config).is_empty() {
        return Err(CmdError::err(NO_ACLFILE));
    }
    let (users, errors) = acl::parse_acl_file(&ctx.srv.config);
    if !errors.is_empty() {
        return Err(CmdError::err(errors.replace(['\r', '\n'], " ")));
    }
    let old = ctx.srv.acl.replace_users(users);
    kill_clients_of(ctx, &old);
    ctx.out.ok();
    Ok(())
}

/// Writes every user to the ACL file (a temporary file renamed over it).
///
/// ```text
/// ACL SAVE
/// ```
fn save(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    let path = acl::aclfile(&ctx.srv.config).to_string();
    if path.is_empty() {
        return Err(CmdError::err(NO_ACLFILE));
    }
    let text = ctx.srv.acl.file_text();
    let tmp = format!(
        "{path}.tmp-{}-{}",
        std::process::id(),
        crate::util::time::now_ms()
    );
    let written = std::fs::write(&tmp, &text).and_then(|_| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        tracing::warn!("Writing ACL file for ACL SAVE: {e}");
        let _ = std::fs::remove_file(&tmp);
        return Err(CmdError::err(
            "There was an error trying to save the ACLs. Please check the server logs for more \
             information",
        ));
    }
    ctx.out.ok();
    Ok(())
}

/// The categories, or the commands (and subcommands) of one category.
///
/// ```text
/// ACL CAT [category]
/// ```
fn cat(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    match argv.len() {
        2 => {
            ctx.out.array(CATEGORIES.len());
            CATEGORIES.iter().for_each(|c| ctx.out.bulk_str(c));
        }
        3 => {
            let flag = acl::category_flag(argv[2]);
            if flag == 0 {
                let name: String = args::text(argv[2]).chars().take(128).collect();
                return Err(CmdError::err(format!("Unknown category '{name}'")));
            }
            let names: Vec<&str> = acl::index()
                .entries
                .iter()
                .filter(|e| e.cats & flag != 0)
                .map(|e| e.full.as_str())
                .collect();
            ctx.out.array(names.len());
            names.iter().for_each(|n| ctx.out.bulk_str(n));
        }
        _ => return Err(wrong_args(argv)),
    }
    Ok(())
}

/// A random password of `bits` bits (256 by default), in hex.
///
/// ```text
/// ACL GENPASS [bits]
/// ```
fn genpass(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    const MAX_BITS: i64 = 4096;
    if argv.len() > 3 {
        return Err(wrong_args(argv));
    }
    let bits = match argv.get(2) {
        Some(a) => args::int(a)?,
        None => 256,
    };
    if bits <= 0 || bits > MAX_BITS {
        return Err(CmdError::err(format!(
            "ACL GENPASS argument must be the number of bits for the output password, a \
             positive number up to {MAX_BITS}"
        )));
    }
    let chars = ((bits + 3) / 4) as usize;
    let mut rng = rand::thread_rng();
    let hex: String = (0..chars)
        .map(|_| char::from(b"0123456789abcdef"[rand::Rng::gen_range(&mut rng, 0..16)]))
        .collect();
    ctx.out.bulk_str(&hex);
    Ok(())
}

/// The newest `count` (10) ACL log entries, or RESET to clear the log.
///
/// ```text
/// ACL LOG [count | RESET]
/// ```
fn log(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 3 {
        return Err(wrong_args(argv));
    }
    let mut count = 10usize;
    if let Some(a) = argv.get(2) {
        if args::is(a, "reset") {
            ctx.srv.acl.log.clear();
            ctx.out.ok();
            return Ok(());
        }
        count = usize::try_from(args::int(a)?.max(0)).unwrap_or(usize::MAX);
    }
    let count = count.min(ctx.srv.acl.log.len());
    let now = crate::util::time::now_ms();
    let out = &mut *ctx.out;
    out.array(count);
    for e in ctx.srv.acl.log.iter().take(count) {
        out.map(7);
        out.bulk_str("count");
        out.integer(e.count as i64);
        out.bulk_str("reason");
        out.bulk_str(e.reason.name());
        out.bulk_str("context");
        out.bulk_str(e.context.name());
        out.bulk_str("object");
        out.bulk(&e.object);
        out.bulk_str("username");
        out.bulk(&e.username);
        out.bulk_str("age-seconds");
        out.double(now.saturating_sub(e.ctime) as f64 / 1000.0);
        out.bulk_str("client-info");
        out.bulk_str(&e.cinfo);
    }
    Ok(())
}

/// Whether a user could run a command, without running it: OK, or why not (as a bulk
/// string).
///
/// ```text
/// ACL DRYRUN username command [arg ...]
/// ```
fn dryrun(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let Some(u) = ctx.srv.acl.users.get(argv[2]).cloned() else {
        return Err(CmdError::err(format!(
            "User '{}' not found",
            args::text(argv[2])
        )));
    };
    let cmd = &argv[3..];
    let spec = lookup_command(cmd)
        .ok_or_else(|| CmdError::err(format!("Command '{}' not found", args::text(argv[3]))))?;
    if !spec.arity_ok(cmd.len()) {
        return Err(CmdError::err(format!(
            "wrong number of arguments for '{}' command",
            spec.full_name()
        )));
    }
    let Some(mut req) = Request::new(spec, cmd) else {
        return Err(CmdError::err(format!(
            "Command '{}' not found",
            args::text(argv[3])
        )));
    };
    let checked = u.rules.borrow().check(&mut req);
    match checked {
        Ok(()) => ctx.out.ok(),
        Err(Denied { reason, pos }) => {
            let text = match reason {
                Reason::Key => format!(
                    "This user has no permissions to access the '{}' key",
                    args::text(cmd[pos])
                ),
                Reason::Channel => format!(
                    "This user has no permissions to access the '{}' channel",
                    args::text(cmd[pos])
                ),
                _ => format!(
                    "This user has no permissions to run the '{}' command",
                    spec.full_name()
                ),
            };
            ctx.out.bulk_str(&text);
        }
    }
    Ok(())
}

/// Redis's `lookupCommand`: the container itself when no subcommand is given.
fn lookup_command(argv: &[&[u8]]) -> Option<&'static CommandSpec> {
    let (_, top) = super::registry().lookup(argv[0])?;
    if top.subcommands.is_empty() || argv.len() < 2 {
        return Some(top);
    }
    top.find_sub(argv[1])
}

/// ```text
/// ACL HELP
/// ```
fn help(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    super::command::reply_help(ctx.out, "ACL", HELP);
    Ok(())
}

const HELP: &[&str] = &[
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
];

/// Key permission bits a key spec's flags ask for: `access` reads, `insert`, `delete` and
/// `update` write.
fn perms_of(flags: &[&str]) -> u8 {
    flags.iter().fold(0, |p, f| match *f {
        "access" => p | acl::PERM_READ,
        "insert" | "delete" | "update" => p | acl::PERM_WRITE,
        _ => p,
    })
}

/// The keys of a command with the permissions each needs, found the way Redis's
/// `getKeysFromCommandWithSpecs` does (key specs, SORT's and the variable-flag commands' own
/// finders). Arguments the specs cannot make sense of yield no keys: the command fails anyway.
pub fn command_keys(spec: &CommandSpec, argv: &[&[u8]]) -> Vec<(usize, u8)> {
    let Some(m) = acl::index()
        .id_of(spec)
        .and_then(|id| acl::index().entries[id].meta)
    else {
        return Vec::new();
    };
    super::command::command_keys(m, argv)
        .unwrap_or_default()
        .into_iter()
        .map(|(pos, flags)| (pos, perms_of(flags)))
        .collect()
}

/// The channels a Pub/Sub command publishes or subscribes to, and whether each is a pattern.
pub fn command_channels(spec: &CommandSpec, argv: &[&[u8]]) -> Vec<(usize, bool)> {
    if !spec.has(PUBSUB) || spec.parent.is_some() {
        return Vec::new();
    }
    match spec.name {
        "publish" | "spublish" => vec![(1, false)],
        "subscribe" | "ssubscribe" => (1..argv.len()).map(|i| (i, false)).collect(),
        "psubscribe" => (1..argv.len()).map(|i| (i, true)).collect(),
        _ => Vec::new(),
    }
}

/// Adds a refusal of `client`'s command to the ACL log; `object` overrides what the reason
/// implies (the command name, or the key or channel at `pos`).
#[allow(clippy::too_many_arguments)]
fn log_denial(
    state: &mut ServerState,
    client: &Client,
    spec: &'static CommandSpec,
    argv: &[&[u8]],
    denied: Denied,
    context: LogContext,
    user: &AclUser,
) {
    let object = match denied.reason {
        Reason::Key | Reason::Channel => argv.get(denied.pos).map_or(Vec::new(), |a| a.to_vec()),
        _ => spec.full_name().into_bytes(),
    };
    let cinfo = client_info(client, spec, argv);
    let entry = LogEntry {
        count: 1,
        reason: denied.reason,
        context,
        object,
        username: user.name.clone(),
        ctime: crate::util::time::now_ms(),
        cinfo,
    };
    let max = log_max_len(&state.config);
    state.acl.log_denial(entry, max);
}

/// `acllog-max-len`.
fn log_max_len(cfg: &crate::config::Config) -> usize {
    let v = cfg.get_by_name("acllog-max-len").unwrap_or("128");
    crate::util::num::parse_i64(v.as_bytes()).map_or(128, |n| usize::try_from(n).unwrap_or(0))
}

/// The CLIENT INFO line of a client running `spec` with `argv`.
fn client_info(client: &Client, spec: &'static CommandSpec, argv: &[&[u8]]) -> String {
    {
        let mut info = client.shared.info.borrow_mut();
        info.db = client.db;
        info.last_cmd = spec;
    }
    super::connection::info_line(&client.shared, Some(argv), false)
}

/// Logs a failed AUTH or HELLO AUTH (`object` is the command name as sent).
pub fn log_auth_failure(ctx: &mut Ctx<'_>, argv: &[&[u8]], username: &[u8]) {
    let context = if ctx.client.multi.is_some() {
        LogContext::Multi
    } else {
        LogContext::Toplevel
    };
    let entry = LogEntry {
        count: 1,
        reason: Reason::Auth,
        context,
        object: argv[0].to_vec(),
        username: username.to_vec(),
        ctime: crate::util::time::now_ms(),
        cinfo: client_info(ctx.client, ctx.cmd, argv),
    };
    let max = log_max_len(&ctx.srv.config);
    ctx.srv.acl.log_denial(entry, max);
}

/// Checks `user`'s permission for a command; logs a refusal.
fn check(
    state: &mut ServerState,
    client: &Client,
    user: &Rc<AclUser>,
    spec: &'static CommandSpec,
    argv: &[&[u8]],
    context: LogContext,
) -> Result<(), Denied> {
    let Some(mut req) = Request::new(spec, argv) else {
        return Ok(());
    };
    let checked = user.rules.borrow().check(&mut req);
    if let Err(d) = checked {
        log_denial(state, client, spec, argv, d, context, user);
    }
    checked
}

/// The dispatcher's check for a client whose user is restricted: Redis's `-NOPERM` refusal of
/// the command, or of one of its keys or channels. Called only when the user is not
/// unrestricted, so the default user costs one branch.
#[inline(never)]
pub fn refusal(
    state: &mut ServerState,
    client: &Client,
    spec: &'static CommandSpec,
    argv: &[&[u8]],
) -> Option<CmdError> {
    let context = if client.multi.is_some() {
        LogContext::Multi
    } else {
        LogContext::Toplevel
    };
    let user = client.user.clone();
    let denied = check(state, client, &user, spec, argv, context).err()?;
    let msg = match denied.reason {
        Reason::Key => {
            "NOPERM this user has no permissions to access one of the keys used as arguments"
                .to_string()
        }
        Reason::Channel => {
            "NOPERM this user has no permissions to access one of the channels used as arguments"
                .to_string()
        }
        _ => format!(
            "NOPERM this user has no permissions to run the '{}' command",
            spec.full_name()
        ),
    };
    Some(CmdError::Msg(msg.into()))
}

/// EXEC's second check of each queued command, in case the rules changed since it was queued.
#[inline(never)]
pub fn exec_refusal(
    state: &mut ServerState,
    client: &Client,
    spec: &'static CommandSpec,
    argv: &[&[u8]],
) -> Option<CmdError> {
    let user = client.user.clone();
    let denied = check(state, client, &user, spec, argv, LogContext::Multi).err()?;
    let reason = match denied.reason {
        Reason::Key => "no permission to touch the specified keys",
        Reason::Channel => "no permission to access one of the channels used as arguments",
        _ => "no permission to execute the command or subcommand",
    };
    Some(CmdError::Msg(
        format!(
            "NOPERM ACLs rules changed between the moment the transaction was accumulated and \
             the EXEC call. This command is no longer allowed for the following reason: {reason}"
        )
        .into(),
    ))
}

/// A script's check of a command it calls, as its caller's user (`scriptVerifyACL`).
#[inline(never)]
pub fn script_refusal(
    state: &mut ServerState,
    caller: &Client,
    spec: &'static CommandSpec,
    argv: &[&[u8]],
) -> Option<&'static str> {
    let user = caller.user.clone();
    let denied = check(state, caller, &user, spec, argv, LogContext::Lua).err()?;
    Some(match denied.reason {
        Reason::Key => {
            "The user executing the script can't access at least one of the keys mentioned in \
             the command arguments"
        }
        Reason::Channel => {
            "The user executing the script can't publish to the channel mentioned in the \
             command"
        }
        _ => "The user executing the script can't run this command or subcommand",
    })
}

/// `redis.acl_check_cmd`: whether the caller's user may run `argv`; `None` for an unknown
/// command.
pub fn script_may_run(caller: &Client, argv: &[&[u8]]) -> Option<bool> {
    let spec = lookup_command(argv)?;
    let mut req = Request::new(spec, argv)?;
    if caller.user.unrestricted.get() {
        return Some(true);
    }
    let ok = caller.user.rules.borrow().check(&mut req).is_ok();
    Some(ok)
}

/// Whether the client's user may run this command and read any key: SORT refuses BY and GET
/// patterns otherwise (Redis's `ACLUserCheckCmdWithUnrestrictedKeyAccess`).
pub fn full_key_access(client: &Client, spec: &'static CommandSpec, argv: &[&[u8]]) -> bool {
    if client.user.unrestricted.get() {
        return true;
    }
    let Some(mut req) = Request::new(spec, argv) else {
        return true;
    };
    let ok = client
        .user
        .rules
        .borrow()
        .unrestricted_key_access(&mut req, acl::PERM_READ);
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_channels_of_commands() {
        let reg = super::super::registry();
        let (_, get) = reg.lookup(b"get").unwrap();
        assert_eq!(
            command_keys(get, &[b"get", b"k"]),
            vec![(1, acl::PERM_READ)]
        );
        let (_, set) = reg.lookup(b"set").unwrap();
        assert_eq!(
            command_keys(set, &[b"set", b"k", b"v"]),
            vec![(1, acl::PERM_WRITE)]
        );
        let (_, psub) = reg.lookup(b"psubscribe").unwrap();
        assert_eq!(
            command_channels(psub, &[b"psubscribe", b"a*", b"b"]),
            vec![(1, true), (2, true)]
        );
    }

    #[test]
    fn categories_come_from_command_metadata() {
        let idx = acl::index();
        let get = idx.entries.iter().find(|e| e.full == "get").unwrap();
        assert_ne!(get.cats & acl::category_flag(b"read"), 0);
        assert_ne!(get.cats & acl::category_flag(b"fast"), 0);
        assert_eq!(get.cats & acl::category_flag(b"write"), 0);
    }
}
