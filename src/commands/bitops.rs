//! Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD (Redis `bitops.c`).
//! Bitmaps are strings; these commands read and modify them bit by bit.

use super::CommandSpec;

pub(crate) const COMMANDS: &[CommandSpec] = &[];
