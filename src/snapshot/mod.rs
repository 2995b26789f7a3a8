//! Point-in-time snapshots: the file format (`file`), the encoding of one key's records
//! (`codec`), and how a snapshot is taken while the server keeps serving (`engine`).
//! The format is specified in `formats/snapshot.md`. `rdb` reads Redis RDB files
//! (`formats/redis-rdb.md`); `rdb_write` writes one value as Redis's RDB object (DUMP) and
//! `rdb_file` a whole RDB file, the full-sync payload for peers that are not ferrodis
//! replicas (`formats/replication.md`).

pub mod codec;
pub mod dump;
pub mod engine;
pub mod file;
pub mod rdb;
pub mod rdb_file;
pub mod rdb_write;
pub mod stream_codec;
