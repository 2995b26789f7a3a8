//! Pub/Sub commands (Redis `pubsub.c`): SUBSCRIBE and friends, PUBLISH, SPUBLISH, PUBSUB.
//!
//! The registry and message delivery live in [`crate::server::pubsub`]; this file holds the
//! replies. Subscription confirmations are replies of the subscribing command (push frames in
//! RESP3, arrays in RESP2); messages for other clients are queued on their connections.

use super::command::reply_help;
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::protocol::ReplyBuf;
use crate::server::client::{Client, ReplyMode};
use crate::server::pubsub::Kind;

const SUB: u32 = PUBSUB | NOSCRIPT | LOADING | STALE;
const PUB: u32 = PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE;
const INTRO: u32 = PUBSUB | LOADING | STALE;

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("subscribe", -2, SUB, 0, 0, 0, subscribe),
    CommandSpec::new("unsubscribe", -1, SUB, 0, 0, 0, unsubscribe),
    CommandSpec::new("psubscribe", -2, SUB, 0, 0, 0, psubscribe),
    CommandSpec::new("punsubscribe", -1, SUB, 0, 0, 0, punsubscribe),
    CommandSpec::new("ssubscribe", -2, SUB, 1, -1, 1, ssubscribe),
    CommandSpec::new("sunsubscribe", -1, SUB, 1, -1, 1, sunsubscribe),
    CommandSpec::new("publish", 3, PUB | SENTINEL, 0, 0, 0, publish),
    CommandSpec::new("spublish", 3, PUB, 1, 1, 1, spublish),
    CommandSpec::container("pubsub", -2, 0, PUBSUB_SUBS),
];

const PUBSUB_SUBS: &[CommandSpec] = &[
    CommandSpec::sub("pubsub", "channels", -2, INTRO, 0, 0, 0, pubsub_channels),
    CommandSpec::sub("pubsub", "help", 2, LOADING | STALE, 0, 0, 0, pubsub_help),
    CommandSpec::sub("pubsub", "numpat", 2, INTRO, 0, 0, 0, pubsub_numpat),
    CommandSpec::sub("pubsub", "numsub", -2, INTRO, 0, 0, 0, pubsub_numsub),
    CommandSpec::sub("pubsub", "shardchannels", -2, INTRO, 0, 0, 0, pubsub_shardchannels),
    CommandSpec::sub("pubsub", "shardnumsub", -2, INTRO, 0, 0, 0, pubsub_shardnumsub),
];

/// Commands a RESP2 client in Pub/Sub mode may still run.
const ALLOWED_WHILE_SUBSCRIBED: &[&str] = &[
    "ping",
    "subscribe",
    "ssubscribe",
    "unsubscribe",
    "sunsubscribe",
    "psubscribe",
    "punsubscribe",
    "quit",
    "reset",
];

/// Redis's refusal of other commands from a RESP2 client in Pub/Sub mode (its replies could
/// not be told apart from messages). RESP3 clients have no such limit.
pub fn subscribed_mode_refusal(client: &Client, spec: &CommandSpec) -> Option<CmdError> {
    if !in_resp2_subscribed_mode(client) {
        return None;
    }
    if spec.parent.is_none() && ALLOWED_WHILE_SUBSCRIBED.contains(&spec.name) {
        return None;
    }
    Some(CmdError::err(format!(
        "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are \
         allowed in this context",
        spec.full_name()
    )))
}

/// True for a RESP2 client subscribed to anything (PING then answers `*2 pong <msg>`).
pub fn in_resp2_subscribed_mode(client: &Client) -> bool {
    let i = client.shared.info.borrow();
    i.resp == 2 && i.sub + i.psub + i.ssub > 0
}

/// Drops every subscription of the calling client without replies (RESET).
pub fn reset_client(ctx: &mut Ctx<'_>) {
    ctx.srv.pubsub.remove_client(&ctx.client.shared);
}

/// One subscription confirmation or notice: `[tag, name|null, count]`.
///
/// Like Redis, these are pushes that CLIENT REPLY OFF / SKIP do not silence: while replies are
/// off the notice is queued as a message to the client itself, which the connection places
/// where the reply would have gone.
fn notice(ctx: &mut Ctx<'_>, tag: &str, name: Option<&[u8]>, count: usize) {
    let silenced = ctx.client.reply_mode != ReplyMode::On;
    let mut own = ReplyBuf::new(ctx.client.resp());
    let out = if silenced { &mut own } else { &mut *ctx.out };
    out.push(3);
    out.bulk_str(tag);
    match name {
        Some(n) => out.bulk(n),
        None => out.null(),
    }
    out.integer(count as i64);
    if silenced {
        ctx.client.shared.pushed.borrow_mut().extend_from_slice(&own.buf);
    }
}

/// Subscribes to each name in turn, confirming each with the count after it.
fn subscribe_all(ctx: &mut Ctx<'_>, argv: &[&[u8]], kind: Kind, tag: &str) {
    let id = ctx.client.id;
    for name in &argv[1..] {
        ctx.srv.pubsub.subscribe(kind, &ctx.client.shared, name);
        let count = ctx.srv.pubsub.client_count(kind, id);
        notice(ctx, tag, Some(name), count);
    }
}

