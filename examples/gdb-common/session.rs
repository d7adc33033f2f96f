//! The gdb stub both gdb firmwares share (included with `#[path]`): a
//! `gdbstub` target over the interrupted context's saved frame, with GDB's
//! hardware breakpoints and watchpoints handled by `hwbp_gdbstub` on the
//! board's hwbp manager, spoken over the board's serial port.
//!
//! The firmware supplies `crate::machine`: the gdbstub `Arch` (`GdbArch`),
//! the saved `Frame`, register and memory access, the serial port, the
//! adapter (`BPS`), how to resume (`resume`: arm or disarm the single step)
//! and how to make GDB's changes reach every CPU (`sync`).
//!
//! Stops are reported from the debug exception handler (and once from an
//! initial trap): [`stop`] runs the GDB conversation until GDB resumes the
//! target, then returns to the handler, which returns to the program.

use gdbstub::common::Signal;
use gdbstub::conn::{Connection, ConnectionExt};
use gdbstub::stub::state_machine::GdbStubStateMachine;
use gdbstub::stub::{GdbStubBuilder, SingleThreadStopReason};
use gdbstub::target::ext::base::singlethread::{
    SingleThreadBase, SingleThreadResume, SingleThreadResumeOps, SingleThreadSingleStep,
    SingleThreadSingleStepOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{Breakpoints, HwBreakpointOps, HwWatchpointOps};
use gdbstub::target::{Target, TargetError, TargetResult};

use crate::machine::{self, Frame, GdbArch};

/// The serial port GDB talks to.
pub struct Serial;

impl Connection for Serial {
    type Error = ();

    fn write(&mut self, byte: u8) -> Result<(), ()> {
        machine::serial_write(byte);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ()> {
        Ok(())
    }
}

impl ConnectionExt for Serial {
    fn read(&mut self) -> Result<u8, ()> {
        Ok(machine::serial_read())
    }

    fn peek(&mut self) -> Result<Option<u8>, ()> {
        Ok(None)
    }
}

/// The stopped program as GDB sees it: the frame the exception saved.
pub struct Session {
    frame: *mut Frame,
    /// GDB asked for a single step (else a continue).
    step: bool,
}

impl Session {
    fn frame(&mut self) -> Option<&mut Frame> {
        // SAFETY: `frame` is null or the frame of the exception whose
        // handler is running `stop`, which outlives the session value.
        unsafe { self.frame.as_mut() }
    }
}

impl Target for Session {
    type Arch = GdbArch;
    type Error = ();

    fn base_ops(&mut self) -> BaseOps<'_, GdbArch, ()> {
        BaseOps::SingleThread(self)
    }

    fn support_breakpoints(
        &mut self,
    ) -> Option<gdbstub::target::ext::breakpoints::BreakpointsOps<'_, Self>> {
        Some(self)
    }

    // No software breakpoints: GDB's `break` would write BRK/INT3 into the
    // image by itself; only `hbreak` is meant to be used here.
    fn guard_rail_implicit_sw_breakpoints(&self) -> bool {
        true
    }
}

impl SingleThreadBase for Session {
    fn read_registers(
        &mut self,
        regs: &mut <GdbArch as gdbstub::arch::Arch>::Registers,
    ) -> TargetResult<(), Self> {
        let frame = self.frame().ok_or(TargetError::NonFatal)?;
        machine::read_registers(frame, regs);
        Ok(())
    }

