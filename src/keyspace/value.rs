//! Values stored under keys, with Redis's type names and object encodings.

use std::borrow::Cow;

use crate::util::num::parse_i64;

/// Longest string that Redis stores as `embstr` (one allocation with its object header).
pub const EMBSTR_MAX: usize = 44;

/// A value of any Redis type. New types are added as variants; the snapshot format gives each
/// its own fixed type id, separate from this in-memory enum.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(RString),
}

impl Value {
    /// The name TYPE replies with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
        }
    }

    /// The name OBJECT ENCODING replies with.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
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
}
