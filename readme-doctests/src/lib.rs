//! The repository README's Rust examples, compiled and run as doc tests so
//! they cannot rot. The README lives outside every published package, so this
//! unpublished crate carries the doc tests; each library crate runs the
//! examples of its own README from inside its package.
#![no_std]

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
