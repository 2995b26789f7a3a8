//! The libraries Redis preloads into its Lua interpreter besides Lua's own (`bit`, `cjson`,
//! `cmsgpack`, `struct`), written in Rust against the behaviour of Redis 7.0's bundled C ones.
