//! MEMORY: memory introspection (Redis `object.c`, MEMORY command).
//!
//! Only USAGE exists so far; STATS, DOCTOR, MALLOC-STATS and PURGE come with the memory
//! accounting work and answer Redis's unknown-subcommand error until then.

use super::args::{self, is};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::Entry;

pub(crate) const COMMANDS: &[CommandSpec] = &[CommandSpec::container(
    "memory",
    -2,
    0,
    &[CommandSpec::sub("memory", "usage", -3, READONLY, 2, 2, 1, usage)],
)];

/// Bytes a key and its value take: the key, the value's heap, the table slot and the entry.
///
/// ```text
/// MEMORY USAGE key [SAMPLES count]
/// ```
///
/// Like Redis, the key is found without expiring it, and SAMPLES is validated but the size is
/// always exact here: every value type reports its own heap size without sampling.
fn usage(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let mut i = 3;
    while i < argv.len() {
        if is(argv[i], "samples") && i + 1 < argv.len() {
            if args::int(argv[i + 1])? < 0 {
                return Err(CmdError::Syntax);
            }
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let key = argv[2];
    match ctx.ks.dbs[ctx.db].peek(key) {
        None => ctx.out.null(),
        Some(e) => {
            // Table slot: 32-bit hash, boxed key pointer, the entry itself, plus index bytes.
            let slot = 4 + std::mem::size_of::<Box<[u8]>>() + std::mem::size_of::<Entry>() + 3;
            let total = key.len() + e.value.heap_size() + slot;
            ctx.out.integer(total as i64);
        }
    }
    Ok(())
}
