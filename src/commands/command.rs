//! COMMAND and its subcommands: introspection of the command table (Redis `server.c`).

use super::CommandSpec;

pub(crate) const COMMANDS: &[CommandSpec] = &[];
