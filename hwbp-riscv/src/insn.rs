//! Just enough of an instruction decoder to handle a trigger that fired
//! before an instruction: which data address a load, store or AMO is about
//! to access (QEMU leaves `mtval` 0, and the spec allows it), and which
//! instruction runs next (where the step-over trigger goes).
//!
//! Covers RV32/RV64 I, A (LR/SC/AMOs), the F/D/Q/Zfh loads and stores, and
//! C (compressed) forms of all of these, branches and jumps; `ebreak` and
//! `c.ebreak` are recognised so a software breakpoint is never taken for a
//! trigger. Vector and cache-block (`cbo.*`) accesses are not decoded.

use crate::tdata::Xlen;
use hwbp_core::Access;

/// What an instruction does, as far as this crate cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Kind {
    /// A memory access of `size` bytes at `x[base] + offset`.
    Memory {
        /// Base register.
        base: u8,
        /// Sign-extended offset.
        offset: i64,
        /// Bytes accessed.
        size: u8,
        /// Load, store, or both (AMOs).
        access: Access,
        /// `lr.w`/`lr.d` (an LR/SC sequence starts here).
        lr: bool,
    },
    /// A conditional branch to `pc + offset`.
    Branch {
        /// First operand.
        rs1: u8,
        /// Second operand (0 for `c.beqz`/`c.bnez`).
        rs2: u8,
        /// The condition (`funct3` of the 32-bit form).
        cond: u8,
        /// Offset from `pc` if taken.
        offset: i64,
    },
    /// `jal`/`c.j`/`c.jal`: to `pc + offset`.
    Jump {
        /// Offset from `pc`.
        offset: i64,
    },
    /// `jalr`/`c.jr`/`c.jalr`: to `(x[rs1] + offset) & !1`.
    JumpRegister {
        /// Base register.
        rs1: u8,
        /// Offset.
        offset: i64,
    },
    /// `ebreak`/`c.ebreak`: a software breakpoint, not a trigger.
    Ebreak,
    /// `mret`/`sret`/`dret`: the next instruction is not known from here.
    Return,
    /// Anything else: the next instruction follows it.
    Other,
}

/// A decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Insn {
    /// Length in bytes: 2 (compressed) or 4.
    pub len: u8,
    /// What it does.
    pub kind: Kind,
}

/// A data access an instruction makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DataAccess {
    /// Lowest byte accessed.
    pub addr: u64,
    /// Bytes accessed.
    pub size: u64,
    /// Load, store or both.
    pub access: Access,
}

fn field(bits: u32, hi: u32, lo: u32) -> u32 {
    (bits >> lo) & ((1 << (hi - lo + 1)) - 1)
}

fn sext(v: u32, width: u32) -> i64 {
    let shift = 64 - width;
    (i64::from(v) << shift) >> shift
}

impl Insn {
    /// Decode the instruction whose first 16-bit parcel is the low half of
    /// `bits` (the second parcel, for a 32-bit instruction, is the high half).
    /// Instructions longer than 32 bits decode as [`Kind::Other`] with length
    /// 4 (no standard extension defines one).
    pub fn decode(bits: u32, xlen: Xlen) -> Insn {
        if bits & 0b11 != 0b11 {
            return Insn {
                len: 2,
                kind: compressed(bits & 0xFFFF, xlen),
            };
        }
        Insn {
            len: 4,
            kind: full(bits),
        }
    }

    /// The data access, given the registers before it runs (`x[0]` is read
    /// as 0 whatever it holds).
    pub fn data_access(&self, x: &[u64; 32], xlen: Xlen) -> Option<DataAccess> {
        match self.kind {
            Kind::Memory {
                base,
                offset,
                size,
                access,
                ..
            } => Some(DataAccess {
                addr: reg(x, base).wrapping_add(offset as u64) & xlen.mask(),
                size: u64::from(size),
                access,
            }),
            _ => None,
        }
    }

    /// The address of the next instruction after this one at `pc` runs,
    /// given the registers before it runs; `None` for `xRET`.
    pub fn next_pc(&self, pc: u64, x: &[u64; 32], xlen: Xlen) -> Option<u64> {
        let m = xlen.mask();
        let fall = pc.wrapping_add(u64::from(self.len)) & m;
        Some(match self.kind {
            Kind::Branch {
                rs1,
                rs2,
                cond,
                offset,
            } => {
                let (a, b) = (reg(x, rs1) & m, reg(x, rs2) & m);
                let (sa, sb) = (signed(a, xlen), signed(b, xlen));
                let taken = match cond {
                    0 => a == b,
                    1 => a != b,
                    4 => sa < sb,
                    5 => sa >= sb,
                    6 => a < b,
                    7 => a >= b,
                    _ => false,
                };
                if taken {
                    pc.wrapping_add(offset as u64) & m
                } else {
                    fall
                }
            }
            Kind::Jump { offset } => pc.wrapping_add(offset as u64) & m,
            Kind::JumpRegister { rs1, offset } => reg(x, rs1).wrapping_add(offset as u64) & m & !1,
            Kind::Return => return None,
            _ => fall,
        })
    }
}

