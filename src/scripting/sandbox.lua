-- ferrodis: the scripting sandbox, run once when an interpreter is created (chunk "@ferrodis").
--
-- Stock Lua 5.1 has no read-only tables, so scripts never see the real global table: they run
-- with an environment `env` that reads through a frozen snapshot of the globals, where every
-- reachable table is replaced by a read-only proxy. Writing a global, a field of a library table,
-- or a protected metatable raises Redis's "Attempt to modify a readonly table"; reading a global
-- that does not exist raises "Script attempted to access nonexistent global variable".
--
-- Arguments: `priv`, a private table shared with Rust (Rust stores the per-execution `bridge`
-- function there), `rand`, the Rust lrand48 generator, and `errtext`, which turns an error
-- raised by Rust code into its message.
local priv, rand, errtext = ...

local G = _G
local rawnext, rawtype, rawerror, rawtostring = next, type, error, tostring
local rawsetmt, rawpcall, rawselect, rawunpack = setmetatable, pcall, select, unpack
local rawrawset = rawset
local floor = math.floor
local getmetatable_raw = getmetatable
local mt_of = {}      -- proxy -> its metatable
rawsetmt(mt_of, { __mode = "k" })

local READONLY = "Attempt to modify a readonly table"

local proxy_of = {}   -- real table -> proxy
local target_of = {}  -- proxy -> real table
rawsetmt(proxy_of, { __mode = "k" })
rawsetmt(target_of, { __mode = "k" })

local function missing_global(k)
  rawerror("Script attempted to access nonexistent global variable '" .. rawtostring(k) .. "'", 3)
end

local function deny_write()
  rawerror(READONLY, 2)
end

-- Returns the read-only proxy of `t`, building proxies for every table reachable from it.
local function protect(t)
  local p = proxy_of[t]
  if p then return p end
  p = {}
  proxy_of[t] = p
  target_of[p] = t
  local shadow = {}
  for k, v in rawnext, t do
    if rawtype(v) == "table" then v = protect(v) end
    shadow[k] = v
  end
  local mt_proxy = {}
  rawsetmt(mt_proxy, { __index = {}, __newindex = deny_write, __metatable = false })
  local mt = { __index = shadow, __newindex = deny_write, __metatable = mt_proxy }
  mt_of[p] = mt
  rawsetmt(p, mt)
  return p
end

-- Iteration sees through proxies (and hands out proxies of nested tables).
local function ro_next(t, k)
  local real = target_of[t] or t
  local nk, nv = rawnext(real, k)
  if rawtype(nv) == "table" and proxy_of[nv] then nv = proxy_of[nv] end
  return nk, nv
end

local function ro_pairs(t)
  return ro_next, t, nil
end

local function ro_rawset(t, k, v)
  if target_of[t] then rawerror(READONLY, 0) end
  return rawrawset(t, k, v)
end

local function ro_setmetatable(t, mt)
  if target_of[t] then rawerror(READONLY, 0) end
  return rawsetmt(t, mt)
end

-- redis.pcall-compatible pcall: an error table with an `err` field becomes its message.
local function pack(...)
  return { n = rawselect("#", ...), ... }
end

local function redis_pcall_global(f, ...)
  local r = pack(rawpcall(f, ...))
  if not r[1] then
    if rawtype(r[2]) == "userdata" then r[2] = errtext(r[2]) end
    if rawtype(r[2]) == "table" and rawtype(r[2].err) == "string" then r[2] = r[2].err end
  end
  return rawunpack(r, 1, r.n)
end

local redis = G.redis
redis.replicate_commands = function() return true end

-- Binary chunks would bypass the compiler's checks: refuse them like Redis's Lua does.
local rawloadstring = G.loadstring
G.loadstring = function(s, name)
  if rawtype(s) == "string" and s:sub(1, 1) == "\27" then
    return nil, "binary chunks are not allowed"
  end
  return rawloadstring(s, name)
end

