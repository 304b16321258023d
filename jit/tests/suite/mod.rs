//! Test modules and shared helpers.

mod smoke;

use std::sync::Arc;

use weir_jit::{JitEngine, JitOptions};

/// An engine with the verifier on.
pub fn engine() -> JitEngine {
    JitEngine::new(JitOptions { verify: true, ..JitOptions::default() }).expect("engine")
}

#[allow(dead_code)]
pub fn arc<T>(t: T) -> Arc<T> {
    Arc::new(t)
}
