//! Leaving QEMU through Arm semihosting (`-semihosting`).
//!
//! In A32 state the semihosting call is `SVC #0x123456` from a privileged
//! mode; QEMU intercepts it, so no SVC exception is taken. SYS_EXIT (0x18) in
//! AArch32 takes the reason code itself in r1: `ADP_Stopped_ApplicationExit`
//! makes QEMU exit with status 0, any other reason with status 1.

const SYS_EXIT: u32 = 0x18;
const ADP_STOPPED_APPLICATION_EXIT: u32 = 0x2_0026;
const ADP_STOPPED_RUN_TIME_ERROR: u32 = 0x2_0023;

/// Stop QEMU: status 0 if `success`, else 1.
pub fn exit(success: bool) -> ! {
    let reason = if success {
        ADP_STOPPED_APPLICATION_EXIT
    } else {
        ADP_STOPPED_RUN_TIME_ERROR
    };
    // SAFETY: the semihosting SVC is handled by QEMU and ends the process; it
    // reads only r0/r1.
    unsafe {
        core::arch::asm!(
            "svc #0x123456",
            in("r0") SYS_EXIT,
            in("r1") reason,
            options(nostack),
        );
    }
    // Without -semihosting the SVC vector reports a failure; never reached
    // under the runner.
    loop {
        core::hint::spin_loop();
    }
}
