//! ferrodis: a Redis-compatible, durable, replicated in-memory data store.
//!
//! # Layout: the path of a command
//!
//! ```text
//!  TCP bytes ─▶ server::connection ─▶ protocol::decode ─▶ dispatch ─▶ commands::<family> ─▶ keyspace
//!                                                            │                                │
//!            reply ◀── protocol::reply ◀─────────────────────┘      effects ─▶ journal ─▶ (aof, replicas)
//! ```
//!
//! - [`server`]: sockets, tasks, per-client state, the cron. No command knowledge.
//! - [`protocol`]: RESP parsing and reply encoding. Imports nothing else from this crate.
//! - [`dispatch`]: lookup, arity, auth, the call itself, statistics, propagation.
//! - [`commands`]: one file per command family, each opening with its command table.
//! - [`keyspace`]: databases, values, expiry. Pure and synchronous: no I/O, no `async`.
//! - [`journal`]: the single ordered stream of write effects.
//!
//! # Invariants
//! - Every write to the keyspace happens on the one event-loop thread, inside one
//!   `dispatch::call`, so commands are applied in a single total order.
//! - Handlers never touch files or replicas; they record effects, and only the journal orders
//!   them. The journal receives a command's effects before its reply is written, in the order
//!   the keyspace applied them.
//! - Effects are deterministic: relative TTLs become absolute `PXAT`, float results become
//!   `SET`, expirations become `DEL`.
#![deny(unsafe_code)]

pub mod alloc;
pub mod aof;
pub mod commands;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod journal;
pub mod keyspace;
pub mod log;
pub mod protocol;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod snapshot;
pub mod util;
