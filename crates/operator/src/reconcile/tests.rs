#![allow(clippy::unwrap_used)]

use super::*;
use crate::writer::WriteError;

#[test]
fn error_chains_read_on_one_line_without_repeats() {
    let e = ReconcileError::Status {
        key: "a/b".into(),
        source: WriteError::Fenced,
    };
    assert_eq!(
        chain(&e),
        "status of a/b: not written: this instance no longer holds the leader lock"
    );
}
