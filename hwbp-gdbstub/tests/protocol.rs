//! GDB's packets through gdbstub and `impl_hw_breakpoints!` to the adapter:
//! `Z2`/`Z3`/`Z4`/`Z1` are answered `OK` while registers are free, the one
//! too many gets an error reply (GDB: "Could not insert hardware
//! watchpoint"), `z` removes exactly what it names and an unknown removal
//! is an error too.

use std::cell::RefCell;

use gdbstub::common::Signal;
use gdbstub::conn::Connection;
use gdbstub::stub::state_machine::GdbStubStateMachine;
use gdbstub::stub::GdbStub;
use gdbstub::target::ext::base::singlethread::{
    SingleThreadBase, SingleThreadResume, SingleThreadResumeOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpointOps, HwWatchpointOps,
};
use gdbstub::target::{Target, TargetResult};
use gdbstub_arch::aarch64::reg::AArch64CoreRegs;
use hwbp_core::mock::{Mock, MockConfig};
use hwbp_core::Manager;
use hwbp_gdbstub::{GdbBreakpoints, Kind, Request, WatchKind};

type Hw = Manager<Mock, (), 1, 16, 4>;
type Bps = GdbBreakpoints<'static, Mock, (), 1, 16, 4, 8>;

struct Stub {
    bps: &'static Bps,
}

impl Target for Stub {
    type Arch = gdbstub_arch::aarch64::AArch64;
    type Error = ();
    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, ()> {
        BaseOps::SingleThread(self)
    }
    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }
    fn guard_rail_implicit_sw_breakpoints(&self) -> bool {
        true
    }
}

impl SingleThreadBase for Stub {
    fn read_registers(&mut self, _: &mut AArch64CoreRegs) -> TargetResult<(), Self> {
        Ok(())
    }
    fn write_registers(&mut self, _: &AArch64CoreRegs) -> TargetResult<(), Self> {
        Ok(())
    }
    fn read_addrs(&mut self, _: u64, data: &mut [u8]) -> TargetResult<usize, Self> {
        Ok(data.len())
    }
    fn write_addrs(&mut self, _: u64, _: &[u8]) -> TargetResult<(), Self> {
        Ok(())
    }
    fn support_resume(&mut self) -> Option<SingleThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadResume for Stub {
    fn resume(&mut self, _: Option<Signal>) -> Result<(), ()> {
        Ok(())
    }
}

impl Breakpoints for Stub {
    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }
    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

hwbp_gdbstub::impl_hw_breakpoints!(Stub, |t| t.bps);

/// What the stub sent.
struct Wire(RefCell<Vec<u8>>);

impl Connection for &Wire {
    type Error = ();
    fn write(&mut self, b: u8) -> Result<(), ()> {
        self.0.borrow_mut().push(b);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), ()> {
        Ok(())
    }
}

/// `$body#cs`.
fn packet(body: &str) -> Vec<u8> {
    let sum = body.bytes().fold(0u8, |s, b| s.wrapping_add(b));
    format!("${body}#{sum:02x}").into_bytes()
}

/// Send `body`; return the reply's payload.
fn ask(
    sm: &mut Option<GdbStubStateMachine<'static, Stub, &'static Wire>>,
    stub: &mut Stub,
    wire: &Wire,
    body: &str,
) -> String {
    wire.0.borrow_mut().clear();
    for b in packet(body) {
        let GdbStubStateMachine::Idle(inner) = sm.take().unwrap() else {
            panic!("not idle");
        };
        *sm = Some(inner.incoming_data(stub, b).unwrap());
    }
    let out = String::from_utf8(wire.0.borrow().clone()).unwrap();
    // "+" (ack), then "$payload#cs".
    let start = out.find('$').expect("a reply");
    let end = out.rfind('#').expect("a checksum");
    out[start + 1..end].to_owned()
}

#[test]
fn gdbs_packets_become_hwbp_requests_and_refusals_become_errors() {
    let hw: &'static Hw = Box::leak(Box::new(Manager::new(Mock::new(MockConfig::ARM_LIKE), ())));
    hw.init(1).unwrap();
    hw.cpu_online(0).unwrap();
    let bps: &'static Bps = Box::leak(Box::new(GdbBreakpoints::new(hw)));
    let wire: &'static Wire = Box::leak(Box::new(Wire(RefCell::new(Vec::new()))));
    let buf: &'static mut [u8] = Box::leak(vec![0u8; 4096].into_boxed_slice());
    let mut stub = Stub { bps };
    let gdb = GdbStub::builder(wire)
        .with_packet_buffer(buf)
        .build()
        .unwrap();
    let mut sm = Some(gdb.run_state_machine(&mut stub).unwrap());

    // Four watchpoints (the Arm-like mock has 4 data registers) and an hbreak.
    assert_eq!(ask(&mut sm, &mut stub, wire, "Z2,1000,8"), "OK");
    assert_eq!(ask(&mut sm, &mut stub, wire, "Z3,2000,4"), "OK");
    assert_eq!(ask(&mut sm, &mut stub, wire, "Z4,3000,1"), "OK");
    assert_eq!(ask(&mut sm, &mut stub, wire, "Z2,4000,8"), "OK");
    assert_eq!(ask(&mut sm, &mut stub, wire, "Z1,400000,4"), "OK");
    assert_eq!(hw.len(), 5);
    // The fifth watchpoint: an error reply, nothing registered.
    let no_slot = ask(&mut sm, &mut stub, wire, "Z2,5000,8");
    assert!(no_slot.starts_with('E'), "{no_slot}");
    assert_eq!(hw.len(), 5);
    // Removal is exact: wrong length or kind is an error and removes nothing.
    assert!(ask(&mut sm, &mut stub, wire, "z2,1000,4").starts_with('E'));
    assert!(ask(&mut sm, &mut stub, wire, "z4,1000,8").starts_with('E'));
    assert_eq!(hw.len(), 5);
    assert_eq!(ask(&mut sm, &mut stub, wire, "z2,1000,8"), "OK");
    assert_eq!(ask(&mut sm, &mut stub, wire, "z1,400000,4"), "OK");
    assert_eq!(hw.len(), 3);
    assert_eq!(
        bps.requests().as_slice(),
        &[
            Request {
                kind: Kind::Watch(WatchKind::Read),
                addr: 0x2000,
                len: 4
            },
            Request {
                kind: Kind::Watch(WatchKind::ReadWrite),
                addr: 0x3000,
                len: 1
            },
            Request {
                kind: Kind::Watch(WatchKind::Write),
                addr: 0x4000,
                len: 8
            },
        ]
    );
    // Room again: the refused one fits now.
    assert_eq!(ask(&mut sm, &mut stub, wire, "Z2,5000,8"), "OK");
}