fn reg(x: &[u64; 32], r: u8) -> u64 {
    if r == 0 {
        0
    } else {
        x[usize::from(r & 31)]
    }
}

fn signed(v: u64, xlen: Xlen) -> i64 {
    match xlen {
        Xlen::Rv32 => i64::from(v as u32 as i32),
        Xlen::Rv64 => v as i64,
    }
}

fn mem(base: u32, offset: i64, size: u8, access: Access) -> Kind {
    Kind::Memory {
        base: base as u8,
        offset,
        size,
        access,
        lr: false,
    }
}

fn full(b: u32) -> Kind {
    let opcode = b & 0x7F;
    let f3 = field(b, 14, 12);
    let rs1 = field(b, 19, 15);
    let rs2 = field(b, 24, 20);
    let i_imm = sext(field(b, 31, 20), 12);
    let s_imm = sext(field(b, 31, 25) << 5 | field(b, 11, 7), 12);
    match opcode {
        // LOAD: lb lh lw ld lbu lhu lwu.
        0x03 => match f3 {
            0 | 4 => mem(rs1, i_imm, 1, Access::READ),
            1 | 5 => mem(rs1, i_imm, 2, Access::READ),
            2 | 6 => mem(rs1, i_imm, 4, Access::READ),
            3 => mem(rs1, i_imm, 8, Access::READ),
            _ => Kind::Other,
        },
        // LOAD-FP: flh flw fld flq (other widths are vector loads).
        0x07 => match f3 {
            1..=4 => mem(rs1, i_imm, 1 << f3, Access::READ),
            _ => Kind::Other,
        },
        // STORE: sb sh sw sd.
        0x23 => match f3 {
            0..=3 => mem(rs1, s_imm, 1 << f3, Access::WRITE),
            _ => Kind::Other,
        },
        // STORE-FP: fsh fsw fsd fsq.
        0x27 => match f3 {
            1..=4 => mem(rs1, s_imm, 1 << f3, Access::WRITE),
            _ => Kind::Other,
        },
        // AMO: LR is a load, SC a store, the others both.
        0x2F if f3 == 2 || f3 == 3 => {
            let size = 1 << f3;
            let (access, lr) = match field(b, 31, 27) {
                0b00010 => (Access::READ, true),
                0b00011 => (Access::WRITE, false),
                _ => (Access::RW, false),
            };
            Kind::Memory {
                base: rs1 as u8,
                offset: 0,
                size,
                access,
                lr,
            }
        }
        0x63 => Kind::Branch {
            rs1: rs1 as u8,
            rs2: rs2 as u8,
            cond: f3 as u8,
            offset: sext(
                field(b, 31, 31) << 12
                    | field(b, 7, 7) << 11
                    | field(b, 30, 25) << 5
                    | field(b, 11, 8) << 1,
                13,
            ),
        },
        0x6F => Kind::Jump {
            offset: sext(
                field(b, 31, 31) << 20
                    | field(b, 19, 12) << 12
                    | field(b, 20, 20) << 11
                    | field(b, 30, 21) << 1,
                21,
            ),
        },
        0x67 if f3 == 0 => Kind::JumpRegister {
            rs1: rs1 as u8,
            offset: i_imm,
        },
        0x73 => match b {
            0x0010_0073 => Kind::Ebreak,
            // mret, sret, dret (mnret is 0x7020_0073).
            0x3020_0073 | 0x1020_0073 | 0x7b20_0073 | 0x7020_0073 => Kind::Return,
            _ => Kind::Other,
        },
        _ => Kind::Other,
    }
}