-- Redis's math.random: lrand48-based, the same sequence on every platform.
local INT32_MAX = 2147483647
G.math.random = function(...)
  if priv.bridge == nil then
    rawerror("math.random can only be called inside a script invocation", 2)
  end
  local r = (rand(0) % INT32_MAX) / INT32_MAX
  local n = rawselect("#", ...)
  if n == 0 then
    return r
  elseif n == 1 then
    local u = floor(rawselect(1, ...))
    if not (1 <= u) then rawerror("bad argument #1 to 'random' (interval is empty)", 2) end
    return floor(r * u) + 1
  elseif n == 2 then
    local l, u = ...
    l, u = floor(l), floor(u)
    if not (l <= u) then rawerror("bad argument #2 to 'random' (interval is empty)", 2) end
    return floor(r * (u - l + 1)) + l
  end
  rawerror("wrong number of arguments", 2)
end

G.math.randomseed = function(seed)
  if priv.bridge == nil then
    rawerror("math.randomseed can only be called inside a script invocation", 2)
  end
  rand(1, floor(seed))
end

-- Removed from the sandbox, like Redis: file access and the debug library.
G.loadfile = nil
G.dofile = nil
G.print = nil
G.debug = nil
G.module = nil
G.require = nil

G.pcall = redis_pcall_global
G.pairs = ro_pairs
G.next = ro_next
G.rawset = ro_rawset
G.setmetatable = ro_setmetatable

local env = {}

-- getfenv must not hand out the real global table.
local rawgetfenv = G.getfenv
G.getfenv = function(f)
  if f == nil then f = 1 end
  if rawtype(f) == "number" and f > 0 then f = f + 1 end
  local e = rawgetfenv(f)
  if e == G then return env end
  return e
end

-- The frozen globals, and the environment scripts run in. `lookup` is what the environment
-- reads through: the full globals normally, the library API while FUNCTION LOAD runs a library.
local globals_shadow = {}
for k, v in rawnext, G do
  if rawtype(v) == "table" and k ~= "_G" then v = protect(v) end
  globals_shadow[k] = v
end

-- Why a chain of tables rather than one __index function: a global that exists is then found
-- by the VM itself (env -> lookup table), without a Lua call per access; only a missing one
-- reaches the function that raises the error.
local missing_mt = { __index = function(_, k) missing_global(k) end }
rawsetmt(globals_shadow, missing_mt)
local env_mt_proxy = {}
rawsetmt(env_mt_proxy, { __index = {}, __newindex = deny_write, __metatable = false })
local env_mt = {
  __index = globals_shadow,
  __newindex = deny_write,
  __metatable = env_mt_proxy,
}
rawsetmt(env, env_mt)
proxy_of[G] = env
target_of[env] = globals_shadow
globals_shadow._G = env

-- The string metatable's __index is the real string library: hide it behind its proxy.
local string_mt = getmetatable_raw("")
if string_mt then
  local smt = { __index = proxy_of[G.string] }
  string_mt.__metatable = protect(smt)
end

-- Library API visible while FUNCTION LOAD runs a library's top level.
local function library_api(register_function)
  local api_redis = {
    register_function = register_function,
    log = redis.log,
    LOG_DEBUG = redis.LOG_DEBUG,
    LOG_VERBOSE = redis.LOG_VERBOSE,
    LOG_NOTICE = redis.LOG_NOTICE,
    LOG_WARNING = redis.LOG_WARNING,
    REDIS_VERSION = redis.REDIS_VERSION,
    REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM,
  }
  local api_redis_proxy = protect(api_redis)
  local shadow = mt_of[api_redis_proxy].__index
  mt_of[api_redis_proxy].__index = function(_, k)
    local v = shadow[k]
    if v == nil then missing_global(k) end
    return v
  end
  return { redis = api_redis_proxy }
end

local function set_lookup(which)
  if which and getmetatable_raw(which) == nil then rawsetmt(which, missing_mt) end
  env_mt.__index = which or globals_shadow
end

return {
  env = env,
  globals = globals_shadow,
  library_api = library_api,
  set_lookup = set_lookup,
  -- What scripts read `redis.*` from (EVAL installs its bridge as `call` during a call).
  redis_api = mt_of[proxy_of[redis]].__index,
  -- Runs a library's top level: a plain pcall, like Redis's (no position added to errors).
  run_library = function(f) return rawpcall(f) end,
}
