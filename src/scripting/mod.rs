//! Lua scripting: EVAL / EVALSHA / SCRIPT and FUNCTION / FCALL (Redis's `eval.c`,
//! `script_lua.c`, `function_lua.c`).
//!
//! One Lua 5.1 interpreter (mlua, vendored) runs scripts on the event loop thread, so a script
//! is atomic with respect to every other client exactly like any other command.

pub mod libs;
