//! What the embedder's exception handlers hand to the backend
//! ([`hwbp_core::Arch::Exception`]): [`Aarch64Exception`] (`ESR_EL1`,
//! `FAR_EL1`, `ELR_EL1`) and [`Aarch32Exception`] (the abort registers and
//! `DBGDSCR`). Their decoding lives next to the registers they read
//! ([`crate::esr`], [`crate::aarch32`]).

pub use crate::aarch32::{Aarch32Exception, AbortKind};
pub use crate::esr::Aarch64Exception;
