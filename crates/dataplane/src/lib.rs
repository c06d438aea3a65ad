//! Placeholder, replaced by the data-plane implementation.
