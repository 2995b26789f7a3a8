//! The list value type. Scaffold: the family owner replaces the representation.

/// A list value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListValue {
    _private: (),
}

impl ListValue {
    /// Name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        unimplemented!("scaffold")
    }

    pub fn len(&self) -> usize {
        0
    }

    pub fn is_empty(&self) -> bool {
        true
    }

    /// Feeds the content into a digest (DEBUG DIGEST). Ordered types hash in order; sets and
    /// hashes must give the same digest whatever their internal order.
    pub fn digest_into(&self, _h: &mut sha1_smol::Sha1) {}

    /// Heap bytes used (MEMORY USAGE).
    pub fn heap_size(&self) -> usize {
        0
    }

    /// Bytes this value would take serialized (DEBUG OBJECT's serializedlength).
    pub fn serialized_len(&self) -> usize {
        0
    }
}
