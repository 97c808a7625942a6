//! Diffs between a desired object and the live one the server returns: empty exactly
//! when every field Steward owns is equivalent.
//!
//! Rules (on top of the equivalences in [`crate::compare`]):
//!
//! **Nomad job** ([`diff_job`]; both sides through [`normalise_job`]):
//! - every field the desired job sets is compared; fields the server fills (§6.6:
//!   `Region`, `Priority`, restart/reschedule/migrate policies, `EphemeralDisk`,
//!   `KillTimeout`, `LogConfig`, service and check defaults, implicit `Constraints`,
//!   workload `Identity`/`Identities`, `HostNetwork`, `Status`, indexes, `Version`,
//!   `SubmitTime`, ...) are ignored;
//! - `Meta`: the `steward.*` keys except `steward.generation` compare as a whole map;
//!   other keys are ignored;
//! - owned even when the desired job leaves them out (so one added on the server is a
//!   change): job `Periodic`; group `Networks`, `Services`, `Update`; service `Tags`,
//!   `Checks`, `Connect` and the sidecar's `Proxy.Upstreams`; task `Config`, `Env` and
//!   `Vault`; `Resources.MemoryMaxMB`;
//! - task `Config` and `Env` compare as whole maps;
//! - named lists are matched by name: `TaskGroups`, `Tasks`, `Services`, `Checks` by
//!   `Name`, `DynamicPorts`/`ReservedPorts` by `Label`, `Upstreams` by
//!   `DestinationName`; injected items are skipped: the Connect sidecar task
//!   (`connect-proxy-<service>`, `Kind: connect-proxy:<service>`), its port
//!   `connect-proxy-<service>` and the exposed-check ports `svc_<service>_ck_<hash>`.
//!
//! **Config entries** ([`diff_config_entry`]; both sides through
//! [`normalise_config_entry`]): the desired fields, `Meta` as for jobs; intention
//! `Sources` matched by name (plus `Peer`/`SamenessGroup` when set), each with `Action`
//! and `Permissions` owned, `Permissions` closed (compared whole); route `Hostnames`,
//! `Parents` and `Rules` owned, each rule's `Matches` and `Filters` closed and its
//! `Services` matched by `Name`; `Status`, indexes and intention `Precedence`/`Type`
//! ignored.
//!
//! **Policy** ([`diff_policy`]): parsed bodies, not text: the marker's spec key and each
//! `path` block (matched by pattern, compared whole, capabilities as a set).
//!
//! **Role** ([`diff_role`]; both sides through [`normalise_role`]): the desired fields,
//! `bound_claims` and `claim_mappings` closed; read-only extras (zero-valued or defaults
//! like `bound_claims_type`) ignored. Vault's role write updates only the fields sent,
//! so an extra field someone sets is not something a rewrite would undo; it is ignored.
//!
//! Values in a [`FieldChange`] are in the normalised form (route timeouts in
//! nanoseconds, role durations in seconds, server-computed source fields stripped).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::compare::{Differ, obj};
use crate::names::CONNECT_PROXY_PREFIX;
use crate::normalise::{
    normalise_config_entry, normalise_job, normalise_role, owned_meta, parse_policy,
};

/// One owned field that differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// Where, e.g. `TaskGroups[web].Tasks[app].Config.image`, `Sources[web].Action`,
    /// `path["secret/data/x/*"].capabilities`, `Meta["steward.hash"]`.
    pub path: String,
    /// The desired value; `None` when the field (or item) should not exist.
    pub desired: Option<Value>,
    /// The live value; `None` when the field (or item) is missing on the server.
    pub live: Option<Value>,
}

impl fmt::Display for FieldChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<Value>| {
            v.as_ref()
                .map_or_else(|| "(absent)".to_owned(), Value::to_string)
        };
        write!(
            f,
            "{}: {} -> {}",
            self.path,
            show(&self.live),
            show(&self.desired)
        )
    }
}

