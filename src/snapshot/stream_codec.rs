//! The stream record (type 14, format 1.2; `formats/snapshot.md`): the nodes verbatim
//! (deleted entries included, so that node boundaries, and so approximate trimming, survive a
//! reload), the stream's metadata, and its consumer groups with their pending entries.

use std::collections::{BTreeMap, BTreeSet};

use super::codec::{put_varint, Cur, DecodeError};
use crate::keyspace::stream::{Consumer, Group, Item, Nack, StreamId, StreamValue};

type DResult<T> = Result<T, DecodeError>;

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_id(out: &mut Vec<u8>, id: StreamId) {
    put_varint(out, id.ms);
    put_varint(out, id.seq);
}

/// Appends the body of a stream record (without its type byte and length prefix).
pub fn encode_stream(out: &mut Vec<u8>, s: &StreamValue) {
    put_varint(out, s.node_count() as u64);
    for node in s.nodes() {
        put_varint(out, node.items().len() as u64);
        for it in node.items() {
            out.push(u8::from(it.deleted));
            put_id(out, it.id);
            put_varint(out, (it.fields.len() / 2) as u64);
            for f in &it.fields {
                put_bytes(out, f);
            }
        }
    }
    put_id(out, s.last_id);
    put_varint(out, s.entries_added);
    put_id(out, s.max_deleted_id);
    put_varint(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        put_bytes(out, name);
        put_id(out, g.last_id);
        // entries_read is -1 (unknown) or a count up to i64::MAX (XGROUP ... ENTRIESREAD takes
        // any): stored plus one, as an unsigned number.
        put_varint(out, (g.entries_read as u64).wrapping_add(1));
        put_varint(out, g.pel.len() as u64);
        for (id, n) in &g.pel {
            put_id(out, *id);
            put_varint(out, n.delivery_time);
            put_varint(out, n.delivery_count);
        }
        put_varint(out, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            put_bytes(out, cname);
            put_varint(out, c.seen_time);
            put_varint(out, c.pel.len() as u64);
            for id in &c.pel {
                put_id(out, *id);
            }
        }
    }
}

fn id(c: &mut Cur<'_>, what: &str) -> DResult<StreamId> {
    Ok(StreamId::new(c.varint(what)?, c.varint(what)?))
}

/// A count that cannot exceed the bytes left (each counted thing takes at least one byte).
fn count(c: &mut Cur<'_>, what: &str) -> DResult<usize> {
    let n = c.varint(what)?;
    if n > c.left() as u64 {
        return c.err(format!("bad {what} {n}"));
    }
    Ok(n as usize)
}

fn malformed<T>(c: &Cur<'_>, why: &str) -> DResult<T> {
    c.err(format!("malformed stream ({why})"))
}

/// Decodes a stream record body, which must be consumed exactly.
pub(crate) fn decode_stream(c: &mut Cur<'_>) -> DResult<StreamValue> {
    let mut s = StreamValue::new();
    let nodes = count(c, "node count")?;
    for _ in 0..nodes {
        let n = count(c, "entry count")?;
        let mut items = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let deleted = match c.u8("entry flags")? {
                0 => false,
                1 => true,
                _ => return malformed(c, "entry flags"),
            };
            let eid = id(c, "entry id")?;
            let pairs = count(c, "field count")?;
            let mut fields = Vec::with_capacity(pairs.min(512) * 2);
            for _ in 0..pairs * 2 {
                fields.push(Box::from(c.bytes("field")?));
            }
            items.push(Item {
                id: eid,
                deleted,
                fields,
            });
        }
        if !s.load_node(items) {
            return malformed(c, "node");
        }
    }
    s.last_id = id(c, "last id")?;
    s.entries_added = c.varint("entries added")?;
    s.max_deleted_id = id(c, "max deleted id")?;
    if !s.finish_load() || s.entries_added < s.len() {
        return malformed(c, "metadata");
    }
    let groups = count(c, "group count")?;
    for _ in 0..groups {
        let name: Box<[u8]> = c.bytes("group name")?.into();
        let g = decode_group(c)?;
        if s.groups.insert(name, g).is_some() {
            return malformed(c, "duplicate group");
        }
    }
    if !c.at_end() {
        return c.err(format!("{} trailing bytes in value", c.left()));
    }
    Ok(s)
}

