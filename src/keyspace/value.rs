//! Values stored under keys, with Redis's type names and object encodings.

use std::borrow::Cow;

pub use super::hash::HashValue;
pub use super::list::ListValue;
pub use super::set::SetValue;
pub use super::stream::StreamValue;
pub use super::zset::ZSetValue;
use crate::util::num::parse_i64;

/// Longest string that Redis stores as `embstr` (one allocation with its object header).
pub const EMBSTR_MAX: usize = 44;

/// A value of any Redis type. New types are added as variants; the snapshot format gives each
/// its own fixed type id, separate from this in-memory enum.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(RString),
    List(ListValue),
    Hash(HashValue),
    Set(SetValue),
    ZSet(ZSetValue),
    /// Boxed so that a `Value` stays 24 bytes.
    Stream(Box<StreamValue>),
}

impl Value {
    /// The name TYPE replies with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    /// The name OBJECT ENCODING replies with.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
            Value::List(v) => v.encoding(),
            Value::Hash(v) => v.encoding(),
            Value::Set(v) => v.encoding(),
            Value::ZSet(v) => v.encoding(),
            Value::Stream(v) => v.encoding(),
        }
    }

    /// Heap bytes owned by the value (MEMORY USAGE). Lists report their packed chunks.
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Str(s) => s.heap_size(),
            Value::List(v) => v.heap_size(),
            Value::Hash(v) => v.heap_size(),
            Value::Set(v) => v.heap_size(),
            Value::ZSet(v) => v.heap_size(),
            Value::Stream(v) => v.heap_size(),
        }
    }

    /// Feeds the content into a digest (DEBUG DIGEST, DIGEST-VALUE).
    pub fn digest_into(&self, h: &mut sha1_smol::Sha1) {
        match self {
            Value::Str(s) => s.with_bytes(|b| h.update(b)),
            Value::List(v) => v.digest_into(h),
            Value::Hash(v) => v.digest_into(h),
            Value::Set(v) => v.digest_into(h),
            Value::ZSet(v) => v.digest_into(h),
            Value::Stream(v) => v.digest_into(h),
        }
    }

    pub fn from_bytes(b: &[u8]) -> Value {
        Value::Str(RString::from_bytes(b))
    }
}

/// A string value in one of Redis's three encodings. The encoding is observable through
/// OBJECT ENCODING and follows Redis's rules: canonical integers that fit an i64 are `int`,
/// short strings written whole are `embstr`, strings modified in place (APPEND, SETRANGE,
/// SETBIT) are `raw`.
#[derive(Debug, Clone, PartialEq)]
pub enum RString {
    Int(i64),
    Emb(Box<[u8]>),
    Raw(Vec<u8>),
}

impl RString {
    /// Picks the encoding Redis's `tryObjectEncoding` would pick for a value written whole.
    pub fn from_bytes(b: &[u8]) -> RString {
        if b.len() <= 20 {
            if let Some(n) = parse_i64(b) {
                return RString::Int(n);
            }
        }
        if b.len() <= EMBSTR_MAX {
            RString::Emb(b.into())
        } else {
            RString::Raw(b.to_vec())
        }
    }

    /// Takes ownership of a buffer, converting to `int` / `embstr` where Redis would.
    pub fn from_vec(v: Vec<u8>) -> RString {
        if v.len() <= EMBSTR_MAX {
            RString::from_bytes(&v)
        } else {
            RString::Raw(v)
        }
    }

