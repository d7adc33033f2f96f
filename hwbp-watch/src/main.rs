//! `hwbp-watch`: who touched it. Watches a variable (or function) of a running
//! Linux process with a hardware breakpoint sampled by perf, prints who hit it
//! as it happens, and on exit a report grouped by call chain with counts and
//! percentages, in the spirit of `perf report -g`. See `hwbp-watch --help`
//! and the crate README.

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod args;
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod json;
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod watch;

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn main() {
    std::process::exit(watch::main(std::env::args().skip(1).collect()));
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn main() {
    eprintln!("hwbp-watch: needs Linux on x86_64 or aarch64 (perf hardware breakpoints)");
    std::process::exit(1);
}