/// Unsubscribes from the given names, or from everything when none are given; like Redis, a
/// mass unsubscribe with nothing to drop still answers once, with a null name.
fn unsubscribe_all(ctx: &mut Ctx<'_>, argv: &[&[u8]], kind: Kind, tag: &str) {
    let id = ctx.client.id;
    let names: Vec<Vec<u8>> = if argv.len() > 1 {
        argv[1..].iter().map(|a| a.to_vec()).collect()
    } else {
        ctx.srv.pubsub.client_names(kind, id)
    };
    if names.is_empty() {
        let count = ctx.srv.pubsub.client_count(kind, id);
        notice(ctx, tag, None, count);
        return;
    }
    for name in &names {
        ctx.srv.pubsub.unsubscribe(kind, &ctx.client.shared, name);
        let count = ctx.srv.pubsub.client_count(kind, id);
        notice(ctx, tag, Some(name), count);
    }
}

/// ```text
/// SUBSCRIBE channel [channel ...]
/// ```
fn subscribe(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    subscribe_all(ctx, argv, Kind::Channel, "subscribe");
    Ok(())
}

/// ```text
/// UNSUBSCRIBE [channel [channel ...]]
/// ```
fn unsubscribe(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    unsubscribe_all(ctx, argv, Kind::Channel, "unsubscribe");
    Ok(())
}

/// ```text
/// PSUBSCRIBE pattern [pattern ...]
/// ```
fn psubscribe(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    subscribe_all(ctx, argv, Kind::Pattern, "psubscribe");
    Ok(())
}

/// ```text
/// PUNSUBSCRIBE [pattern [pattern ...]]
/// ```
fn punsubscribe(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    unsubscribe_all(ctx, argv, Kind::Pattern, "punsubscribe");
    Ok(())
}

/// ```text
/// SSUBSCRIBE shardchannel [shardchannel ...]
/// ```
fn ssubscribe(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    subscribe_all(ctx, argv, Kind::Shard, "ssubscribe");
    Ok(())
}

/// ```text
/// SUNSUBSCRIBE [shardchannel [shardchannel ...]]
/// ```
fn sunsubscribe(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    unsubscribe_all(ctx, argv, Kind::Shard, "sunsubscribe");
    Ok(())
}

/// Replies with the number of clients that received the message.
///
/// ```text
/// PUBLISH channel message
/// ```
fn publish(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let d = ctx.srv.delivery();
    let n = ctx.srv.pubsub.publish(Kind::Channel, argv[1], argv[2], &d);
    ctx.propagate_to_replicas();
    ctx.out.integer(n as i64);
    Ok(())
}

/// Like PUBLISH, for shard channels; pattern subscribers never receive these.
///
/// ```text
/// SPUBLISH shardchannel message
/// ```
fn spublish(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let d = ctx.srv.delivery();
    let n = ctx.srv.pubsub.publish(Kind::Shard, argv[1], argv[2], &d);
    ctx.propagate_to_replicas();
    ctx.out.integer(n as i64);
    Ok(())
}

/// Redis checks PUBSUB's per-subcommand argument counts itself, with this error.
fn pubsub_syntax(argv: &[&[u8]]) -> CmdError {
    CmdError::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
        String::from_utf8_lossy(argv[1])
    ))
}

/// Active channels of one namespace, optionally filtered by a glob pattern.
fn list_channels(ctx: &mut Ctx<'_>, argv: &[&[u8]], kind: Kind) -> CmdResult {
    if argv.len() > 3 {
        return Err(pubsub_syntax(argv));
    }
    let names = ctx.srv.pubsub.active(kind, argv.get(2).copied());
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n);
    }
    Ok(())
}

/// Channel / subscriber-count pairs, flat.
fn count_subscribers(ctx: &mut Ctx<'_>, argv: &[&[u8]], kind: Kind) -> CmdResult {
    ctx.out.array((argv.len() - 2) * 2);
    for name in &argv[2..] {
        ctx.out.bulk(name);
        ctx.out.integer(ctx.srv.pubsub.numsub(kind, name) as i64);
    }
    Ok(())
}

/// ```text
/// PUBSUB CHANNELS [pattern]
/// ```
fn pubsub_channels(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    list_channels(ctx, argv, Kind::Channel)
}

/// ```text
/// PUBSUB SHARDCHANNELS [pattern]
/// ```
fn pubsub_shardchannels(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    list_channels(ctx, argv, Kind::Shard)
}

/// Subscribers of each channel, not counting pattern subscribers.
///
/// ```text
/// PUBSUB NUMSUB [channel [channel ...]]
/// ```
fn pubsub_numsub(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    count_subscribers(ctx, argv, Kind::Channel)
}

/// ```text
/// PUBSUB SHARDNUMSUB [shardchannel [shardchannel ...]]
/// ```
fn pubsub_shardnumsub(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    count_subscribers(ctx, argv, Kind::Shard)
}

/// Distinct patterns, whoever subscribed to them.
///
/// ```text
/// PUBSUB NUMPAT
/// ```
fn pubsub_numpat(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    ctx.out.integer(ctx.srv.pubsub.numpat() as i64);
    Ok(())
}

/// ```text
/// PUBSUB HELP
/// ```
fn pubsub_help(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    reply_help(ctx.out, "PUBSUB", PUBSUB_HELP);
    Ok(())
}

const PUBSUB_HELP: &[&str] = &[
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_list_names_real_commands() {
        let reg = super::super::registry();
        for name in ALLOWED_WHILE_SUBSCRIBED {
            assert!(reg.lookup(name.as_bytes()).is_some(), "{name}");
        }
    }
}
