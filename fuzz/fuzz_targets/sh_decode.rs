//! SuperH: part identification from arbitrary PVR/PRR values never panics,
//! and an identified part always has usable UBC channels.
#![no_main]

use hwbp_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    while !b.is_empty() {
        let (pvr, prr) = (b.u32(), b.u32());
        if let Ok(v) = hwbp_sh::identify(pvr, prr) {
            assert!(v.channel_mask() != 0);
        }
    }
});
