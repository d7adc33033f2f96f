//! Starting CPU 1 with PSCI CPU_ON, through the conduit the device tree names.
//!
//! With `-kernel` and no EL3 firmware, QEMU's virt board implements PSCI
//! itself; its device tree says `/psci { method = "hvc"; cpu_on = <0xc4000003>;
//! compatible = "arm,psci-1.0"…; }` (seen with `-M virt,dumpdtb=virt.dtb`).
//! QEMU does not load that tree for an ELF image linked at 0x4008_0000 (the
//! tree is 1 MiB and only 512 KiB are free below the image), so the firmware
//! checks the conduit by calling PSCI_VERSION through it first.

/// PSCI_VERSION, SMC32 calling convention.
pub const PSCI_VERSION: u32 = 0x8400_0000;
/// PSCI 0.2 CPU_ON, SMC64 calling convention.
pub const CPU_ON_64: u32 = 0xc400_0003;

/// How PSCI calls reach the firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    /// `hvc #0` (QEMU's built-in PSCI when it boots the kernel at EL1).
    Hvc,
    /// `smc #0` (EL3 firmware).
    #[allow(dead_code)]
    Smc,
}

/// The conduit of QEMU's virt board when it boots a kernel at EL1 without EL3
/// firmware (`-M virt` with neither `secure=on` nor `virtualization=on`).
pub const QEMU_VIRT_EL1: Conduit = Conduit::Hvc;

/// PSCI_VERSION: (major << 16) | minor.
pub fn version(conduit: Conduit) -> u32 {
    call(conduit, PSCI_VERSION, 0, 0, 0) as u32
}

/// PSCI CPU_ON: start the CPU with affinity `mpidr` at physical address
/// `entry` (MMU off, EL1), with `context` in x0. Returns the PSCI status
/// (0 = success).
pub fn cpu_on(conduit: Conduit, mpidr: u64, entry: u64, context: u64) -> i64 {
    call(conduit, CPU_ON_64, mpidr, entry, context) as i64
}

fn call(conduit: Conduit, function: u32, mpidr: u64, entry: u64, context: u64) -> u64 {
    let mut x0 = u64::from(function);
    // SAFETY: a PSCI call through the conduit the device tree names; CPU_ON
    // only affects the (powered-off) target CPU. Registers x0-x3 carry the
    // arguments, x0 the result; SMCCC allows x0-x17 to be clobbered.
    unsafe {
        match conduit {
            Conduit::Hvc => core::arch::asm!(
                "hvc #0",
                inout("x0") x0, inout("x1") mpidr => _, inout("x2") entry => _, inout("x3") context => _,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
                out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _,
                out("x15") _, out("x16") _, out("x17") _,
                options(nostack)
            ),
            Conduit::Smc => core::arch::asm!(
                "smc #0",
                inout("x0") x0, inout("x1") mpidr => _, inout("x2") entry => _, inout("x3") context => _,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
                out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _,
                out("x15") _, out("x16") _, out("x17") _,
                options(nostack)
            ),
        }
    }
    x0
}
