//! dataplane (being written).
