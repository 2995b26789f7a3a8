//! stub

/// Installs the global.
pub fn register(_lua: &mlua::Lua) -> mlua::Result<()> {
    Ok(())
}
