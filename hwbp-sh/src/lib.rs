//! hwbp backend for sh (work in progress).
#![cfg_attr(not(test), no_std)]
