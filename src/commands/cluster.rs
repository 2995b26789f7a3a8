//! Cluster commands of a standalone server (Redis's `cluster.c` with `cluster-enabled no`):
//! CLUSTER and its subcommands, ASKING, READONLY, READWRITE. ferrodis does not implement Redis
//! Cluster and refuses `cluster-enabled yes` at start-up, so every one of them answers exactly
//! what redis-server answers with cluster support disabled. They are real entries all the
//! same: the dispatcher applies their arity and flags first (CLUSTER RESET is refused inside a
//! script, `CLUSTER INFO x` gets the arity error), and clients that probe with CLUSTER INFO or
//! send READONLY to a replica get Redis's reply instead of an unknown command.

use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};

const CHANGE: u32 = ADMIN | STALE | NO_ASYNC_LOADING;
const INSPECT: u32 = ADMIN | STALE;

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::container(
        "cluster",
        -2,
        0,
        &[
            CommandSpec::sub("cluster", "addslots", -3, CHANGE, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "addslotsrange", -4, CHANGE, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "bumpepoch", 2, CHANGE, 0, 0, 0, disabled),
            CommandSpec::sub(
                "cluster",
                "count-failure-reports",
                3,
                INSPECT,
                0,
                0,
                0,
                disabled,
            ),
            CommandSpec::sub("cluster", "countkeysinslot", 3, STALE, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "delslots", -3, CHANGE, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "delslotsrange", -4, CHANGE, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "failover", -2, CHANGE, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "flushslots", 2, CHANGE, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "forget", 3, CHANGE, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "getkeysinslot", 4, STALE, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "help", 2, LOADING | STALE, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "info", 2, STALE, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "keyslot", 3, STALE, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "links", 2, STALE, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "meet", -4, CHANGE, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "myid", 2, STALE, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "nodes", 2, STALE, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "replicas", 3, INSPECT, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "replicate", 3, CHANGE, 0, 0, 0, disabled),
            CommandSpec::sub(
                "cluster",
                "reset",
                -2,
                INSPECT | NOSCRIPT,
                0,
                0,
                0,
                disabled,
            ),
            CommandSpec::sub("cluster", "saveconfig", 2, CHANGE, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "set-config-epoch", 3, CHANGE, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "setslot", -4, CHANGE, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "shards", 2, STALE, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "slaves", 3, INSPECT, 0, 0, 0, disabled),
            CommandSpec::sub("cluster", "slots", 2, STALE, 0, 0, 0, disabled),
        ],
    ),
    CommandSpec::new("asking", 1, FAST, 0, 0, 0, disabled),
    CommandSpec::new("readonly", 1, LOADING | STALE | FAST, 0, 0, 0, disabled),
    CommandSpec::new("readwrite", 1, LOADING | STALE | FAST, 0, 0, 0, disabled),
];

/// What a standalone redis-server answers to every cluster command, CLUSTER HELP included.
///
/// ```text
/// CLUSTER <subcommand> [argument ...]
/// ASKING
/// READONLY
/// READWRITE
/// ```
fn disabled(_ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    Err(CmdError::err("This instance has cluster support disabled"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every subcommand Redis 7.0 has is present, so none answers "unknown subcommand".
    #[test]
    fn all_of_redis_subcommands() {
        let subs = COMMANDS[0].subcommands;
        assert_eq!(subs.len(), 27);
        let mut names: Vec<&str> = subs.iter().map(|s| s.name).collect();
        let sorted = {
            let mut v = names.clone();
            v.sort_unstable();
            v
        };
        assert_eq!(names, sorted, "kept in alphabetical order");
        names.dedup();
        assert_eq!(names.len(), 27);
    }
}
