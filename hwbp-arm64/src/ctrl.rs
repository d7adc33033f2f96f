//! The fields `DBGBCR<n>` and `DBGWCR<n>` share at the same positions: `E`
//! (bit 0), `HMC` (bit 13), `SSC` (bits 15:14) and `LBN` (bits 19:16).

/// `E`: the comparator is enabled.
pub(crate) const CTRL_E: u32 = 1 << 0;

/// `HMC`: higher mode control.
pub(crate) const CTRL_HMC: u32 = 1 << 13;

/// Accessors for the shared fields on a `u32` newtype control register.
macro_rules! ctrl_fields {
    ($reg:ident) => {
        impl $reg {
            /// Enabled (`E`).
            pub const fn enabled(self) -> bool {
                self.0 & $crate::ctrl::CTRL_E != 0
            }

            /// The same value with `E` set or cleared.
            #[must_use]
            pub const fn with_enabled(self, e: bool) -> Self {
                if e {
                    $reg(self.0 | $crate::ctrl::CTRL_E)
                } else {
                    $reg(self.0 & !$crate::ctrl::CTRL_E)
                }
            }

            /// Higher mode control (`HMC`).
            pub const fn hmc(self) -> bool {
                self.0 & $crate::ctrl::CTRL_HMC != 0
            }

            /// Security state control (`SSC`).
            pub const fn ssc(self) -> u8 {
                ((self.0 >> 14) & 3) as u8
            }

            /// Linked breakpoint number (`LBN`).
            pub const fn lbn(self) -> u8 {
                ((self.0 >> 16) & 0xF) as u8
            }
        }
    };
}
