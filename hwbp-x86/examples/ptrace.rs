//! hwbp-x86 driving the real CPU's debug registers from Linux user space.
//!
//! Forks a traced child per scenario, installs the DR0–DR3/DR7 image that
//! hwbp-x86 computes through `PTRACE_POKEUSER` (at `offsetof(struct user,
//! u_debugreg)` = 848), lets the child run into it, and prints the SIGTRAP,
//! the saved RIP and DR6 (read back with `PTRACE_PEEKUSER`) as the crate
//! decodes them. Exits 1 if anything is refused or does not fire.
//!
//! ```text
//! cargo run -p hwbp-x86 --example ptrace
//! ```

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[path = "../tests/support/ptrace.rs"]
mod support;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn main() {
    use hwbp_core::{Access, BreakpointAttr};
    use hwbp_x86::Dr6;
    use support::{addr_a, addr_b, addr_c, addr_probe, run, Action};

    let scenarios: [(&str, Action, Vec<BreakpointAttr>); 5] = [
        (
            "write watch, 8 bytes",
            Action::Write,
            vec![BreakpointAttr::watch(addr_a(), 8, Access::WRITE)],
        ),
        (
            "execute breakpoint",
            Action::Call,
            vec![BreakpointAttr::exec(addr_probe())],
        ),
        (
            "read-write watch, read",
            Action::Read,
            vec![BreakpointAttr::watch(addr_b(), 8, Access::RW)],
        ),
        (
            "two slots, one address",
            Action::Write,
            vec![
                BreakpointAttr::watch(addr_a(), 8, Access::WRITE),
                BreakpointAttr::watch(addr_a(), 4, Access::RW),
            ],
        ),
        (
            "6-byte unaligned region",
            Action::WriteByte,
            vec![BreakpointAttr::watch(addr_c() + 9, 6, Access::WRITE)],
        ),
    ];
    let mut failed = false;
    for (name, action, attrs) in scenarios {
        match run(action, &attrs) {
            Ok(h) => {
                let ok = h.stop.signal == libc::SIGTRAP && h.stop.si_code == libc::TRAP_HWBKPT;
                failed |= !ok;
                println!(
                    "{name:26} signal {} si_code {} rip {:#x} dr7 {:#x} dr6 {:#x} = {:?} -> {:?}, {:?}, addr {:#x}{}",
                    h.stop.signal,
                    h.stop.si_code,
                    h.stop.rip,
                    h.dr7,
                    h.dr6,
                    Dr6::from_raw(h.dr6),
                    h.decoded.fired,
                    h.decoded.resume,
                    h.decoded.addr,
                    if ok { "" } else { "  <-- not a hardware breakpoint trap" }
                );
            }
            Err(e) => {
                failed = true;
                println!("{name:26} FAILED: {e}");
            }
        }
    }
    std::process::exit(i32::from(failed));
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn main() {
    eprintln!("this example needs Linux on x86_64");
    std::process::exit(1);
}
