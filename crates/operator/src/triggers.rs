//! The trigger mappers: what a cache changed → the spec keys to reconcile, the way
//! kube-runtime's `watches`/`owns` map a watched object to its owner. The wiring hands
//! [`Mappers::keys`] to the controller's `watches` with the caches' change stream.
//!
//! One rule per watch ([`Source`]): an owned object maps to its owners before and after
//! (ownership `Meta`, the Vault policy marker); a config entry or Vault name also to
//! the specs that would give their objects that name ([`NameIndex`]), so a change of
//! an object nobody owns (a hand-made clash) still reaches the spec it blocks; a Nomad
//! job also to the spec key its name is, by the naming rules. An event only says which
//! key to look at: the reconcile reads the whole truth for it.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::cache::{Caches, Change, NameIndex, ObjectChange, Source};
use crate::key::SpecKey;

/// The mappers, with what they read (cheap to clone).
#[derive(Debug, Clone)]
pub struct Mappers {
    names: Arc<NameIndex>,
    gc: Arc<Notify>,
}

impl Mappers {
    /// Mappers reading `names`; deleted specs and the spec cache's first sync ask the
    /// collector waiting on `gc` for a pass.
    #[must_use]
    pub fn new(names: Arc<NameIndex>, gc: Arc<Notify>) -> Self {
        Self { names, gc }
    }

    /// The keys `change` concerns (taken by value: the keys it carries move on as they
    /// are, without a copy).
    #[must_use]
    pub fn keys(&self, change: Change) -> Vec<SpecKey> {
        match change {
            Change::Specs {
                mut applied,
                deleted,
            } => {
                if !deleted.is_empty() {
                    // What the deleted specs owned is garbage now.
                    self.gc.notify_one();
                }
                applied.extend(deleted);
                applied
            }
            Change::SpecsSynced => {
                // Every spec is known: a collection pass may now decide.
                self.gc.notify_one();
                Vec::new()
            }
            // Someone else removed a status: the key writes it again.
            Change::StatusDeleted(key) => vec![key],
            Change::Replaced { owners, .. } => owners,
            Change::Objects { source, objects } => {
                let mut keys = Vec::with_capacity(objects.len() * 2);
                for object in objects {
                    self.object(source, object, &mut keys);
                }
                keys
            }
        }
    }

    fn object(&self, source: Source, object: ObjectChange, keys: &mut Vec<SpecKey>) {
        let ObjectChange {
            name,
            old_owner,
            new_owner,
        } = object;
        match source {
            Source::ConfigEntries(_) | Source::VaultNames => {
                keys.extend(old_owner);
                keys.extend(new_owner);
                // A spec blocked by a clash is freed when the clashing object goes or
                // changes hands.
                keys.extend(self.names.keys_for(&name).into_iter().map(SpecKey::from));
            }
            Source::NomadJobList => {
                keys.extend(old_owner);
                keys.extend(new_owner);
                // Job `<id>` in namespace `<ns>` is what spec `<ns>/<id>` would own.
                keys.push(SpecKey::from(&*name));
            }
            Source::NomadJobEvent => {
                keys.push(new_owner.unwrap_or_else(|| SpecKey::from(&*name)));
            }
            Source::NomadDeployments | Source::VaultContent => {
                keys.extend(old_owner);
                keys.extend(new_owner);
            }
        }
    }
}

/// Every spec key (a cache's first sync: the specs held back for it go on at once).
#[must_use]
pub fn all_specs(caches: &Caches) -> Vec<SpecKey> {
    caches.specs.spec_keys()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mappers() -> (Mappers, Arc<Notify>) {
        let names = Arc::new(NameIndex::default());
        names.insert("shop/web");
        let gc = Arc::new(Notify::new());
        (Mappers::new(names, gc.clone()), gc)
    }

    fn object(source: Source, name: &str, old: Option<&str>, new: Option<&str>) -> Change {
        Change::object(source, ObjectChange::new(name, old, new))
    }

    fn keys(m: &Mappers, change: Change) -> Vec<String> {
        m.keys(change).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn owned_objects_map_to_their_owners_and_names_to_the_specs_that_use_them() {
        let (m, _) = mappers();
        let entries = Source::ConfigEntries("service-defaults");
        assert_eq!(
            keys(&m, object(entries, "web", Some("a/x"), Some("b/y"))),
            vec!["a/x", "b/y", "shop/web"]
        );
        assert_eq!(
            keys(&m, object(entries, "api", None, None)),
            Vec::<String>::new()
        );
        assert_eq!(
            keys(
                &m,
                object(Source::VaultNames, "STEWARD-shop-web", None, None)
            ),
            vec!["shop/web"]
        );
        assert_eq!(
            keys(
                &m,
                object(
                    Source::VaultContent,
                    "steward-shop-web",
                    None,
                    Some("shop/web")
                )
            ),
            vec!["shop/web"]
        );
    }

    #[test]
    fn nomad_jobs_map_to_their_owners_and_to_the_spec_their_name_is() {
        let (m, _) = mappers();
        assert_eq!(
            keys(
                &m,
                object(Source::NomadJobList, "a/web", Some("a/old"), None)
            ),
            vec!["a/old", "a/web"]
        );
        assert_eq!(
            keys(
                &m,
                object(Source::NomadJobEvent, "a/web", None, Some("b/api"))
            ),
            vec!["b/api"],
            "an owned body maps to its owner only"
        );
        assert_eq!(
            keys(&m, object(Source::NomadJobEvent, "a/web", None, None)),
            vec!["a/web"]
        );
        assert_eq!(
            keys(
                &m,
                object(Source::NomadDeployments, "a/web", None, Some("a/web"))
            ),
            vec!["a/web"]
        );
    }

    #[tokio::test]
    async fn spec_changes_map_to_themselves_and_deletions_ask_for_collection() {
        let (m, gc) = mappers();
        let change = Change::Specs {
            applied: vec!["a/web".into()],
            deleted: vec!["b/api".into()],
        };
        assert_eq!(keys(&m, change), vec!["a/web", "b/api"]);
        // The permit left by the deletion is there at once.
        tokio::time::timeout(std::time::Duration::from_secs(1), gc.notified())
            .await
            .unwrap_or_else(|_| panic!("a deletion asks for a GC pass"));
        assert_eq!(keys(&m, Change::StatusDeleted("x/y".into())), vec!["x/y"]);
        assert!(m.keys(Change::SpecsSynced).is_empty());
    }
}