    /// Stores a computed string as `embstr` / `raw` without trying the `int` encoding (what
    /// Redis's `createStringObject` does, e.g. for INCRBYFLOAT results).
    pub fn from_vec_no_int(v: Vec<u8>) -> RString {
        if v.len() <= EMBSTR_MAX {
            RString::Emb(v.into_boxed_slice())
        } else {
            RString::Raw(v)
        }
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            RString::Int(_) => "int",
            RString::Emb(_) => "embstr",
            RString::Raw(_) => "raw",
        }
    }

    pub fn as_bytes(&self) -> Cow<'_, [u8]> {
        match self {
            RString::Int(n) => Cow::Owned(itoa::Buffer::new().format(*n).as_bytes().to_vec()),
            RString::Emb(b) => Cow::Borrowed(b),
            RString::Raw(v) => Cow::Borrowed(v),
        }
    }

    /// Calls `f` with the bytes, formatting integers on the stack instead of the heap.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            RString::Int(n) => f(itoa::Buffer::new().format(*n).as_bytes()),
            RString::Emb(b) => f(b),
            RString::Raw(v) => f(v),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            RString::Int(n) => itoa::Buffer::new().format(*n).len(),
            RString::Emb(b) => b.len(),
            RString::Raw(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The integer value, if the string holds a canonical i64 (`getLongLongFromObject`).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            RString::Int(n) => Some(*n),
            RString::Emb(b) => parse_i64(b),
            RString::Raw(v) => {
                if v.len() <= 20 {
                    parse_i64(v)
                } else {
                    None
                }
            }
        }
    }

    /// Converts to the `raw` encoding and returns the buffer for in-place modification.
    pub fn make_raw(&mut self) -> &mut Vec<u8> {
        if !matches!(self, RString::Raw(_)) {
            let bytes = self.as_bytes().into_owned();
            *self = RString::Raw(bytes);
        }
        match self {
            RString::Raw(v) => v,
            _ => unreachable!(),
        }
    }

    /// Converts to `raw` and zero-pads the buffer to at least `len` bytes (Redis's
    /// `sdsgrowzero` after `dbUnshareStringValue`). Returns the buffer and whether it grew.
    pub fn grow_raw(&mut self, len: usize) -> (&mut Vec<u8>, bool) {
        let v = self.make_raw();
        let grew = v.len() < len;
        if grew {
            v.resize(len, 0);
        }
        (v, grew)
    }

    /// Appends `tail` in place (the result is `raw`) and returns the new length.
    pub fn append(&mut self, tail: &[u8]) -> usize {
        let v = self.make_raw();
        v.extend_from_slice(tail);
        v.len()
    }

    /// Overwrites bytes from `offset`, zero-padding a gap, and returns the new length. An empty
    /// `data` leaves the value (and its encoding) untouched.
    pub fn set_range(&mut self, offset: usize, data: &[u8]) -> usize {
        if data.is_empty() {
            return self.len();
        }
        let end = offset + data.len();
        let (v, _) = self.grow_raw(end);
        v[offset..end].copy_from_slice(data);
        v.len()
    }

    /// Heap bytes used (for MEMORY USAGE and DEBUG OBJECT).
    pub fn heap_size(&self) -> usize {
        match self {
            RString::Int(_) => 0,
            RString::Emb(b) => b.len(),
            RString::Raw(v) => v.capacity(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_follow_redis_rules() {
        assert_eq!(RString::from_bytes(b"12345").encoding(), "int");
        assert_eq!(RString::from_bytes(b"-1").encoding(), "int");
        assert_eq!(RString::from_bytes(b"012").encoding(), "embstr");
        assert_eq!(RString::from_bytes(&[b'a'; 44]).encoding(), "embstr");
        assert_eq!(RString::from_bytes(&[b'a'; 45]).encoding(), "raw");
        let mut s = RString::from_bytes(b"10");
        s.make_raw().push(b'0');
        assert_eq!(s.encoding(), "raw");
        assert_eq!(s.as_bytes().as_ref(), b"100");
        assert_eq!(s.as_i64(), Some(100));
    }

    #[test]
    fn in_place_edits_make_raw() {
        let mut s = RString::from_bytes(b"12");
        assert_eq!(s.append(b"3"), 3);
        assert_eq!(s.encoding(), "raw");
        assert_eq!(s.as_bytes().as_ref(), b"123");

        let mut s = RString::from_bytes(b"hello");
        assert_eq!(s.set_range(7, b"xy"), 9);
        assert_eq!(s.as_bytes().as_ref(), b"hello\0\0xy");
        assert_eq!(s.encoding(), "raw");

        let mut s = RString::from_bytes(b"7");
        assert_eq!(s.set_range(3, b""), 1);
        assert_eq!(s.encoding(), "int");

        let mut s = RString::from_bytes(b"ab");
        let (v, grew) = s.grow_raw(2);
        assert_eq!((v.len(), grew), (2, false));
        let (v, grew) = s.grow_raw(4);
        assert_eq!((v.as_slice(), grew), (&b"ab\0\0"[..], true));
    }
}

#[cfg(test)]
mod layout {
    /// A main-table slot is a key (24 bytes) plus an entry (24): keep it at 48 bytes.
    #[test]
    fn value_and_entry_sizes() {
        assert_eq!(std::mem::size_of::<super::Value>(), 24);
        assert_eq!(std::mem::size_of::<crate::keyspace::Entry>(), 24);
        assert_eq!(std::mem::size_of::<crate::keyspace::Key>(), 24);
    }
}
