//! Encoding and decoding of the records inside a snapshot block (see `formats/snapshot.md`).
