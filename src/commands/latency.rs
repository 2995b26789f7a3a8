//! LATENCY: the latency monitor's events (`server::latency`) and the per-command latency
//! histograms the dispatcher records (`util::histogram`).

use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::server::latency::{self, DoctorConfig};
use crate::util::time::now_secs;

const SUB_FLAGS: u32 = ADMIN | NOSCRIPT | LOADING | STALE;

pub(crate) const COMMANDS: &[CommandSpec] = &[CommandSpec::container(
    "latency",
    -2,
    0,
    &[
        CommandSpec::sub("latency", "doctor", 2, SUB_FLAGS, 0, 0, 0, doctor),
        CommandSpec::sub("latency", "graph", 3, SUB_FLAGS, 0, 0, 0, graph),
        CommandSpec::sub("latency", "help", 2, LOADING | STALE, 0, 0, 0, help),
        CommandSpec::sub("latency", "histogram", -2, SUB_FLAGS, 0, 0, 0, histogram),
        CommandSpec::sub("latency", "history", 3, SUB_FLAGS, 0, 0, 0, history),
        CommandSpec::sub("latency", "latest", 2, SUB_FLAGS, 0, 0, 0, latest),
        CommandSpec::sub("latency", "reset", -2, SUB_FLAGS, 0, 0, 0, reset),
    ],
)];

/// Each event's most recent spike: `[event, unix time, ms, all-time worst ms]`.
///
/// ```text
/// LATENCY LATEST
/// ```
fn latest(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    let events: Vec<_> = ctx.srv.latency.iter().collect();
    ctx.out.array(events.len());
    for (event, ts) in events {
        let last = ts.latest();
        ctx.out.array(4);
        ctx.out.bulk(event.as_bytes());
        ctx.out.integer(last.time as i64);
        ctx.out.integer(last.latency as i64);
        ctx.out.integer(ts.max as i64);
    }
    Ok(())
}

/// `[unix time, ms]` for each second of the event's history, oldest first (empty for an
/// event never seen).
///
/// ```text
/// LATENCY HISTORY event
/// ```
fn history(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let samples: Vec<_> = match ctx.srv.latency.get(argv[2]) {
        Some(ts) => ts.history().collect(),
        None => Vec::new(),
    };
    ctx.out.array(samples.len());
    for s in samples {
        ctx.out.array(2);
        ctx.out.integer(s.time as i64);
        ctx.out.integer(s.latency as i64);
    }
    Ok(())
}

/// An ASCII graph of the event's history.
///
/// ```text
/// LATENCY GRAPH event
/// ```
fn graph(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let Some(ts) = ctx.srv.latency.get(argv[2]) else {
        return Err(CmdError::err(format!(
            "No samples available for event '{}'",
            String::from_utf8_lossy(argv[2])
        )));
    };
    let event = String::from_utf8_lossy(argv[2]).into_owned();
    let text = latency::graph(&event, ts, now_secs());
    ctx.out.verbatim("txt", text.as_bytes());
    Ok(())
}

/// A human-readable analysis of the events, with advice.
///
/// ```text
/// LATENCY DOCTOR
/// ```
fn doctor(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    let cfg = &ctx.srv.config;
    let dc = DoctorConfig {
        threshold: cfg.latency_monitor_threshold,
        slowlog_slower_than: cfg.slowlog_log_slower_than,
        hz: cfg.hz,
        fsync_always: cfg.appendfsync == "always",
        anon_huge_pages: latency::anon_huge_pages(),
    };
    let text = latency::doctor(&ctx.srv.latency, &dc, now_secs());
    ctx.out.verbatim("txt", text.as_bytes());
    Ok(())
}

/// Forgets the named events, or all of them; replies how many existed.
///
/// ```text
/// LATENCY RESET [event ...]
/// ```
fn reset(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let n = if argv.len() == 2 {
        ctx.srv.latency.reset_all()
    } else {
        argv[2..].iter().filter(|e| ctx.srv.latency.reset_event(e)).count()
    };
    ctx.out.integer(n as i64);
    Ok(())
}

/// The cumulative latency distribution of each named command (a container stands for all of
/// its subcommands; unknown names are skipped), or of every command that ran.
///
/// ```text
/// LATENCY HISTOGRAM [command ...]
/// ```
fn histogram(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let mut specs: Vec<&'static CommandSpec> = Vec::new();
    if argv.len() == 2 {
        for spec in &super::registry().all {
            specs.push(spec);
            specs.extend(spec.subcommands.iter());
        }
        specs.sort_by_key(|s| s.full_name());
    } else {
        for name in &argv[2..] {
            let Some(spec) = super::command::lookup_by_name(name) else {
                continue;
            };
            specs.push(spec);
            specs.extend(spec.subcommands.iter());
        }
    }
    let mut found = Vec::new();
    for spec in specs {
        let stats = ctx.srv.cmd_stats_of(spec);
        if let Some(h) = stats.and_then(|s| s.latency.as_deref()) {
            found.push((spec.full_name(), h.total(), h.cdf_usec()));
        }
    }
    ctx.out.map(found.len());
    for (name, calls, cdf) in found {
        ctx.out.bulk(name.as_bytes());
        ctx.out.map(2);
        ctx.out.bulk(b"calls");
        ctx.out.integer(calls as i64);
        ctx.out.bulk(b"histogram_usec");
        ctx.out.map(cdf.len());
        for (us, count) in cdf {
            ctx.out.integer(us as i64);
            ctx.out.integer(count as i64);
        }
    }
    Ok(())
}

/// ```text
/// LATENCY HELP
/// ```
fn help(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    super::command::reply_help(
        ctx.out,
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for \
the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    );
    Ok(())
}
