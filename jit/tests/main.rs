//! Integration tests of weir-jit: differential (JIT vs interpreter), aggregation, CLIF
//! snapshots, code memory, threads and bad input.

mod suite;
