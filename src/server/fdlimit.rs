//! The open-file limit and `maxclients` (Redis's `adjustOpenFilesLimit`).
//!
//! Every client costs file descriptors. If the process's limit is below what `maxclients`
//! needs, `accept` fails with EMFILE once the limit is reached: the connection then waits in
//! the listen queue, and its client sees a connect that hangs instead of Redis's
//! `-ERR max number of clients reached`. So, like Redis, the server raises its soft limit to
//! what `maxclients` needs and, when the hard limit does not allow that, lowers `maxclients` to
//! fit (at start-up) or refuses the value (CONFIG SET).

/// Descriptors kept for everything but clients: listeners, log, append-only and snapshot
/// files, replication links (Redis's `CONFIG_MIN_RESERVED_FDS`).
const RESERVED_FDS: u64 = 32;
/// Descriptors per client: its socket. (A busy script duplicates the sockets of the clients it
/// answers while it runs; one that finds no descriptor to spare leaves its client waiting.)
const FDS_PER_CLIENT: u64 = 1;

/// What [`adjust`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The limit already allowed `maxclients`, or was raised to allow it.
    Fits,
    /// The limit could only be raised to `limit`, which allows `maxclients` clients.
    Reduced { maxclients: i64, limit: u64, wanted: u64, error: String },
    /// The limit leaves nothing for clients.
    TooLow { limit: u64, wanted: u64 },
}

/// Descriptors `maxclients` clients need.
fn needed(maxclients: i64) -> u64 {
    (maxclients.max(0) as u64).saturating_mul(FDS_PER_CLIENT).saturating_add(RESERVED_FDS)
}

/// Clients a limit of `limit` descriptors allows.
fn clients_for(limit: u64) -> i64 {
    (limit.saturating_sub(RESERVED_FDS) / FDS_PER_CLIENT) as i64
}

/// Raises the soft open-file limit to what `maxclients` needs, as far as the system allows:
/// to `wanted`, or else to the hard limit. (Redis steps down from `wanted` by 16 until the
/// system accepts; asking for the hard limit directly gives the same or a higher limit.)
pub fn adjust(maxclients: i64) -> Outcome {
    let wanted = needed(maxclients);
    let Some((cur, hard)) = get() else {
        // Redis assumes 1024 when it cannot read the limit.
        let limit = 1024;
        return if wanted <= limit {
            Outcome::Fits
        } else {
            let error = last_os_error();
            Outcome::Reduced { maxclients: clients_for(limit), limit, wanted, error }
        };
    };
    if cur >= wanted {
        return Outcome::Fits;
    }
    if set(wanted) {
        tracing::info!(
            "Increased maximum number of open files to {wanted} (it was originally set to {cur})."
        );
        return Outcome::Fits;
    }
    let error = last_os_error();
    let limit = if hard > cur && set(hard) { hard } else { cur };
    if clients_for(limit) == 0 {
        Outcome::TooLow { limit: cur, wanted }
    } else {
        Outcome::Reduced { maxclients: clients_for(limit), limit, wanted, error }
    }
}

/// The error of the last failed system call in C's words (`strerror`), as Redis logs it.
fn last_os_error() -> String {
    let e = std::io::Error::last_os_error().to_string();
    e.split(" (os error").next().unwrap_or(&e).to_string()
}

/// Logs what Redis logs when the limit falls short of `maxclients`.
fn log_reduced(maxclients: i64, fit: i64, limit: u64, wanted: u64, error: &str) {
    tracing::warn!(
        "You requested maxclients of {maxclients} requiring at least {wanted} max file descriptors."
    );
    tracing::warn!("Server can't set maximum open files to {wanted} because of OS error: {error}.");
    tracing::warn!(
        "Current maximum open files is {limit}. maxclients has been reduced to {fit} to \
         compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'."
    );
}

/// At start-up: adjusts the limit and returns the `maxclients` to run with, logging what
/// Redis logs; `Err` when the server cannot start.
pub fn at_startup(maxclients: i64) -> Result<i64, String> {
    match adjust(maxclients) {
        Outcome::Fits => Ok(maxclients),
        Outcome::Reduced { maxclients: fit, limit, wanted, error } => {
            log_reduced(maxclients, fit, limit, wanted, &error);
            Ok(fit)
        }
        Outcome::TooLow { limit, wanted } => Err(format!(
            "Your current 'ulimit -n' of {limit} is not enough for the server to start. Please \
             increase your open file limit to at least {wanted}. Exiting."
        )),
    }
}

/// For CONFIG SET maxclients: `Err` with Redis's reason when the system cannot give the
/// descriptors `maxclients` needs.
pub fn check_config(maxclients: i64) -> Result<(), String> {
    match adjust(maxclients) {
        Outcome::Fits => Ok(()),
        Outcome::Reduced { maxclients: fit, limit, wanted, error } => {
            log_reduced(maxclients, fit, limit, wanted, &error);
            tracing::warn!(
                "Failed applying new configuration. Possibly related to new maxclients setting. \
                 Restoring previous settings."
            );
            Err(format!(
                "The operating system is not able to handle the specified number of clients, try with {fit}"
            ))
        }
        Outcome::TooLow { .. } => Err(
            "The operating system is not able to handle the specified number of clients, try with 0"
                .into(),
        ),
    }
}

fn get() -> Option<(u64, u64)> {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct we own for the duration of the call.
    #[allow(unsafe_code)]
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } == 0;
    ok.then_some((l.rlim_cur as u64, l.rlim_max as u64))
}

/// Sets the soft limit to `n`, and the hard limit too where `n` is above it (which only a
/// privileged process may do). Redis sets both to `n`, lowering the hard limit; keeping it
/// lets a later CONFIG SET maxclients raise the soft limit again.
fn set(n: u64) -> bool {
    let max = get().map_or(n, |(_, max)| max.max(n));
    let l = libc::rlimit { rlim_cur: n as libc::rlim_t, rlim_max: max as libc::rlim_t };
    // SAFETY: setrlimit only reads the struct we own for the duration of the call.
    #[allow(unsafe_code)]
    let ok = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) } == 0;
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_a_descriptor_a_client_plus_the_reserve() {
        assert_eq!(needed(10000), 10032);
        assert_eq!(needed(0), 32);
        assert_eq!(clients_for(10032), 10000);
        assert_eq!(clients_for(256), 224);
        assert_eq!(clients_for(10), 0);
    }

    #[test]
    fn a_limit_that_already_fits_is_left_alone() {
        let (cur, _) = get().unwrap();
        assert_eq!(adjust(clients_for(cur)), Outcome::Fits);
        assert_eq!(get().unwrap().0, cur);
    }
}
