//! Test modules and shared helpers.

mod aggregation;
mod differential;
mod functions;
mod generate;
mod robustness;
mod smoke;
mod snapshots;

use weir_jit::{JitEngine, JitOptions};

/// An engine with the Cranelift verifier on.
pub fn engine() -> JitEngine {
    JitEngine::new(JitOptions {
        verify: true,
        ..JitOptions::default()
    })
    .expect("engine")
}
