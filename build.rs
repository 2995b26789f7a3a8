//! Compiles the tiny C shim that gives us libc's long double arithmetic and printf formatting,
//! which Redis's replies depend on digit for digit (see `src/util/numfmt.c`).
fn main() {
    println!("cargo:rerun-if-changed=src/util/numfmt.c");
    cc::Build::new().file("src/util/numfmt.c").opt_level(2).compile("ferrodis_numfmt");
}