fn decode_group(c: &mut Cur<'_>) -> DResult<Group> {
    let last_id = id(c, "group last id")?;
    let read = c.varint("entries read")?;
    // Stored plus one, as an unsigned number: 0 is -1 (unknown). A count that went past
    // i64::MAX wraps as Redis's does (and as an RDB keeps it).
    let entries_read = read.wrapping_sub(1) as i64;
    let npel = count(c, "pending count")?;
    let mut pel = BTreeMap::new();
    for _ in 0..npel {
        let pid = id(c, "pending id")?;
        let delivery_time = c.varint("delivery time")?;
        let delivery_count = c.varint("delivery count")?;
        let nack = Nack {
            consumer: Box::default(),
            delivery_time,
            delivery_count,
        };
        if pel.insert(pid, nack).is_some() {
            return malformed(c, "duplicate pending entry");
        }
    }
    let ncons = count(c, "consumer count")?;
    let mut consumers = BTreeMap::new();
    let mut assigned = BTreeSet::new();
    for _ in 0..ncons {
        let cname: Box<[u8]> = c.bytes("consumer name")?.into();
        let seen_time = c.varint("seen time")?;
        let n = count(c, "consumer pending count")?;
        let mut ids = BTreeSet::new();
        for _ in 0..n {
            let pid = id(c, "consumer pending id")?;
            match pel.get_mut(&pid) {
                Some(nack) if assigned.insert(pid) => {
                    nack.consumer = cname.clone();
                    ids.insert(pid);
                }
                _ => return malformed(c, "consumer pending entry"),
            }
        }
        if consumers
            .insert(
                cname,
                Consumer {
                    seen_time,
                    pel: ids,
                },
            )
            .is_some()
        {
            return malformed(c, "duplicate consumer");
        }
    }
    if assigned.len() != pel.len() {
        return malformed(c, "pending entry without consumer");
    }
    Ok(Group {
        last_id,
        entries_read,
        pel,
        consumers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::stream::{NodeLimits, ENTRIES_READ_INVALID};

    fn sample() -> StreamValue {
        let mut s = StreamValue::new();
        let lim = NodeLimits {
            max_bytes: 4096,
            max_entries: 2,
        };
        for ms in 1..=5 {
            let f = vec![
                Box::from(&b"f"[..]),
                ms.to_string().into_bytes().into_boxed_slice(),
            ];
            s.append(Some((StreamId::new(ms, 0), true)), 0, f, lim)
                .unwrap();
        }
        s.delete(StreamId::new(2, 0));
        let mut g = Group::new(StreamId::new(4, 0), ENTRIES_READ_INVALID);
        g.create_consumer(b"", 7);
        g.create_consumer(b"c", 8);
        g.assign(StreamId::new(3, 0), b"", 9, 1);
        g.assign(StreamId::new(4, 0), b"c", 10, 3);
        s.groups.insert(Box::from(&b"g"[..]), g);
        s
    }

    #[test]
    fn round_trips_nodes_tombstones_and_groups() {
        let s = sample();
        let mut out = Vec::new();
        encode_stream(&mut out, &s);
        let back = decode_stream(&mut Cur::new(&out)).unwrap();
        assert_eq!(back, s);
        // Every entries-read counter: unknown, counts up to i64::MAX (XGROUP ... ENTRIESREAD
        // takes any) and one that wrapped past it (as Redis's does).
        for read in [ENTRIES_READ_INVALID, 0, 7, i64::MAX, i64::MIN] {
            let mut s = sample();
            s.groups.values_mut().for_each(|g| g.entries_read = read);
            let mut out = Vec::new();
            encode_stream(&mut out, &s);
            assert_eq!(decode_stream(&mut Cur::new(&out)).unwrap(), s);
        }
        assert_eq!(back.node_count(), 3);
    }

    #[test]
    fn damaged_records_are_refused_without_panicking() {
        let mut out = Vec::new();
        encode_stream(&mut out, &sample());
        for i in 0..out.len() {
            for flip in [1u8, 0x80, 0xff] {
                let mut bad = out.clone();
                bad[i] ^= flip;
                let _ = decode_stream(&mut Cur::new(&bad));
            }
            assert!(
                decode_stream(&mut Cur::new(&out[..i])).is_err(),
                "truncated at {i}"
            );
        }
    }
}
