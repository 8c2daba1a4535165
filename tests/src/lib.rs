//! Shared helpers for slowscan integration tests.