fn compressed(c: u32, xlen: Xlen) -> Kind {
    let op = c & 0b11;
    let f3 = field(c, 15, 13);
    let rs1p = field(c, 9, 7) + 8;
    let rv64 = xlen == Xlen::Rv64;
    // Offsets of the register-based word and doubleword forms.
    let w_off = i64::from(field(c, 5, 5) << 6 | field(c, 12, 10) << 3 | field(c, 6, 6) << 2);
    let d_off = i64::from(field(c, 6, 5) << 6 | field(c, 12, 10) << 3);
    // Stack-pointer forms.
    let lwsp = i64::from(field(c, 3, 2) << 6 | field(c, 12, 12) << 5 | field(c, 6, 4) << 2);
    let ldsp = i64::from(field(c, 4, 2) << 6 | field(c, 12, 12) << 5 | field(c, 6, 5) << 3);
    let swsp = i64::from(field(c, 8, 7) << 6 | field(c, 12, 9) << 2);
    let sdsp = i64::from(field(c, 9, 7) << 6 | field(c, 12, 10) << 3);
    let j_off = || {
        sext(
            field(c, 12, 12) << 11
                | field(c, 8, 8) << 10
                | field(c, 10, 9) << 8
                | field(c, 6, 6) << 7
                | field(c, 7, 7) << 6
                | field(c, 2, 2) << 5
                | field(c, 11, 11) << 4
                | field(c, 5, 3) << 1,
            12,
        )
    };
    match (op, f3) {
        // c.fld, c.lw, c.flw (RV32) / c.ld (RV64).
        (0, 1) => mem(rs1p, d_off, 8, Access::READ),
        (0, 2) => mem(rs1p, w_off, 4, Access::READ),
        (0, 3) if rv64 => mem(rs1p, d_off, 8, Access::READ),
        (0, 3) => mem(rs1p, w_off, 4, Access::READ),
        // c.fsd, c.sw, c.fsw (RV32) / c.sd (RV64).
        (0, 5) => mem(rs1p, d_off, 8, Access::WRITE),
        (0, 6) => mem(rs1p, w_off, 4, Access::WRITE),
        (0, 7) if rv64 => mem(rs1p, d_off, 8, Access::WRITE),
        (0, 7) => mem(rs1p, w_off, 4, Access::WRITE),
        // c.jal (RV32 only; c.addiw on RV64), c.j.
        (1, 1) if !rv64 => Kind::Jump { offset: j_off() },
        (1, 5) => Kind::Jump { offset: j_off() },
        // c.beqz, c.bnez.
        (1, 6) | (1, 7) => Kind::Branch {
            rs1: rs1p as u8,
            rs2: 0,
            cond: if f3 == 6 { 0 } else { 1 },
            offset: sext(
                field(c, 12, 12) << 8
                    | field(c, 6, 5) << 6
                    | field(c, 2, 2) << 5
                    | field(c, 11, 10) << 3
                    | field(c, 4, 3) << 1,
                9,
            ),
        },
        // c.fldsp, c.lwsp, c.flwsp (RV32) / c.ldsp (RV64).
        (2, 1) => mem(2, ldsp, 8, Access::READ),
        (2, 2) => mem(2, lwsp, 4, Access::READ),
        (2, 3) if rv64 => mem(2, ldsp, 8, Access::READ),
        (2, 3) => mem(2, lwsp, 4, Access::READ),
        // c.fsdsp, c.swsp, c.fswsp (RV32) / c.sdsp (RV64).
        (2, 5) => mem(2, sdsp, 8, Access::WRITE),
        (2, 6) => mem(2, swsp, 4, Access::WRITE),
        (2, 7) if rv64 => mem(2, sdsp, 8, Access::WRITE),
        (2, 7) => mem(2, swsp, 4, Access::WRITE),
        (2, 4) => {
            let (bit12, rs1, rs2) = (field(c, 12, 12), field(c, 11, 7), field(c, 6, 2));
            match (bit12, rs1, rs2) {
                (1, 0, 0) => Kind::Ebreak,
                // c.jr, c.jalr.
                (_, r, 0) if r != 0 => Kind::JumpRegister {
                    rs1: r as u8,
                    offset: 0,
                },
                _ => Kind::Other,
            }
        }
        _ => Kind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RV64: Xlen = Xlen::Rv64;

    fn regs(pairs: &[(usize, u64)]) -> [u64; 32] {
        let mut x = [0; 32];
        for &(r, v) in pairs {
            x[r] = v;
        }
        x
    }

    #[test]
    fn loads_and_stores() {
        // sw a1, -4(a0) = 0xfeb52e23
        let i = Insn::decode(0xfeb5_2e23, RV64);
        let a = i.data_access(&regs(&[(10, 0x1000)]), RV64).unwrap();
        assert_eq!((a.addr, a.size, a.access), (0xffc, 4, Access::WRITE));
        // ld a0, 16(sp) = 0x01013503
        let a = Insn::decode(0x0101_3503, RV64)
            .data_access(&regs(&[(2, 0x2000)]), RV64)
            .unwrap();
        assert_eq!((a.addr, a.size, a.access), (0x2010, 8, Access::READ));
        // lbu a0, 0(zero): x0 reads 0 whatever the array holds.
        let a = Insn::decode(0x0000_4503, RV64)
            .data_access(&regs(&[(0, 0x55)]), RV64)
            .unwrap();
        assert_eq!(a.addr, 0);
    }

    #[test]
    fn amos_and_lr_sc() {
        // amoadd.w a0, a1, (a2) = 0x00b6252f
        let a = Insn::decode(0x00b6_252f, RV64)
            .data_access(&regs(&[(12, 0x3000)]), RV64)
            .unwrap();
        assert_eq!((a.addr, a.size, a.access), (0x3000, 4, Access::RW));
        // lr.d a0, (a2) = 0x1006352f; sc.d a0, a1, (a2) = 0x18b6352f
        assert!(matches!(
            Insn::decode(0x1006_352f, RV64).kind,
            Kind::Memory {
                lr: true,
                size: 8,
                access: Access::READ,
                ..
            }
        ));
        assert!(matches!(
            Insn::decode(0x18b6_352f, RV64).kind,
            Kind::Memory {
                lr: false,
                access: Access::WRITE,
                ..
            }
        ));
    }

    #[test]
    fn compressed_forms() {
        // c.sw a1, 4(a0) = 0xc14c
        let i = Insn::decode(0xc14c, RV64);
        assert_eq!(i.len, 2);
        let a = i.data_access(&regs(&[(10, 0x1000)]), RV64).unwrap();
        assert_eq!((a.addr, a.size, a.access), (0x1004, 4, Access::WRITE));
        // c.ld a1, 8(a0) = 0x650c on RV64; the same bits are c.flw on RV32.
        let a = Insn::decode(0x650c, RV64)
            .data_access(&regs(&[(10, 0x1000)]), RV64)
            .unwrap();
        assert_eq!((a.addr, a.size), (0x1008, 8));
        let a = Insn::decode(0x650c, Xlen::Rv32)
            .data_access(&regs(&[(10, 0x1000)]), Xlen::Rv32)
            .unwrap();
        assert_eq!(a.size, 4);
        // c.sdsp ra, 8(sp) = 0xe406; c.lwsp a0, 12(sp) = 0x4532
        let a = Insn::decode(0xe406, RV64)
            .data_access(&regs(&[(2, 0x8000)]), RV64)
            .unwrap();
        assert_eq!((a.addr, a.size, a.access), (0x8008, 8, Access::WRITE));
        let a = Insn::decode(0x4532, RV64)
            .data_access(&regs(&[(2, 0x8000)]), RV64)
            .unwrap();
        assert_eq!((a.addr, a.size, a.access), (0x800c, 4, Access::READ));
        assert_eq!(Insn::decode(0x9002, RV64).kind, Kind::Ebreak);
        assert_eq!(Insn::decode(0x0010_0073, RV64).kind, Kind::Ebreak);
    }

    #[test]
    fn next_pc_follows_branches_and_jumps() {
        // beq a0, a1, +16 = 0x00b50863
        let beq = Insn::decode(0x00b5_0863, RV64);
        assert_eq!(
            beq.next_pc(0x100, &regs(&[(10, 1), (11, 1)]), RV64),
            Some(0x110)
        );
        assert_eq!(
            beq.next_pc(0x100, &regs(&[(10, 1), (11, 2)]), RV64),
            Some(0x104)
        );
        // blt a0, a1, -8 = 0xfeb54ce3: signed, and by XLEN on RV32.
        let blt = Insn::decode(0xfeb5_4ce3, RV64);
        assert_eq!(
            blt.next_pc(0x100, &regs(&[(10, u64::MAX), (11, 0)]), RV64),
            Some(0xf8)
        );
        assert_eq!(
            blt.next_pc(0x100, &regs(&[(10, 0xFFFF_FFFF), (11, 0)]), Xlen::Rv32),
            Some(0xf8)
        );
        // jal ra, +2048 = 0x001000ef; jalr zero, 3(a0) = 0x00350067.
        assert_eq!(
            Insn::decode(0x0010_00ef, RV64).next_pc(0x100, &[0; 32], RV64),
            Some(0x900)
        );
        assert_eq!(
            Insn::decode(0x0035_0067, RV64).next_pc(0x100, &regs(&[(10, 0x400)]), RV64),
            Some(0x402)
        );
        // c.j -2 = 0xbffd; c.bnez a0, +6 = 0xe119; c.jr ra = 0x8082.
        assert_eq!(
            Insn::decode(0xbffd, RV64).next_pc(0x100, &[0; 32], RV64),
            Some(0xfe)
        );
        assert_eq!(
            Insn::decode(0xe119, RV64).next_pc(0x100, &regs(&[(10, 1)]), RV64),
            Some(0x106)
        );
        assert_eq!(
            Insn::decode(0x8082, RV64).next_pc(0x100, &regs(&[(1, 0x500)]), RV64),
            Some(0x500)
        );
        assert_eq!(
            Insn::decode(0x3020_0073, RV64).next_pc(0x100, &[0; 32], RV64),
            None
        );
    }
}
