//! hash commands. Scaffold: the family owner fills in the table.

use super::CommandSpec;

pub(crate) const COMMANDS: &[CommandSpec] = &[];
