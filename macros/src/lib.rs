//! weir-macros
