#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn health_is_fresh_only_between_a_success_and_the_next_failure() {
    let h = Health::new("x");
    assert!(!h.is_synced() && !h.is_fresh());
    h.failed("boom");
    h.succeeded();
    assert!(!h.is_synced() && !h.is_fresh(), "fresh needs synced");
    h.mark_synced();
    assert!(h.is_synced() && h.is_fresh());
    h.failed("500 invalid config entry kind: http-route");
    assert!(h.is_synced() && !h.is_fresh());
    assert_eq!(
        h.state().error.as_deref(),
        Some("500 invalid config entry kind: http-route")
    );
    assert_eq!(h.state().consecutive_failures, 1);
    assert_eq!(h.failures(), 2);
    h.succeeded();
    assert!(h.is_fresh());
    assert_eq!(h.error(), None, "a success clears the trouble");
    assert_eq!(h.state().consecutive_failures, 0);
}

#[test]
fn the_name_index_finds_the_specs_a_name_would_belong_to() {
    let idx = NameIndex::default();
    idx.insert("a/web");
    idx.insert("b/web");
    idx.insert("not a key");
    assert_eq!(idx.keys_for("web"), vec!["a/web", "b/web"]);
    assert_eq!(idx.keys_for("a-web"), vec!["a/web"]);
    assert_eq!(idx.keys_for("STEWARD-b-web"), vec!["b/web"]);
    idx.remove("a/web");
    assert_eq!(idx.keys_for("web"), vec!["b/web"]);
    assert!(idx.keys_for("a-web").is_empty());
}
