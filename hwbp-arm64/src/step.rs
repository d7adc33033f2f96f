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
    /// Re-enable every slot disabled for the step, and disarm the step.
    pub unmask_all: bool,
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
}

impl StepOver {
    /// Nothing pending, nothing masked.
    pub const IDLE: StepOver = StepOver {
        pending: false,
        inst_masked: false,
        data_masked: false,
    };

    /// Pack into a byte.
    pub const fn to_bits(self) -> u8 {
        self.pending as u8 | (self.inst_masked as u8) << 1 | (self.data_masked as u8) << 2
    }

    /// Unpack from a byte (unused bits ignored).
    pub const fn from_bits(b: u8) -> Self {
        StepOver {
            pending: b & 1 != 0,
            inst_masked: b & 2 != 0,
            data_masked: b & 4 != 0,
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

    /// Advance the machine.
    ///
    /// * A breakpoint or watchpoint hit masks its kind (in addition to what is
    ///   already masked: a watchpoint hit while stepping over a breakpoint on
    ///   the same instruction, or a breakpoint hit while a step is pending)
    ///   and arms the step; the embedder resumes with the step bit set.
    /// * A step exception while a step is pending unmasks everything and
    ///   returns normally.
    /// * A step exception with no step pending belongs to someone else (a
    ///   debugger stepping): `Resume::NOT_OURS`.
    pub fn on_event(&mut self, ev: StepEvent) -> Action {
        match ev {
            StepEvent::Breakpoint | StepEvent::Watchpoint => {
                let data = ev == StepEvent::Watchpoint;
                let action = Action {
                    mask_inst: !data,
                    mask_data: data,
                    unmask_all: false,
                    arm_step: true,
                    ours: true,
                    resume: Resume::SINGLE_STEP,
                };
                self.pending = true;
                if data {
                    self.data_masked = true;
                } else {
                    self.inst_masked = true;
                }
                action
            }
            StepEvent::Step if self.pending => {
                *self = StepOver::IDLE;
                Action {
                    mask_inst: false,
                    mask_data: false,
                    unmask_all: true,
                    arm_step: false,
                    ours: true,
                    resume: Resume::RETURN,
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
        let a = s.on_event(StepEvent::Breakpoint);
        assert!(a.mask_inst && !a.mask_data && a.arm_step && a.ours);
        assert_eq!(a.resume, Resume::SINGLE_STEP);
        assert!(s.pending && s.masks(false) && !s.masks(true));
        let b = s.on_event(StepEvent::Step);
        assert!(b.unmask_all && b.ours && !b.arm_step);
        assert_eq!(b.resume, Resume::RETURN);
        assert_eq!(s, StepOver::IDLE);
    }

    #[test]
    fn watchpoint_then_step() {
        let mut s = StepOver::IDLE;
        let a = s.on_event(StepEvent::Watchpoint);
        assert!(a.mask_data && !a.mask_inst && a.arm_step);
        assert!(s.masks(true) && !s.masks(false));
        assert_eq!(s.on_event(StepEvent::Step).resume, Resume::RETURN);
        assert!(!s.masks(true));
    }

    #[test]
    fn foreign_step_is_not_ours() {
        let mut s = StepOver::IDLE;
        let a = s.on_event(StepEvent::Step);
        assert!(!a.ours && !a.unmask_all);
        assert_eq!(a.resume, Resume::NOT_OURS);
        assert_eq!(s, StepOver::IDLE);
    }

    #[test]
    fn hit_while_step_pending_accumulates_masks() {
        // Stepping over a breakpoint, the instruction's access hits a watchpoint.
        let mut s = StepOver::IDLE;
        s.on_event(StepEvent::Breakpoint);
        let a = s.on_event(StepEvent::Watchpoint);
        assert!(a.mask_data && a.arm_step && a.ours);
        assert_eq!(a.resume, Resume::SINGLE_STEP);
        assert!(s.pending && s.masks(false) && s.masks(true));
        // A breakpoint hit while a step is pending (for example one installed
        // meanwhile) keeps the step pending and the masks.
        let b = s.on_event(StepEvent::Breakpoint);
        assert_eq!(b.resume, Resume::SINGLE_STEP);
        assert!(s.pending && s.masks(false) && s.masks(true));
        // One step exception ends it all.
        assert_eq!(s.on_event(StepEvent::Step).resume, Resume::RETURN);
        assert_eq!(s, StepOver::IDLE);
        // A second step exception is someone else's.
        assert_eq!(s.on_event(StepEvent::Step).resume, Resume::NOT_OURS);
    }

    #[test]
    fn packing_round_trips() {
        for b in 0u8..8 {
            assert_eq!(StepOver::from_bits(b).to_bits(), b);
        }
    }
}
