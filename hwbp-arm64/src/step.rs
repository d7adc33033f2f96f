//! The per-CPU step-over state machine.
//!
//! Arm breakpoints and watchpoints fire *before* the instruction completes
//! (Arm ARM, breakpoint and watchpoint exceptions), so returning straight to it would hit again forever.
//! Linux (`arch/arm64/kernel/hw_breakpoint.c`) and this crate step over it:
//! disable the slots of the kind that fired, single-step the instruction, and
//! re-enable them when the step exception arrives.
//!
//! [`StepOver`] is the pure state (which kinds are masked, whether a step is
//! pending); [`StepOver::on_event`] says what the backend must do to the
//! registers. It is packed into one byte so the backend can keep it per CPU in
//! an atomic.

use hwbp_core::Resume;

/// The kind of debug event driving the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StepEvent {
    /// A breakpoint slot fired.
    Breakpoint,
    /// A watchpoint slot fired.
    Watchpoint,
    /// A step exception (or the AArch32 mismatch breakpoint) arrived.
    Step,
}

/// What the backend must do for one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Action {
    /// Disable the enabled breakpoint slots (and remember them).
    pub mask_inst: bool,
    /// Disable the enabled watchpoint slots (and remember them).
    pub mask_data: bool,
    /// Re-enable every slot disabled for the step, and disarm the step
    /// unless [`Action::keep_step`] says it belongs to someone else too.
    pub unmask_all: bool,
    /// With [`Action::unmask_all`]: leave the step armed, because a debugger
    /// had armed it before the step-over began and is owed its step
    /// exception (the resume then passes the exception on).
    pub keep_step: bool,
    /// Arm the single step (`MDSCR_EL1.SS`, or the AArch32 mismatch breakpoint).
    pub arm_step: bool,
    /// Whether the event belongs to the breakpoint layer.
    pub ours: bool,
    /// How the embedder continues.
    pub resume: Resume,
}

impl Action {
    const NOT_OURS: Action = Action {
        mask_inst: false,
        mask_data: false,
        unmask_all: false,
        keep_step: false,
        arm_step: false,
        ours: false,
        resume: Resume::NOT_OURS,
    };
}

/// Step-over state of one CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StepOver {
    /// A step is armed and its exception has not arrived yet.
    pub pending: bool,
    /// Breakpoint slots are held disabled.
    pub inst_masked: bool,
    /// Watchpoint slots are held disabled.
    pub data_masked: bool,
    /// Someone else (a debugger single-stepping) had the step armed when the
    /// step-over began: the step exception that ends the step-over is theirs
    /// too, so the step stays armed and the exception is passed on.
    pub foreign_step: bool,
}

impl StepOver {
    /// Nothing pending, nothing masked.
    pub const IDLE: StepOver = StepOver {
        pending: false,
        inst_masked: false,
        data_masked: false,
        foreign_step: false,
    };

    /// Pack into a byte.
    pub const fn to_bits(self) -> u8 {
        self.pending as u8
            | (self.inst_masked as u8) << 1
            | (self.data_masked as u8) << 2
            | (self.foreign_step as u8) << 3
    }

    /// Unpack from a byte (unused bits ignored).
    pub const fn from_bits(b: u8) -> Self {
        StepOver {
            pending: b & 1 != 0,
            inst_masked: b & 2 != 0,
            data_masked: b & 4 != 0,
            foreign_step: b & 8 != 0,
        }
    }

    /// Whether slots of the instruction (`data == false`) or data pool are held
    /// disabled: [`Arch::install`](hwbp_core::Arch::install) must then write
    /// them with `E` clear and remember them for re-enabling.
    pub const fn masks(self, data: bool) -> bool {
        if data {
            self.data_masked
        } else {
            self.inst_masked
        }
    }

