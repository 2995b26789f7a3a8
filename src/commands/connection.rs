//! Connection commands: PING, ECHO, QUIT, SELECT, AUTH, HELLO, RESET, CLIENT (Redis
//! `networking.c`, `acl.c`).
//!
//! Per-connection state lives in [`Client`](crate::server::client::Client) (owned by the
//! connection) and its shared half [`ClientShared`] (visible to CLIENT LIST / KILL). Client
//! pauses are server-wide and kept in [`crate::server::client::pause`].

use std::time::{Duration, Instant};

use super::command::reply_help;
use super::flags::*;
use super::{args, CmdError, CmdResult, CommandSpec, Ctx};
use crate::server::client::{pause, ClientShared, PauseKind, ReplyMode};
use crate::server::tracking::ClientTracking;

const CONN: u32 = NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY;

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("ping", -1, FAST | SENTINEL, 0, 0, 0, ping),
    CommandSpec::new("echo", 2, LOADING | STALE | FAST, 0, 0, 0, echo),
    CommandSpec::new("quit", -1, CONN, 0, 0, 0, quit),
    CommandSpec::new("select", 2, LOADING | STALE | FAST, 0, 0, 0, select),
    CommandSpec::new("auth", -2, CONN | SENTINEL, 0, 0, 0, auth),
    CommandSpec::new("hello", -1, CONN | SENTINEL, 0, 0, 0, hello),
    CommandSpec::new("reset", 1, CONN, 0, 0, 0, reset),
    CommandSpec::container("client", -2, SENTINEL, CLIENT),
];

const CL: u32 = NOSCRIPT | LOADING | STALE;
const CLA: u32 = ADMIN | NOSCRIPT | LOADING | STALE;
const CLIENT: &[CommandSpec] = &[
    CommandSpec::sub("client", "caching", 3, CL, 0, 0, 0, client_caching),
    CommandSpec::sub("client", "getname", 2, CL, 0, 0, 0, client_getname),
    CommandSpec::sub("client", "getredir", 2, CL, 0, 0, 0, client_getredir),
    CommandSpec::sub("client", "help", 2, LOADING | STALE, 0, 0, 0, client_help),
    CommandSpec::sub("client", "id", 2, CL, 0, 0, 0, client_id),
    CommandSpec::sub("client", "info", 2, CL, 0, 0, 0, client_info),
    CommandSpec::sub("client", "kill", -3, CLA, 0, 0, 0, client_kill),
    CommandSpec::sub("client", "list", -2, CLA, 0, 0, 0, client_list),
    CommandSpec::sub("client", "no-evict", 3, CLA, 0, 0, 0, client_no_evict),
    CommandSpec::sub("client", "pause", -3, CLA, 0, 0, 0, client_pause),
    CommandSpec::sub("client", "reply", 3, CL, 0, 0, 0, client_reply),
    CommandSpec::sub("client", "setname", 3, CL, 0, 0, 0, client_setname),
    CommandSpec::sub("client", "tracking", -3, CL, 0, 0, 0, client_tracking),
    CommandSpec::sub("client", "trackinginfo", 2, CL, 0, 0, 0, client_trackinginfo),
    CommandSpec::sub("client", "unblock", -3, CLA, 0, 0, 0, client_unblock),
    CommandSpec::sub("client", "unpause", 2, CLA, 0, 0, 0, client_unpause),
];

/// Placeholder "last command" of a client that has run none (CLIENT LIST shows `cmd=NULL`).
pub static NULL_COMMAND: &CommandSpec = &CommandSpec::new("NULL", 0, 0, 0, 0, 0, quit);

/// ```text
/// PING [message]
/// ```
fn ping(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 2 {
        return Err(CmdError::WrongArity("ping".into()));
    }
    if super::pubsub::in_resp2_subscribed_mode(ctx.client) {
        // Replies must look like messages to a client in Pub/Sub mode.
        ctx.out.array(2);
        ctx.out.bulk_str("pong");
        ctx.out.bulk(argv.get(1).copied().unwrap_or(b""));
        return Ok(());
    }
    match argv.get(1) {
        Some(m) => ctx.out.bulk(m),
        None => ctx.out.simple("PONG"),
    }
    Ok(())
}

