//! Record trait (being written)
