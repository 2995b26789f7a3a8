//! Small helpers with Redis-exact behaviour: number parsing and printing, glob matching, time.

pub mod clock;
pub mod geohash;
pub mod glob;
pub mod histogram;
pub mod num;
pub mod prefetch;
pub mod time;
