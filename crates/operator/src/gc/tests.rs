#![allow(clippy::unwrap_used)]

use super::*;

fn o(owner: &str, kind: ObjectKind, name: &str) -> GcObject {
    GcObject {
        owner: owner.into(),
        kind,
        name: name.into(),
    }
}

#[test]
fn the_guard_trips_on_count_or_share() {
    assert!(!trips_guard(0, 100, 10, 0.2));
    assert!(!trips_guard(5, 100, 10, 0.2));
    assert!(trips_guard(11, 1000, 10, 0.2), "count");
    assert!(trips_guard(6, 20, 10, 0.2), "share 30%");
    assert!(!trips_guard(4, 20, 10, 0.2), "share 20% is allowed");
    assert!(trips_guard(3, 3, 10, 0.2), "everything");
}

#[test]
fn a_blocked_set_is_deleted_only_with_its_own_digest() {
    let orphans = vec![
        o("a/x", ObjectKind::NomadJob, "x"),
        o("a/x", ObjectKind::ServiceDefaults, "x"),
    ];
    let blocked = decide(&orphans, 2, 10, 0.2, None);
    let Decision::Blocked { digest: d } = blocked else {
        panic!("{blocked:?}")
    };
    assert_eq!(
        d,
        digest(&orphans.iter().rev().cloned().collect::<Vec<_>>()),
        "order-independent"
    );
    assert_eq!(decide(&orphans, 2, 10, 0.2, Some(&d)), Decision::Delete);
    let mut more = orphans.clone();
    more.push(o("b/y", ObjectKind::NomadJob, "y"));
    assert!(matches!(
        decide(&more, 3, 10, 0.2, Some(&d)),
        Decision::Blocked { .. }
    ));
    assert_eq!(decide(&[], 3, 10, 0.2, None), Decision::Nothing);
    assert_eq!(decide(&orphans[..1], 100, 10, 0.2, None), Decision::Delete);
}

#[test]
fn deletions_go_in_reverse_apply_order() {
    let mut kinds = ObjectKind::APPLY_ORDER.to_vec();
    kinds.sort_by_key(|k| delete_rank(*k));
    assert_eq!(
        kinds,
        vec![
            ObjectKind::HttpRoute,
            ObjectKind::NomadJob,
            ObjectKind::ServiceIntentions,
            ObjectKind::ServiceDefaults,
            ObjectKind::VaultRole,
            ObjectKind::VaultPolicy,
        ]
    );
}

#[test]
fn approvals_need_the_blocked_digest() {
    let state = GcState::default();
    assert_eq!(state.approve("x"), Err(ApproveError::NothingBlocked));
    *state.blocked.lock() = Some(BlockedSet {
        digest: "abc".into(),
        count: 1,
        owned: 1,
        objects: Vec::new(),
    });
    assert!(matches!(
        state.approve("x"),
        Err(ApproveError::DigestMismatch { .. })
    ));
    state.approve("abc").unwrap();
    assert_eq!(state.approved.lock().as_deref(), Some("abc"));
}
