//! hwbp backend for x86 (work in progress).
#![cfg_attr(not(test), no_std)]