fn name_of(key: &'static str) -> impl Fn(&Value) -> Option<String> {
    move |v| v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn nothing_injected(_: &str, _: &Value) -> bool {
    false
}

/// Owned fields of the desired Nomad job that differ from the live job
/// (`GET /v1/job/<id>`). See the module docs for the rules.
#[must_use]
pub fn diff_job(desired: &Value, live: &Value) -> Vec<FieldChange> {
    let (d, l) = (normalise_job(desired), normalise_job(live));
    let (dm, lm) = (obj(Some(&d)), obj(Some(&l)));
    let mut differ = Differ::default();
    differ.fields("", dm, lm, &["Periodic"], &["Meta", "TaskGroups"]);
    differ.closed(
        "Meta",
        Some(&owned_meta(dm.get("Meta"))),
        Some(&owned_meta(lm.get("Meta"))),
    );
    differ.named(
        "TaskGroups",
        dm.get("TaskGroups"),
        lm.get("TaskGroups"),
        name_of("Name"),
        nothing_injected,
        group,
    );
    differ.changes
}

fn group(differ: &mut Differ, path: &str, d: &Value, l: &Value) {
    let (dm, lm) = (obj(Some(d)), obj(Some(l)));
    let custom = ["Networks", "Services", "Tasks"];
    differ.fields(path, dm, lm, &["Update"], &custom);
    differ.positional(
        &format!("{path}.Networks"),
        dm.get("Networks"),
        lm.get("Networks"),
        network,
    );
    differ.named(
        &format!("{path}.Services"),
        dm.get("Services"),
        lm.get("Services"),
        name_of("Name"),
        nothing_injected,
        service,
    );
    differ.named(
        &format!("{path}.Tasks"),
        dm.get("Tasks"),
        lm.get("Tasks"),
        name_of("Name"),
        |name, task| {
            let kind = task.get("Kind").and_then(Value::as_str).unwrap_or_default();
            name.starts_with(CONNECT_PROXY_PREFIX) || kind.starts_with("connect-proxy:")
        },
        task,
    );
}

/// Ports Nomad adds to a group network: the sidecar's and the exposed checks'.
fn injected_port(label: &str, _: &Value) -> bool {
    let exposed_check = label
        .strip_prefix("svc_")
        .is_some_and(|rest| rest.contains("_ck_"));
    label.starts_with(CONNECT_PROXY_PREFIX) || exposed_check
}

fn network(differ: &mut Differ, path: &str, d: &Value, l: &Value) {
    let (dm, lm) = (obj(Some(d)), obj(Some(l)));
    differ.fields(path, dm, lm, &[], &["DynamicPorts", "ReservedPorts"]);
    for (field, ignore) in [("DynamicPorts", true), ("ReservedPorts", false)] {
        differ.named(
            &format!("{path}.{field}"),
            dm.get(field),
            lm.get(field),
            name_of("Label"),
            |label, port| ignore && injected_port(label, port),
            |differ, p, d, l| differ.open(p, Some(d), Some(l)),
        );
    }
}

fn service(differ: &mut Differ, path: &str, d: &Value, l: &Value) {
    let (dm, lm) = (obj(Some(d)), obj(Some(l)));
    differ.fields(path, dm, lm, &["Tags", "PortLabel"], &["Checks", "Connect"]);
    differ.named(
        &format!("{path}.Checks"),
        dm.get("Checks"),
        lm.get("Checks"),
        name_of("Name"),
        nothing_injected,
        |differ, p, d, l| differ.open(p, Some(d), Some(l)),
    );
    let connect = format!("{path}.Connect");
    let (dc, lc) = (dm.get("Connect"), lm.get("Connect"));
    let connected = |v: Option<&Value>| v.is_some_and(Value::is_object);
    if connected(dc) != connected(lc) {
        differ.change(&connect, dc, lc);
        return;
    }
    let (dc, lc) = (obj(dc), obj(lc));
    differ.fields(&connect, dc, lc, &[], &["SidecarService"]);
    let sidecar = format!("{connect}.SidecarService");
    let (ds, ls) = (obj(dc.get("SidecarService")), obj(lc.get("SidecarService")));
    differ.fields(&sidecar, ds, ls, &[], &["Proxy"]);
    let proxy = format!("{sidecar}.Proxy");
    let (dp, lp) = (obj(ds.get("Proxy")), obj(ls.get("Proxy")));
    differ.fields(&proxy, dp, lp, &[], &["Upstreams"]);
    differ.named(
        &format!("{proxy}.Upstreams"),
        dp.get("Upstreams"),
        lp.get("Upstreams"),
        name_of("DestinationName"),
        nothing_injected,
        |differ, p, d, l| differ.open(p, Some(d), Some(l)),
    );
}

fn task(differ: &mut Differ, path: &str, d: &Value, l: &Value) {
    let (dm, lm) = (obj(Some(d)), obj(Some(l)));
    differ.fields(
        path,
        dm,
        lm,
        &["Vault", "Driver"],
        &["Config", "Env", "Resources"],
    );
    for field in ["Config", "Env"] {
        differ.closed(&format!("{path}.{field}"), dm.get(field), lm.get(field));
    }
    let resources = format!("{path}.Resources");
    differ.fields(
        &resources,
        obj(dm.get("Resources")),
        obj(lm.get("Resources")),
        &["MemoryMaxMB"],
        &[],
    );
}

/// Owned fields of a desired Consul config entry that differ from the live entry
/// (`GET /v1/config/<kind>/<name>`). See the module docs for the rules.
#[must_use]
pub fn diff_config_entry(desired: &Value, live: &Value) -> Vec<FieldChange> {
    let (d, l) = (
        normalise_config_entry(desired),
        normalise_config_entry(live),
    );
    let (dm, lm) = (obj(Some(&d)), obj(Some(&l)));
    let mut differ = Differ::default();
    let custom = ["Meta", "Sources", "Rules", "Parents", "Hostnames"];
    differ.fields("", dm, lm, &[], &custom);
    differ.closed(
        "Meta",
        Some(&owned_meta(dm.get("Meta"))),
        Some(&owned_meta(lm.get("Meta"))),
    );
    match dm.get("Kind").and_then(Value::as_str) {
        Some("service-intentions") => {
            differ.named(
                "Sources",
                dm.get("Sources"),
                lm.get("Sources"),
                source_id,
                nothing_injected,
                source,
            );
        }
        Some("http-route") => {
            differ.open("Hostnames", dm.get("Hostnames"), lm.get("Hostnames"));
            differ.positional(
                "Parents",
                dm.get("Parents"),
                lm.get("Parents"),
                |differ, p, d, l| {
                    differ.open(p, Some(d), Some(l));
                },
            );
            differ.positional("Rules", dm.get("Rules"), lm.get("Rules"), route_rule);
        }
        _ => {
            for k in custom.iter().skip(1) {
                differ.open(k, dm.get(*k), lm.get(*k));
            }
        }
    }
    differ.changes
}

/// A source's identity: its name, plus `@peer:<p>` / `@sameness-group:<g>` when set.
fn source_id(source: &Value) -> Option<String> {
    let mut id = source.get("Name")?.as_str()?.to_owned();
    for (field, tag) in [("Peer", "peer"), ("SamenessGroup", "sameness-group")] {
        if let Some(v) = source
            .get(field)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
        {
            id.push_str(&format!("@{tag}:{v}"));
        }
    }
    Some(id)
}

fn source(differ: &mut Differ, path: &str, d: &Value, l: &Value) {
    let (dm, lm) = (obj(Some(d)), obj(Some(l)));
    differ.fields(path, dm, lm, &["Action"], &["Permissions"]);
    let permissions = format!("{path}.Permissions");
    differ.positional(
        &permissions,
        dm.get("Permissions"),
        lm.get("Permissions"),
        |differ, p, d, l| {
            differ.closed(p, Some(d), Some(l));
        },
    );
}

fn route_rule(differ: &mut Differ, path: &str, d: &Value, l: &Value) {
    let (dm, lm) = (obj(Some(d)), obj(Some(l)));
    let custom = ["Matches", "Filters", "Services"];
    differ.fields(path, dm, lm, &[], &custom);
    differ.positional(
        &format!("{path}.Matches"),
        dm.get("Matches"),
        lm.get("Matches"),
        |differ, p, d, l| {
            differ.closed(p, Some(d), Some(l));
        },
    );
    differ.closed(
        &format!("{path}.Filters"),
        dm.get("Filters"),
        lm.get("Filters"),
    );
    differ.named(
        &format!("{path}.Services"),
        dm.get("Services"),
        lm.get("Services"),
        name_of("Name"),
        nothing_injected,
        |differ, p, d, l| differ.closed(p, Some(d), Some(l)),
    );
}

/// Differences between two policy texts, compared parsed (see the module docs): the
/// marker (path `marker`) and `path` blocks (path `path["<pattern>"]`, or
/// `path["<pattern>"].<field>` for a field of a block on both sides). A text that does
/// not parse is one change at path `policy` carrying both texts.
#[must_use]
pub fn diff_policy(desired_hcl: &str, live_hcl: &str) -> Vec<FieldChange> {
    let mut differ = Differ::default();
    let (d, l) = match (parse_policy(desired_hcl), parse_policy(live_hcl)) {
        (Ok(d), Ok(l)) => (d, l),
        _ => {
            differ.change(
                "policy",
                Some(&Value::from(desired_hcl)),
                Some(&Value::from(live_hcl)),
            );
            return differ.changes;
        }
    };
    if d.marker != l.marker {
        let v = |m: Option<String>| m.map(Value::from);
        differ.change("marker", v(d.marker).as_ref(), v(l.marker).as_ref());
    }
    for (pattern, dv) in &d.paths {
        let path = format!("path[{pattern:?}]");
        match l.paths.get(pattern) {
            Some(lv) => differ.closed(&path, Some(dv), Some(lv)),
            None => differ.change(&path, Some(dv), None),
        }
    }
    for (pattern, lv) in l.paths.iter().filter(|(p, _)| !d.paths.contains_key(*p)) {
        differ.change(&format!("path[{pattern:?}]"), None, Some(lv));
    }
    differ.changes
}

/// Owned fields of a desired JWT role body that differ from the live role (the read
/// response's `data`, or the whole envelope). See the module docs for the rules.
#[must_use]
pub fn diff_role(desired: &Value, live: &Value) -> Vec<FieldChange> {
    let (d, l) = (normalise_role(desired), normalise_role(live));
    let (dm, lm) = (obj(Some(&d)), obj(Some(&l)));
    let mut differ = Differ::default();
    let closed = ["bound_claims", "claim_mappings"];
    differ.fields("", dm, lm, &closed, &closed);
    for k in closed {
        differ.closed(k, dm.get(k), lm.get(k));
    }
    differ.changes
}

/// A readable summary of `changes`, one `path: live -> desired` per line (for logs and
/// status messages); `None` when there is none.
#[must_use]
pub fn summarise(changes: &[FieldChange]) -> Option<String> {
    if changes.is_empty() {
        return None;
    }
    let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
    Some(lines.join("\n"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_removed_env_variable_is_a_change() {
        let desired = json!({"ID": "x", "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "app", "Env": {"A": "1"}}]}]});
        let live = json!({"ID": "x", "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "app", "Env": {"A": "1", "B": "2"}}]}]});
        let changes = diff_job(&desired, &live);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].path, "TaskGroups[g].Tasks[app].Env.B");
        assert_eq!(changes[0].desired, None);
        assert_eq!(changes[0].live, Some(json!("2")));
    }

    #[test]
    fn generation_is_informational_but_hash_is_not() {
        let desired = json!({"ID": "x", "Meta": {"steward.generation": "1", "steward.hash": "a", "other": "x"}});
        let live = json!({"ID": "x", "Meta": {"steward.generation": "2", "steward.hash": "a", "owner": "y"}});
        assert!(diff_job(&desired, &live).is_empty());
        let live = json!({"ID": "x", "Meta": {"steward.generation": "1", "steward.hash": "b"}});
        let changes = diff_job(&desired, &live);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path, "Meta[\"steward.hash\"]");
        assert!(summarise(&changes).unwrap().contains("\"b\" -> \"a\""));
    }

    #[test]
    fn unparsable_policies_are_one_change() {
        let changes = diff_policy("path \"a\" { capabilities = [\"read\"] }", "path \"a\" {");
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path, "policy");
    }
}
