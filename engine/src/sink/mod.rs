//! sink (being written)