    fn write_registers(
        &mut self,
        regs: &<GdbArch as gdbstub::arch::Arch>::Registers,
    ) -> TargetResult<(), Self> {
        let frame = self.frame().ok_or(TargetError::NonFatal)?;
        machine::write_registers(frame, regs);
        Ok(())
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8]) -> TargetResult<usize, Self> {
        if !machine::memory_ok(start, data.len()) {
            return Err(TargetError::Errno(14));
        }
        for (i, b) in data.iter_mut().enumerate() {
            // SAFETY: `memory_ok` checked the range is mapped RAM; watched
            // bytes do not trap here (machine's debug-exception masking).
            *b = unsafe { core::ptr::read_volatile((start as usize + i) as *const u8) };
        }
        Ok(data.len())
    }

    fn write_addrs(&mut self, start: u64, data: &[u8]) -> TargetResult<(), Self> {
        if !machine::memory_ok(start, data.len()) {
            return Err(TargetError::Errno(14));
        }
        for (i, b) in data.iter().enumerate() {
            // SAFETY: as `read_addrs`; GDB writes only what its user asked.
            unsafe { core::ptr::write_volatile((start as usize + i) as *mut u8, *b) };
        }
        Ok(())
    }

    fn support_resume(&mut self) -> Option<SingleThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadResume for Session {
    fn resume(&mut self, _signal: Option<Signal>) -> Result<(), ()> {
        self.step = false;
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<SingleThreadSingleStepOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadSingleStep for Session {
    fn step(&mut self, _signal: Option<Signal>) -> Result<(), ()> {
        self.step = true;
        Ok(())
    }
}

impl Breakpoints for Session {
    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

hwbp_gdbstub::impl_hw_breakpoints!(Session, |t| machine::BPS);

type Machine = GdbStubStateMachine<'static, Session, Serial>;

/// The conversation, kept between stops while the program runs (`None`
/// before the first stop). Touched only by the debugged CPU, from its debug
/// exception handler (debug exceptions masked, so never re-entered) or from
/// `exited` after the program.
static mut MACHINE: Option<Machine> = None;
static mut PACKETS: [u8; 4096] = [0; 4096];

/// Report `reason` to GDB and talk until GDB resumes the program; then arm
/// or disarm the single step in `frame` as GDB asked and bring GDB's
/// breakpoint changes to every CPU. `frame` is the saved state of the
/// program (null after it exited).
pub fn stop(frame: *mut Frame, reason: SingleThreadStopReason<u64>) {
    let mut target = Session { frame, step: false };
    // SAFETY: see MACHINE: one CPU, never re-entered.
    let slot = unsafe { &mut *core::ptr::addr_of_mut!(MACHINE) };
    let mut sm = match slot.take() {
        Some(GdbStubStateMachine::Running(inner)) => match inner.report_stop(&mut target, reason) {
            Ok(sm) => sm,
            Err(e) => board_kit::fatal!("gdb stub: reporting the stop failed: {:?}", e),
        },
        Some(other) => other,
        None => {
            // SAFETY: PACKETS is handed out once, here, for the whole run.
            let buf = unsafe { &mut *core::ptr::addr_of_mut!(PACKETS) };
            let stub = match GdbStubBuilder::new(Serial).with_packet_buffer(buf).build() {
                Ok(stub) => stub,
                Err(e) => board_kit::fatal!("gdb stub: {:?}", e),
            };
            match stub.run_state_machine(&mut target) {
                Ok(sm) => sm,
                Err(e) => board_kit::fatal!("gdb stub: {:?}", e),
            }
        }
    };
    loop {
        sm = match sm {
            GdbStubStateMachine::Idle(mut inner) => {
                let byte = match inner.borrow_conn().read() {
                    Ok(b) => b,
                    Err(()) => board_kit::fatal!("gdb stub: serial read failed"),
                };
                match inner.incoming_data(&mut target, byte) {
                    Ok(sm) => sm,
                    Err(e) => board_kit::fatal!("gdb stub: {:?}", e),
                }
            }
            GdbStubStateMachine::Running(_) => break,
            GdbStubStateMachine::CtrlCInterrupt(inner) => {
                match inner.interrupt_handled(
                    &mut target,
                    Some(SingleThreadStopReason::Signal(Signal::SIGINT)),
                ) {
                    Ok(sm) => sm,
                    Err(e) => board_kit::fatal!("gdb stub: {:?}", e),
                }
            }
            GdbStubStateMachine::Disconnected(_) => {
                crate::println!("gdb stub: GDB disconnected");
                board_kit::checks::finish()
            }
        };
    }
    *slot = Some(sm);
    let step = target.step;
    match target.frame() {
        Some(frame) => machine::resume(frame, step),
        None => board_kit::fatal!("gdb stub: GDB resumed a program that has exited"),
    }
}

/// The program finished with `code`: tell GDB, then leave the emulator.
pub fn exited(code: u8) -> ! {
    let mut target = Session {
        frame: core::ptr::null_mut(),
        step: false,
    };
    // SAFETY: see MACHINE; the program (the only other user) is over.
    let slot = unsafe { &mut *core::ptr::addr_of_mut!(MACHINE) };
    if let Some(GdbStubStateMachine::Running(inner)) = slot.take() {
        if let Err(e) = inner.report_stop(&mut target, SingleThreadStopReason::Exited(code)) {
            board_kit::fatal!("gdb stub: reporting the exit failed: {:?}", e);
        }
    }
    crate::println!("gdb stub: program exited with code {}", code);
    board_kit::checks::finish()
}
