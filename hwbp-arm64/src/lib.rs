//! hwbp backend for arm64 (work in progress).
#![cfg_attr(not(test), no_std)]
