//! Issue 14: the oracle-checked lifecycle of `prop_table.rs` (same harness,
//! same checks after every step) at large capacities: 4096 breakpoints, 128
//! CPUs (more than the 64 a `u64` mask could name, with 65 to 128 of them in
//! use), 64 tasks. It proves that the index structures (storage lists, task
//! maps, free set, CPU sets) hold at shapes far from the small one the main
//! property explores.
//!
//! Case count: `PROPTEST_CASES / 16` (4 to 32): each case is long and
//! checks every CPU after every step.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::Mutex;

use hwbp_core::mock::{Mock, MockConfig, MockSlot};
use hwbp_core::Arch;
use hwbp_core::{
    Access, BpType, BreakpointAttr, ConstraintTable, CpuSet, Error, Handle, Handler, Image,
    Manager, Pool, Sample, SlotCounts, Target, TaskId,
};
use proptest::prelude::*;

const CPUS: usize = 128;
const EVENTS: usize = 4096;
const TASKS: usize = 64;
/// Task ids used.
const NTASKS: u64 = 96;
/// CPU numbers the generators pick (below this, plus a few beyond).
const PICK_CPUS: u16 = 128;

include!("oracle/harness.rs");

fn cases() -> u32 {
    let n: u32 = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    (n / 16).clamp(4, 32)
}

#[test]
fn lifecycle_matches_oracle_at_large_capacities() {
    use proptest::test_runner::{Config, TestRunner};
    // The manager is megabytes: build it (and run) on a thread with room.
    let t = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| {
            let mut runner = TestRunner::new(Config {
                cases: cases(),
                ..Config::default()
            });
            let ops = prop_oneof![
                3 => prop::collection::vec(op_strategy(), 50..250),
                1 => prop::collection::vec(task_op_strategy(), 50..250),
            ];
            let strategy = (config_strategy(), 65u16..=128, any::<u8>(), ops);
            runner.run(&strategy, |(cfg, nr, online, ops)| {
                let mut run = Run::new(cfg, nr, online);
                run.check()?;
                for op in &ops {
                    run.step(op)?;
                }
                run.release_all()
            })
        })
        .unwrap();
    if let Err(e) = t.join().unwrap() {
        panic!("{e}");
    }
}
