//! SORT and SORT_RO (Redis `sort.c`). Scaffold: the family owner fills in the table.

use super::CommandSpec;

pub(crate) const COMMANDS: &[CommandSpec] = &[];
