//! hwbp on Linux user space (work in progress).
