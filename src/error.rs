//! Error types. [`CmdError`] is the one error every command returns; its `Display` text is the
//! exact RESP error line Redis sends (code included), because clients parse these strings.
//! Start-up and storage failures are separate types that never reach a client.

use std::borrow::Cow;

/// A command failure, rendered by the dispatcher as `-<text>\r\n`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdError {
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR index out of range")]
    IndexOutOfRange,
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpire(String),
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    #[error("ERR unknown subcommand '{sub}'. Try {cmd} HELP.")]
    UnknownSubcommand { sub: String, cmd: String },
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    StringTooLong,
    #[error("ERR bit offset is not an integer or out of range")]
    BitOffset,
    #[error("ERR timeout is not an integer or out of range")]
    Timeout,
    /// Any other error; the text includes its code (`ERR ...`, `BUSY ...`).
    #[error("{0}")]
    Msg(Cow<'static, str>),
}

impl CmdError {
    /// An `ERR`-coded error with a custom message.
    pub fn err(msg: impl Into<String>) -> Self {
        CmdError::Msg(Cow::Owned(format!("ERR {}", msg.into())))
    }

    /// An error whose text already carries its code.
    pub fn raw(msg: &'static str) -> Self {
        CmdError::Msg(Cow::Borrowed(msg))
    }

    /// The error code (first word), used for INFO errorstats.
    pub fn code(&self) -> String {
        let s = self.to_string();
        s.split(' ').next().unwrap_or("ERR").to_string()
    }
}

/// What handlers return. The reply, if any, has been written to the output buffer.
pub type CmdResult = Result<(), CmdError>;

/// Failures that stop the server from starting or loading data.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Config(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
