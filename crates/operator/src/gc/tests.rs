#![allow(clippy::unwrap_used)]

use super::*;

fn o(owner: &str, kind: ObjectKind, name: &str) -> GcObject {
    GcObject {
        owner: owner.into(),
        kind,
        name: name.into(),
    }
}

/// `specs` specs owning `per_spec` objects each (`s0`..), as an inventory.
fn inventory(specs: usize, per_spec: usize) -> Vec<GcObject> {
    let kinds = ObjectKind::APPLY_ORDER;
    (0..specs)
        .flat_map(|s| {
            (0..per_spec).map(move |k| {
                o(
                    &format!("a/s{s}"),
                    kinds[k % kinds.len()],
                    &format!("s{s}-{k}"),
                )
            })
        })
        .collect()
}

/// The objects of the first `n` specs of `owned` (their keys removed).
fn of_first(owned: &[GcObject], n: usize) -> Vec<GcObject> {
    let keys: Vec<&str> = owners(owned).into_iter().take(n).collect();
    owned
        .iter()
        .filter(|o| keys.contains(&o.owner.as_str()))
        .cloned()
        .collect()
}

#[test]
fn the_guard_counts_specs_by_share_and_count_and_always_lets_one_spec_go() {
    // max(1, floor(share × specs owning objects)), and at most the count.
    assert_eq!(allowed_specs(7, 10, 0.2), 1);
    assert_eq!(allowed_specs(10, 10, 0.2), 2);
    assert_eq!(allowed_specs(14, 10, 0.2), 2);
    assert_eq!(allowed_specs(50, 10, 0.2), 10);
    assert_eq!(allowed_specs(1000, 10, 0.2), 10, "the count caps the share");
    assert_eq!(allowed_specs(1, 10, 0.2), 1);
    assert_eq!(allowed_specs(3, 0, 0.0), 1, "one spec always may go");
    assert!(!trips_guard(0, 7, 10, 0.2));
    assert!(!trips_guard(1, 7, 10, 0.2));
    assert!(trips_guard(2, 7, 10, 0.2));
    assert!(!trips_guard(2, 10, 10, 0.2));
    assert!(trips_guard(11, 1000, 10, 0.2), "count");
    assert!(!trips_guard(10, 1000, 10, 0.2));
    assert!(trips_guard(3, 3, 10, 0.2), "everything");
    assert!(!trips_guard(1, 1, 10, 0.2), "the only spec");
}

#[test]
fn removing_one_spec_of_seven_with_all_its_objects_is_not_blocked() {
    // The case: one spec of seven owns more than 20 % of the objects (6 of 24).
    let mut owned = inventory(6, 3);
    owned.extend(inventory(1, 6).into_iter().map(|mut x| {
        x.owner = "b/big".into();
        x
    }));
    let big: Vec<GcObject> = owned
        .iter()
        .filter(|x| x.owner == "b/big")
        .cloned()
        .collect();
    assert_eq!((owned.len(), big.len(), owners(&owned).len()), (24, 6, 7));
    assert_eq!(decide(&big, &owned, 10, 0.2, None), Decision::Delete);
    // A single spec's objects go whatever their number.
    let huge = inventory(1, 40);
    assert_eq!(decide(&huge, &huge, 10, 0.2, None), Decision::Delete);
    // Two specs of seven are more than 20 %.
    let two = of_first(&owned, 2);
    assert!(matches!(
        decide(&two, &owned, 10, 0.2, None),
        Decision::Blocked { .. }
    ));
    // Wiping everything is blocked.
    assert!(matches!(
        decide(&owned, &owned, 10, 0.2, None),
        Decision::Blocked { .. }
    ));
}

#[test]
fn a_blocked_set_is_deleted_only_with_its_own_digest() {
    let owned = inventory(3, 2);
    let orphans = of_first(&owned, 2);
    let blocked = decide(&orphans, &owned, 10, 0.2, None);
    let Decision::Blocked { digest: d } = blocked else {
        panic!("{blocked:?}")
    };
    assert_eq!(
        d,
        digest(&orphans.iter().rev().cloned().collect::<Vec<_>>()),
        "order-independent"
    );
    assert_eq!(
        decide(&orphans, &owned, 10, 0.2, Some(&d)),
        Decision::Delete
    );
    let more = owned.clone();
    assert!(matches!(
        decide(&more, &owned, 10, 0.2, Some(&d)),
        Decision::Blocked { .. }
    ));
    assert_eq!(decide(&[], &owned, 10, 0.2, None), Decision::Nothing);
}

#[test]
fn the_blocked_message_counts_specs_and_objects_and_gives_the_approval_command() {
    let set = BlockedSet {
        digest: "d1g3st".into(),
        specs: (0..7).map(|i| format!("a/s{i}")).collect(),
        owning_specs: 7,
        count: 24,
        owned: 24,
        objects: Vec::new(),
    };
    let m = blocked_message(&set, 10, 0.2);
    assert!(
        m.starts_with("garbage collection would remove 7 of 7 specs (24 of 24 owned objects); "),
        "{m}"
    );
    assert!(
        m.contains("at most 1 spec (20% of 7 specs owning objects, at most 10"),
        "{m}"
    );
    assert!(m.contains("nothing was deleted"), "{m}");
    assert!(m.ends_with("steward gc approve --digest d1g3st"), "{m}");
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
        specs: vec!["a/x".into()],
        owning_specs: 1,
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
