//! Harness for process-level tests.