/// ```text
/// ECHO message
/// ```
fn echo(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    ctx.out.bulk(argv[1]);
    Ok(())
}

/// Replies OK and closes the connection once the reply is written.
///
/// ```text
/// QUIT
/// ```
fn quit(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    ctx.out.ok();
    ctx.client.close_after_reply = true;
    Ok(())
}

/// ```text
/// SELECT index
/// ```
fn select(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let idx = args::int(argv[1])?;
    if idx < 0 || idx as usize >= ctx.ks.dbs.len() {
        return Err(CmdError::DbIndexOutOfRange);
    }
    ctx.client.db = idx as usize;
    ctx.db = idx as usize;
    ctx.out.ok();
    Ok(())
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Checks `user`/`pass` against the ACL users (`ACLAuthenticateUser`): on success the client
/// runs as that user, authenticated; a failure goes to the ACL log.
fn authenticate(ctx: &mut Ctx<'_>, argv: &[&[u8]], user: &[u8], pass: &[u8]) -> bool {
    match ctx.srv.acl.check_credentials(user, pass) {
        Some(u) => {
            ctx.client.set_user(u, true);
            true
        }
        None => {
            super::acl::log_auth_failure(ctx, argv, user);
            false
        }
    }
}

/// ```text
/// AUTH [username] password
/// ```
fn auth(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let (user, pass) = if argv.len() == 2 {
        if ctx.srv.acl.default.rules.borrow().nopass() {
            return Err(CmdError::err(
                "AUTH <password> called without any password configured for the default \
                 user. Are you sure your configuration is correct?",
            ));
        }
        (&b"default"[..], argv[1])
    } else {
        (argv[1], argv[2])
    };
    if !authenticate(ctx, argv, user, pass) {
        return Err(CmdError::raw(WRONGPASS));
    }
    ctx.out.ok();
    Ok(())
}

/// Switches protocol, optionally authenticating and naming the client, and describes the
/// server. The reply is encoded in the protocol just selected.
///
/// ```text
/// HELLO [protover [AUTH username password] [SETNAME clientname]]
/// ```
fn hello(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let mut ver = None;
    if argv.len() >= 2 {
        let v = args::int(argv[1])
            .map_err(|_| CmdError::err("Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&v) {
            return Err(CmdError::raw("NOPROTO unsupported protocol version"));
        }
        ver = Some(v as u8);
    }
    let mut j = 2;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if args::is(argv[j], "auth") && more >= 2 {
            if !authenticate(ctx, argv, argv[j + 1], argv[j + 2]) {
                return Err(CmdError::raw(WRONGPASS));
            }
            j += 3;
        } else if args::is(argv[j], "setname") && more >= 1 {
            set_name(&ctx.client.shared, argv[j + 1])?;
            j += 2;
        } else {
            return Err(CmdError::err(format!(
                "Syntax error in HELLO option '{}'",
                args::text(argv[j])
            )));
        }
    }
    if !ctx.client.authenticated {
        return Err(CmdError::raw(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO AUTH <user> <pass> option can be used to authenticate the client and select \
             the RESP protocol version at the same time",
        ));
    }
    if let Some(v) = ver {
        ctx.client.shared.info.borrow_mut().resp = v;
        ctx.out.resp = ctx.client.resp();
    }
    let resp = ctx.client.shared.info.borrow().resp;
    ctx.out.map(7);
    for (k, v) in [
        ("server", "redis"),
        ("version", crate::server::listener::REDIS_VERSION),
    ] {
        ctx.out.bulk_str(k);
        ctx.out.bulk_str(v);
    }
    ctx.out.bulk_str("proto");
    ctx.out.integer(i64::from(resp));
    ctx.out.bulk_str("id");
    ctx.out.integer(ctx.client.id as i64);
    for (k, v) in [("mode", "standalone"), ("role", "master")] {
        ctx.out.bulk_str(k);
        ctx.out.bulk_str(v);
    }
    ctx.out.bulk_str("modules");
    ctx.out.array(0);
    Ok(())
}

/// Puts the connection back in its initial state.
///
/// ```text
/// RESET
/// ```
fn reset(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    super::pubsub::reset_client(ctx);
    ctx.srv.tracking_disable(&ctx.client.shared);
    super::multi::reset(ctx.srv, ctx.client);
    ctx.client.db = 0;
    ctx.db = 0;
    ctx.client.reply_mode = ReplyMode::On;
    let authenticated = ctx.srv.acl.default_authenticated();
    ctx.client.set_user(ctx.srv.acl.default.clone(), authenticated);
    {
        let mut info = ctx.client.shared.info.borrow_mut();
        info.resp = 2;
        info.name = None;
        info.no_evict = false;
    }
    ctx.out.resp = ctx.client.resp();
    ctx.out.simple("RESET");
    Ok(())
}

/// Sets (or, with an empty name, clears) the connection name; Redis only allows printable
/// characters other than space, so CLIENT LIST stays parseable.
fn set_name(shared: &ClientShared, name: &[u8]) -> CmdResult {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::err(
            "Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    shared.info.borrow_mut().name = if name.is_empty() {
        None
    } else {
        Some(name.to_vec())
    };
    Ok(())
}

/// ```text
/// CLIENT GETNAME
/// ```
fn client_getname(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    match &ctx.client.shared.info.borrow().name {
        Some(n) => ctx.out.bulk(n),
        None => ctx.out.null(),
    }
    Ok(())
}

/// ```text
/// CLIENT HELP
/// ```
fn client_help(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    reply_help(ctx.out, "CLIENT", CLIENT_HELP);
    Ok(())
}

const CLIENT_HELP: &[&str] = &[
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
];

/// ```text
/// CLIENT ID
/// ```
fn client_id(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    ctx.out.integer(ctx.client.id as i64);
    Ok(())
}

/// Turns server-assisted client-side caching on or off for this connection (see
/// `server::tracking`). Every option is validated before anything changes, with Redis's checks
/// in Redis's order.
///
/// ```text
/// CLIENT TRACKING ON|OFF [REDIRECT client-id] [PREFIX prefix [PREFIX prefix ...]] [BCAST]
///     [OPTIN] [OPTOUT] [NOLOOP]
/// ```
fn client_tracking(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let mut opts = ClientTracking::default();
    let mut prefixes: Vec<&[u8]> = Vec::new();
    let mut j = 3;
    while j < argv.len() {
        let more = j + 1 < argv.len();
        if args::is(argv[j], "redirect") && more {
            j += 1;
            if opts.redirect != 0 {
                return Err(CmdError::err("A client can only redirect to a single other client"));
            }
            let id = args::int(argv[j])?;
            // Ids start at 1, so 0 and negative ids name no client.
            let known = u64::try_from(id).ok().filter(|id| ctx.srv.clients.contains_key(id));
            let Some(id) = known else {
                return Err(CmdError::err("The client ID you want redirect to does not exist"));
            };
            opts.redirect = id;
        } else if args::is(argv[j], "bcast") {
            opts.bcast = true;
        } else if args::is(argv[j], "optin") {
            opts.optin = true;
        } else if args::is(argv[j], "optout") {
            opts.optout = true;
        } else if args::is(argv[j], "noloop") {
            opts.noloop = true;
        } else if args::is(argv[j], "prefix") && more {
            j += 1;
            prefixes.push(argv[j]);
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if args::is(argv[2], "off") {
        ctx.srv.tracking_disable(&ctx.client.shared);
        ctx.out.ok();
        return Ok(());
    }
    if !args::is(argv[2], "on") {
        return Err(CmdError::Syntax);
    }
    check_tracking_options(&ctx.client.shared, &opts, &prefixes)?;
    ctx.srv.tracking_enable(&ctx.client.shared, opts, &prefixes);
    ctx.out.ok();
    Ok(())
}

/// CLIENT TRACKING ON's compatibility checks between the new options and the current state.
fn check_tracking_options(
    c: &ClientShared,
    opts: &ClientTracking,
    prefixes: &[&[u8]],
) -> CmdResult {
    if !opts.bcast && !prefixes.is_empty() {
        return Err(CmdError::err("PREFIX option requires BCAST mode to be enabled"));
    }
    let cur = c.tracking.borrow();
    if cur.as_ref().is_some_and(|t| t.bcast != opts.bcast) {
        return Err(CmdError::err(
            "You can't switch BCAST mode on/off before disabling tracking for this client, and \
             then re-enabling it with a different mode.",
        ));
    }
    if opts.bcast && (opts.optin || opts.optout) {
        return Err(CmdError::err("OPTIN and OPTOUT are not compatible with BCAST"));
    }
    if opts.optin && opts.optout {
        return Err(CmdError::err("You can't specify both OPTIN mode and OPTOUT mode"));
    }
    if cur.as_ref().is_some_and(|t| (opts.optin && t.optout) || (opts.optout && t.optin)) {
        return Err(CmdError::err(
            "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and \
             then re-enabling it with a different mode.",
        ));
    }
    if opts.bcast {
        let none = std::collections::BTreeSet::new();
        let existing = cur.as_ref().map_or(&none, |t| &t.prefixes);
        if let Some(e) = crate::server::tracking::prefix_collision(existing, prefixes) {
            return Err(CmdError::Msg(e.into()));
        }
    }
    Ok(())
}

/// Caches (OPTIN) or skips (OPTOUT) the keys of the next command.
///
/// ```text
/// CLIENT CACHING YES|NO
/// ```
fn client_caching(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let mut cur = ctx.client.shared.tracking.borrow_mut();
    let Some(t) = cur.as_mut() else {
        return Err(CmdError::err(
            "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN \
             or OPTOUT mode enabled",
        ));
    };
    if args::is(argv[2], "yes") {
        if !t.optin {
            return Err(CmdError::err(
                "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if args::is(argv[2], "no") {
        if !t.optout {
            return Err(CmdError::err(
                "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(CmdError::Syntax);
    }
    t.caching = true;
    drop(cur);
    ctx.out.ok();
    Ok(())
}

/// The client id invalidations are redirected to: 0 for none, -1 with tracking off.
///
/// ```text
/// CLIENT GETREDIR
/// ```
fn client_getredir(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    let redir = ctx.client.shared.tracking.borrow().as_ref().map_or(-1, |t| t.redirect as i64);
    ctx.out.integer(redir);
    Ok(())
}

/// This connection's tracking state: flags, redirection and BCAST prefixes.
///
/// ```text
/// CLIENT TRACKINGINFO
/// ```
fn client_trackinginfo(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    let cur = ctx.client.shared.tracking.borrow();
    let mut flags: Vec<&str> = vec![if cur.is_some() { "on" } else { "off" }];
    if let Some(t) = cur.as_ref() {
        let pairs = [
            (t.bcast, "bcast"),
            (t.optin, "optin"),
            (t.optin && t.caching, "caching-yes"),
            (t.optout, "optout"),
            (t.optout && t.caching, "caching-no"),
            (t.noloop, "noloop"),
            (t.broken_redir, "broken_redirect"),
        ];
        flags.extend(pairs.iter().filter(|(on, _)| *on).map(|(_, f)| *f));
    }
    ctx.out.map(3);
    ctx.out.bulk_str("flags");
    ctx.out.set(flags.len());
    for f in flags {
        ctx.out.bulk_str(f);
    }
    ctx.out.bulk_str("redirect");
    ctx.out.integer(cur.as_ref().map_or(-1, |t| t.redirect as i64));
    ctx.out.bulk_str("prefixes");
    let prefixes: Vec<&Vec<u8>> =
        cur.as_ref().map(|t| t.prefixes.iter().collect()).unwrap_or_default();
    ctx.out.array(prefixes.len());
    for p in prefixes {
        ctx.out.bulk(p);
    }
    Ok(())
}

/// Renders one CLIENT LIST line (without the newline), fields in Redis 7.0's order.
pub(crate) fn info_line(c: &ClientShared, current: Option<&[&[u8]]>, blocked: bool) -> String {
    let i = c.info.borrow();
    let now = Instant::now();
    let mut flags: String = i.flags.chars().filter(|&f| f != 'N' && f != 'e').collect();
    if blocked {
        // Redis's order: S, M, P, x come before b.
        let at = flags.chars().take_while(|f| "SMPx".contains(*f)).count();
        flags.insert(at, 'b');
    }
    let t = c.tracking.borrow();
    if let Some(t) = t.as_ref() {
        // Redis's order: t, R, B come after S, M, P, x, b.
        let at = flags.chars().take_while(|f| "SMPxb".contains(*f)).count();
        let mut tf = String::from("t");
        if t.broken_redir {
            tf.push('R');
        }
        if t.bcast {
            tf.push('B');
        }
        flags.insert_str(at, &tf);
    }
    let redir = t.as_ref().map_or(-1, |t| t.redirect as i64);
    drop(t);
    if i.no_evict {
        flags.push('e');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let argv_mem: usize = current.map_or(0, |a| a.iter().map(|x| x.len()).sum());
    let name = i
        .name
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let (qbuf, qfree, obl) = (i.qbuf, i.qbuf_free, i.obl);
    let (rbs, rbp) = (i.rbs, i.rbp);
    let omem = i.omem.max(c.pending_output());
    let tot = i.tot_mem.max(i.memory(omem) + argv_mem);
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} \
         multi={} qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs={} rbp={} obl={} oll=0 \
         omem={} tot-mem={} events=r cmd={} user={} redir={} resp={}",
        i.id,
        i.addr,
        i.laddr,
        i.fd,
        name,
        now.duration_since(i.created).as_secs(),
        now.duration_since(i.last_interaction).as_secs(),
        flags,
        i.db,
        i.sub,
        i.psub,
        i.ssub,
        i.multi,
        qbuf,
        qfree,
        argv_mem,
        i.multi_mem,
        rbs,
        rbp,
        obl,
        omem,
        tot,
        i.last_cmd.full_name(),
        i.user,
        redir,
        i.resp
    )
}

/// Refreshes the calling client's own CLIENT LIST fields before it is rendered.
fn refresh_self(ctx: &mut Ctx<'_>) {
    let mut info = ctx.client.shared.info.borrow_mut();
    info.db = ctx.client.db;
    info.last_cmd = ctx.cmd;
    info.last_interaction = Instant::now();
    info.qbuf = ctx.client.qbuf;
    info.qbuf_free = ctx.client.qbuf_free;
}

/// ```text
/// CLIENT INFO
/// ```
fn client_info(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    refresh_self(ctx);
    let mut s = info_line(&ctx.client.shared, Some(argv), false);
    s.push('\n');
    ctx.out.verbatim("txt", s.as_bytes());
    Ok(())
}

/// Parses a client type name (`normal`, `master`, `replica`/`slave`, `pubsub`).
fn client_type(name: &[u8]) -> Result<&'static str, CmdError> {
    let t = ["normal", "master", "replica", "slave", "pubsub"]
        .into_iter()
        .find(|t| args::is(name, t))
        .ok_or_else(|| CmdError::err(format!("Unknown client type '{}'", args::text(name))))?;
    Ok(if t == "slave" { "replica" } else { t })
}

/// The type of a connected client. Replication and pub/sub do not mark clients yet, so every
/// connection is a normal client unless its flags say otherwise.
fn type_of(c: &ClientShared) -> &'static str {
    let f = &c.info.borrow().flags;
    if f.contains('M') {
        "master"
    } else if f.contains('S') {
        "replica"
    } else if f.contains('P') {
        "pubsub"
    } else {
        "normal"
    }
}

/// ```text
/// CLIENT LIST [TYPE NORMAL|MASTER|REPLICA|PUBSUB] [ID client-id [client-id ...]]
/// ```
fn client_list(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    refresh_self(ctx);
    let me = ctx.client.id;
    let mut ids: Option<Vec<u64>> = None;
    let mut ty = None;
    if argv.len() == 4 && args::is(argv[2], "type") {
        ty = Some(client_type(argv[3])?);
    } else if argv.len() > 3 && args::is(argv[2], "id") {
        let mut v = Vec::new();
        for a in &argv[3..] {
            let id = args::int(a).map_err(|_| CmdError::err("Invalid client ID"))?;
            v.push(id as u64);
        }
        ids = Some(v);
    } else if argv.len() != 2 {
        return Err(CmdError::Syntax);
    }
    let mut out = String::new();
    let blocking = &ctx.srv.blocking;
    let line = |c: &ClientShared, id: u64| {
        info_line(c, if id == me { Some(argv) } else { None }, blocking.is_blocked(id))
    };
    match ids {
        Some(ids) => {
            for id in ids {
                if let Some(c) = ctx.srv.clients.get(&id) {
                    out.push_str(&line(c, id));
                    out.push('\n');
                }
            }
        }
        None => {
            for (id, c) in &ctx.srv.clients {
                if ty.map_or(true, |t| type_of(c) == t) {
                    out.push_str(&line(c, *id));
                    out.push('\n');
                }
            }
        }
    }
    ctx.out.verbatim("txt", out.as_bytes());
    Ok(())
}

/// Filters of CLIENT KILL.
#[derive(Default)]
struct KillFilter<'a> {
    addr: Option<&'a [u8]>,
    laddr: Option<&'a [u8]>,
    ty: Option<&'static str>,
    id: Option<u64>,
    user: Option<&'a [u8]>,
    skipme: bool,
}

fn parse_kill_filter<'a>(
    argv: &[&'a [u8]],
    acl: &crate::server::acl::Acl,
) -> Result<KillFilter<'a>, CmdError> {
    if argv.len() == 3 {
        return Ok(KillFilter {
            addr: Some(argv[2]),
            ..KillFilter::default()
        });
    }
    let mut f = KillFilter {
        skipme: true,
        ..KillFilter::default()
    };
    let mut i = 2;
    while i < argv.len() {
        let (opt, Some(val)) = (argv[i], argv.get(i + 1).copied()) else {
            return Err(CmdError::Syntax);
        };
        if args::is(opt, "id") {
            let id = args::int(val)
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| CmdError::err("client-id should be greater than 0"))?;
            f.id = Some(id as u64);
        } else if args::is(opt, "type") {
            f.ty = Some(client_type(val)?);
        } else if args::is(opt, "addr") {
            f.addr = Some(val);
        } else if args::is(opt, "laddr") {
            f.laddr = Some(val);
        } else if args::is(opt, "user") {
            if !acl.users.contains_key(val) {
                return Err(CmdError::err(format!("No such user '{}'", args::text(val))));
            }
            f.user = Some(val);
        } else if args::is(opt, "skipme") {
            f.skipme = match () {
                _ if args::is(val, "yes") => true,
                _ if args::is(val, "no") => false,
                _ => return Err(CmdError::Syntax),
            };
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok(f)
}

fn kill_matches(f: &KillFilter<'_>, c: &ClientShared, me: u64) -> bool {
    let i = c.info.borrow();
    if f.addr.is_some_and(|a| a != i.addr.to_string().as_bytes())
        || f.laddr.is_some_and(|a| a != i.laddr.to_string().as_bytes())
        || f.id.is_some_and(|id| id != i.id)
        || f.user.is_some_and(|u| String::from_utf8_lossy(u) != i.user.as_str())
        || (f.skipme && i.id == me)
    {
        return false;
    }
    drop(i);
    f.ty.map_or(true, |t| type_of(c) == t)
}

/// Closes matching connections. The old one-argument form replies OK (or an error when
/// nothing matched) and may kill the caller; the filter form replies with a count.
///
/// ```text
/// CLIENT KILL ip:port
/// CLIENT KILL [ID id] [TYPE type] [USER username] [ADDR ip:port] [LADDR ip:port]
///             [SKIPME yes|no]
/// ```
fn client_kill(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let f = parse_kill_filter(argv, &ctx.srv.acl)?;
    let me = ctx.client.id;
    let mut killed = 0;
    for (id, c) in &ctx.srv.clients {
        if !kill_matches(&f, c, me) {
            continue;
        }
        if *id == me {
            ctx.client.close_after_reply = true;
        } else {
            c.kill();
        }
        killed += 1;
    }
    if argv.len() == 3 {
        if killed == 0 {
            return Err(CmdError::err("No such client"));
        }
        ctx.out.ok();
    } else {
        ctx.out.integer(killed);
    }
    Ok(())
}

/// ```text
/// CLIENT NO-EVICT ON|OFF
/// ```
fn client_no_evict(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let on = on_off(argv[2])?;
    ctx.client.shared.info.borrow_mut().no_evict = on;
    ctx.out.ok();
    Ok(())
}

fn on_off(a: &[u8]) -> Result<bool, CmdError> {
    if args::is(a, "on") {
        Ok(true)
    } else if args::is(a, "off") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

/// Suspends all clients, or only their writes, for `timeout` milliseconds; the connections
/// hold their next affected command until the pause ends.
///
/// ```text
/// CLIENT PAUSE timeout [WRITE|ALL]
/// ```
fn client_pause(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 4 {
        return Err(CmdError::Syntax);
    }
    let mut kind = PauseKind::All;
    if let Some(m) = argv.get(3) {
        kind = if args::is(m, "write") {
            PauseKind::Write
        } else if args::is(m, "all") {
            PauseKind::All
        } else {
            return Err(CmdError::err("CLIENT PAUSE mode must be WRITE or ALL"));
        };
    }
    let ms = args::int(argv[2]).map_err(|_| CmdError::Timeout)?;
    if ms < 0 {
        return Err(CmdError::err("timeout is negative"));
    }
    let end = Instant::now().checked_add(Duration::from_millis(ms as u64));
    let end = end.unwrap_or_else(|| Instant::now() + Duration::from_secs(u32::MAX.into()));
    pause::start(end, kind);
    ctx.out.ok();
    Ok(())
}

/// ```text
/// CLIENT UNPAUSE
/// ```
fn client_unpause(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    pause::stop();
    ctx.out.ok();
    Ok(())
}

/// Ends another client's block (BLPOP and friends): TIMEOUT (the default) makes it reply as if
/// its timeout fired, ERROR with an `UNBLOCKED` error. Replies 1 if the client was blocked.
///
/// ```text
/// CLIENT UNBLOCK client-id [TIMEOUT | ERROR]
/// ```
fn client_unblock(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    use crate::server::blocking::UnblockMode;
    if argv.len() > 4 {
        return Err(CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            args::text(argv[1])
        )));
    }
    let mode = match argv.get(3) {
        None => UnblockMode::Timeout,
        Some(a) if args::is(a, "timeout") => UnblockMode::Timeout,
        Some(a) if args::is(a, "error") => UnblockMode::Error,
        Some(_) => return Err(CmdError::err("CLIENT UNBLOCK reason should be TIMEOUT or ERROR")),
    };
    let id = args::int(argv[2])?;
    let target = u64::try_from(id).ok().and_then(|id| ctx.srv.clients.get(&id).cloned());
    let unblocked = match target {
        Some(t) if ctx.srv.blocking.request_unblock(t.info.borrow().id, mode) => {
            t.wake.notify_one();
            true
        }
        _ => false,
    };
    ctx.out.integer(i64::from(unblocked));
    Ok(())
}

/// OFF silences every reply (this one included), SKIP only the next command's, ON restores
/// them and is acknowledged. The connection applies the mode (see `apply_reply_mode`).
///
/// ```text
/// CLIENT REPLY ON|OFF|SKIP
/// ```
fn client_reply(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let a = argv[2];
    if args::is(a, "on") {
        ctx.client.reply_mode = ReplyMode::On;
        ctx.out.ok();
    } else if args::is(a, "off") {
        ctx.client.reply_mode = ReplyMode::Off;
    } else if args::is(a, "skip") {
        if ctx.client.reply_mode != ReplyMode::Off {
            ctx.client.reply_mode = ReplyMode::SkipNext;
        }
    } else {
        return Err(CmdError::Syntax);
    }
    Ok(())
}

/// ```text
/// CLIENT SETNAME connection-name
/// ```
fn client_setname(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    set_name(&ctx.client.shared, argv[2])?;
    ctx.out.ok();
    Ok(())
}
