//! checkpoint (being written)