    /// Advance the machine; `step_armed` says whether the step was already
    /// armed when the event arrived (`MDSCR_EL1.SS`, read by the backend
    /// before it touches it; only looked at for hits).
    ///
    /// * A breakpoint or watchpoint hit masks its kind (in addition to what is
    ///   already masked: a watchpoint hit while stepping over a breakpoint on
    ///   the same instruction, or a breakpoint hit while a step is pending)
    ///   and arms the step; the embedder resumes with the step bit set.
    /// * A hit that arrives with the step already armed while no step-over is
    ///   pending found someone else's step (a debugger's `stepi` whose
    ///   instruction hit): the step-over rides on it, and remembers it.
    /// * A step exception while a step is pending unmasks everything and
    ///   returns normally; if the step was someone else's too, the step stays
    ///   armed and the exception is passed on (`RETURN.and_pass_on()`), so
    ///   the debugger gets the step exception it asked for. Linux does the
    ///   same (`ARM_KERNEL_STEP_SUSPEND` in `arch/arm64/kernel/hw_breakpoint.c`).
    /// * A step exception with no step pending belongs to someone else (a
    ///   debugger stepping): `Resume::NOT_OURS`.
    pub fn on_event(&mut self, ev: StepEvent, step_armed: bool) -> Action {
        match ev {
            StepEvent::Breakpoint | StepEvent::Watchpoint => {
                let data = ev == StepEvent::Watchpoint;
                let action = Action {
                    mask_inst: !data,
                    mask_data: data,
                    unmask_all: false,
                    keep_step: false,
                    arm_step: true,
                    ours: true,
                    resume: Resume::SINGLE_STEP,
                };
                if !self.pending && step_armed {
                    self.foreign_step = true;
                }
                self.pending = true;
                if data {
                    self.data_masked = true;
                } else {
                    self.inst_masked = true;
                }
                action
            }
            StepEvent::Step if self.pending => {
                let foreign = self.foreign_step;
                *self = StepOver::IDLE;
                Action {
                    mask_inst: false,
                    mask_data: false,
                    unmask_all: true,
                    keep_step: foreign,
                    arm_step: false,
                    ours: true,
                    resume: if foreign {
                        Resume::RETURN.and_pass_on()
                    } else {
                        Resume::RETURN
                    },
                }
            }
            StepEvent::Step => Action::NOT_OURS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breakpoint_then_step() {
        let mut s = StepOver::IDLE;
        let a = s.on_event(StepEvent::Breakpoint, false);
        assert!(a.mask_inst && !a.mask_data && a.arm_step && a.ours);
        assert_eq!(a.resume, Resume::SINGLE_STEP);
        assert!(s.pending && s.masks(false) && !s.masks(true));
        let b = s.on_event(StepEvent::Step, false);
        assert!(b.unmask_all && b.ours && !b.arm_step);
        assert_eq!(b.resume, Resume::RETURN);
        assert_eq!(s, StepOver::IDLE);
    }

    #[test]
    fn watchpoint_then_step() {
        let mut s = StepOver::IDLE;
        let a = s.on_event(StepEvent::Watchpoint, false);
        assert!(a.mask_data && !a.mask_inst && a.arm_step);
        assert!(s.masks(true) && !s.masks(false));
        assert_eq!(s.on_event(StepEvent::Step, false).resume, Resume::RETURN);
        assert!(!s.masks(true));
    }

    #[test]
    fn foreign_step_is_not_ours() {
        let mut s = StepOver::IDLE;
        let a = s.on_event(StepEvent::Step, false);
        assert!(!a.ours && !a.unmask_all);
        assert_eq!(a.resume, Resume::NOT_OURS);
        assert_eq!(s, StepOver::IDLE);
    }

    #[test]
    fn hit_while_step_pending_accumulates_masks() {
        // Stepping over a breakpoint, the instruction's access hits a watchpoint.
        let mut s = StepOver::IDLE;
        s.on_event(StepEvent::Breakpoint, false);
        let a = s.on_event(StepEvent::Watchpoint, false);
        assert!(a.mask_data && a.arm_step && a.ours);
        assert_eq!(a.resume, Resume::SINGLE_STEP);
        assert!(s.pending && s.masks(false) && s.masks(true));
        // A breakpoint hit while a step is pending (for example one installed
        // meanwhile) keeps the step pending and the masks.
        let b = s.on_event(StepEvent::Breakpoint, false);
        assert_eq!(b.resume, Resume::SINGLE_STEP);
        assert!(s.pending && s.masks(false) && s.masks(true));
        // One step exception ends it all.
        assert_eq!(s.on_event(StepEvent::Step, false).resume, Resume::RETURN);
        assert_eq!(s, StepOver::IDLE);
        // A second step exception is someone else's.
        assert_eq!(s.on_event(StepEvent::Step, false).resume, Resume::NOT_OURS);
    }

    #[test]
    fn a_debuggers_step_survives_a_step_over() {
        // The debugger armed the step; the stepped instruction hits a
        // watchpoint. The step-over rides on the step, and the step exception
        // that ends it is the debugger's too: kept armed and passed on.
        let mut s = StepOver::IDLE;
        let a = s.on_event(StepEvent::Watchpoint, true);
        assert_eq!(a.resume, Resume::SINGLE_STEP);
        assert!(s.foreign_step && s.pending);
        let b = s.on_event(StepEvent::Step, true);
        assert!(b.unmask_all && b.keep_step && b.ours);
        assert_eq!(b.resume, Resume::RETURN.and_pass_on());
        assert_eq!(s, StepOver::IDLE);
        // The step armed by our own step-over does not count as foreign.
        let mut s = StepOver::IDLE;
        s.on_event(StepEvent::Breakpoint, false);
        s.on_event(StepEvent::Watchpoint, true);
        assert!(!s.foreign_step);
        let c = s.on_event(StepEvent::Step, true);
        assert!(!c.keep_step);
        assert_eq!(c.resume, Resume::RETURN);
    }

    #[test]
    fn packing_round_trips() {
        for b in 0u8..16 {
            assert_eq!(StepOver::from_bits(b).to_bits(), b);
        }
    }
}
