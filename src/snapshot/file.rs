//! The snapshot file: header, compressed and checksummed blocks, end marker (see
//! `formats/snapshot.md`).
