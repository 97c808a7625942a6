//! Properties: rendering and the spec hash are deterministic and do not depend on the key
//! order of the YAML (examples with their keys permuted, and generated specs), and the
//! live form of any rendered object diffs empty.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use steward_render::{RenderContext, diff_config_entry, diff_job, diff_role, render, spec_hash};
use steward_spec::ServiceSpec;

fn ctx() -> RenderContext {
    RenderContext {
        generation: 3,
        ..RenderContext::default()
    }
}

fn examples() -> &'static [(String, String, ServiceSpec)] {
    static EXAMPLES: OnceLock<Vec<(String, String, ServiceSpec)>> = OnceLock::new();
    EXAMPLES.get_or_init(support::examples)
}

/// A small deterministic generator (xorshift64*), so a proptest seed fixes the order.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// The same document with the keys of every mapping in a random order.
fn shuffle_keys(value: &Value, rng: &mut Rng) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            for i in (1..entries.len()).rev() {
                let j = usize::try_from(rng.next() % (i as u64 + 1)).unwrap();
                entries.swap(i, j);
            }
            let out: Map<String, Value> = entries
                .into_iter()
                .map(|(k, v)| (k.clone(), shuffle_keys(v, rng)))
                .collect();
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| shuffle_keys(v, rng)).collect()),
        other => other.clone(),
    }
}

fn reloaded(stem: &str, doc: &Value, seed: u64, as_json: bool) -> (String, ServiceSpec) {
    let shuffled = shuffle_keys(doc, &mut Rng(seed | 1));
    let text = if as_json {
        serde_json::to_string_pretty(&shuffled).unwrap()
    } else {
        serde_saphyr::to_string(&shuffled).unwrap()
    };
    let spec = support::load(stem, &text);
    (text, spec)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn examples_render_identically_whatever_the_key_order(seed in any::<u64>(), as_json in any::<bool>()) {
        for (stem, text, spec) in examples() {
            let doc: Value = serde_saphyr::from_str(text).unwrap();
            let (shuffled_text, shuffled) = reloaded(stem, &doc, seed, as_json);
            prop_assert_eq!(&shuffled, spec, "{}", shuffled_text);
            let a = render(spec, &ctx()).unwrap();
            let b = render(&shuffled, &ctx()).unwrap();
            prop_assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
            prop_assert_eq!(spec_hash(spec, &ctx()).unwrap(), spec_hash(&shuffled, &ctx()).unwrap());
        }
    }

    #[test]
    fn generated_specs_render_deterministically_and_diff_empty_live(
        doc in spec_document(),
        seed in any::<u64>(),
        as_json in any::<bool>(),
    ) {
        let text = serde_json::to_string(&doc).unwrap();
        let loaded = steward_spec::load("generated", &text, None);
        prop_assert!(loaded.spec.is_some(), "{}\n{}", text, loaded.render());
        let spec = loaded.spec.unwrap();
        let a = render(&spec, &ctx()).unwrap();
        prop_assert_eq!(&a, &render(&spec, &ctx()).unwrap());

        let (_, shuffled) = reloaded("generated", &doc, seed, as_json);
        let b = render(&shuffled, &ctx()).unwrap();
        prop_assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());

        // Neither the generation nor the replica override moves the hash.
        let other = RenderContext { generation: 99, replicas: Some(7), ..ctx() };
        prop_assert_eq!(&a.hash, &spec_hash(&spec, &other).unwrap());

        let live_job = support::canonicalise_like_nomad(&a.nomad_job.job);
        let changes = diff_job(&a.nomad_job.job, &live_job);
        prop_assert!(changes.is_empty(), "{:#?}", changes);
        for entry in a.config_entries() {
            let changes = diff_config_entry(&entry.body, &support::normalise_like_consul(&entry.body));
            prop_assert!(changes.is_empty(), "{}: {:#?}", entry.kind, changes);
        }
        if let Some(role) = &a.vault_role {
            prop_assert!(diff_role(&role.body, &support::vault_role_read_form(&role.body)).is_empty());
        }
    }
}

/// Valid ServiceSpec documents covering every renderer feature.
fn spec_document() -> impl Strategy<Value = Value> {
    let names = prop::sample::select(vec!["alpha", "beta-svc", "gamma2"]);
    let namespaces = prop::sample::select(vec!["default", "team-a", "ops"]);
    let env = prop::collection::btree_map("[A-Z][A-Z_]{0,6}", "[a-z0-9:/.]{0,8}", 0..4);
    let labels = prop::collection::btree_map("[a-z]{1,5}", "[a-z0-9]{1,5}", 0..3);
    let upstreams = prop::sample::subsequence(vec!["up-one", "up-two", "up-three"], 0..=3);
    let sources = prop::sample::subsequence(vec!["src-a", "src-b", "*"], 0..=3);
    let secrets = prop::sample::subsequence(
        vec![
            "secret/data/app/*",
            "secret/metadata/app/*",
            "kv/data/shared/config",
            "database/creds/app",
        ],
        0..=4,
    );
    let hosts = prop::sample::subsequence(
        vec!["a.example.com", "b.example.com", "*.c.example.com"],
        0..=3,
    );
    let shape = prop::sample::select(vec!["service", "worker", "periodic"]);
    (
        (names, namespaces, shape, any::<bool>(), 0u32..6, env, labels),
        (upstreams, sources, any::<bool>(), secrets, hosts, any::<bool>(), 0u32..4),
    )
        .prop_map(|((name, ns, shape, docker, replicas, env, labels), (ups, srcs, l7, secrets, hosts, http_check, retries))| {
            let mut spec = Map::new();
            if docker {
                spec.insert("image".into(), json!("registry.example/app:1.2.3"));
            } else {
                spec.insert("command".into(), json!("/usr/local/bin/app"));
                spec.insert("args".into(), json!(["--flag", "x"]));
            }
            if !env.is_empty() {
                spec.insert("env".into(), json!(env));
            }
            let upstreams: Vec<Value> = ups
                .iter()
                .enumerate()
                .map(|(i, s)| json!({"service": s, "localPort": 9001 + i}))
                .collect();
            if !upstreams.is_empty() {
                spec.insert("upstreams".into(), json!(upstreams));
            }
            if !secrets.is_empty() {
                let secrets: Vec<Value> = secrets
                    .iter()
                    .map(|p| json!({"path": p, "capabilities": ["read", "list"]}))
                    .collect();
                spec.insert("secrets".into(), json!(secrets));
            }
            match shape {
                "periodic" => {
                    spec.insert("periodic".into(), json!({"cron": "15 3 * * *", "timeZone": "Europe/Paris"}));
                }
                "worker" => {
                    spec.insert("replicas".into(), json!(replicas));
                }
                _ => {
                    spec.insert("replicas".into(), json!(replicas));
                    spec.insert("port".into(), json!(8080));
                    spec.insert("ports".into(), json!([{"name": "metrics", "port": 9100}]));
                    if http_check {
                        spec.insert("check".into(), json!({"http": "/health"}));
                    }
                    let allow: Vec<Value> = srcs
                        .iter()
                        .map(|s| if l7 { json!({"service": s, "methods": ["GET"], "pathPrefix": "/api"}) } else { json!({"service": s}) })
                        .collect();
                    if !allow.is_empty() {
                        spec.insert("allowFrom".into(), json!(allow));
                    }
                    let routes: Vec<Value> = hosts
                        .iter()
                        .flat_map(|h| {
                            [
                                json!({"host": h}),
                                json!({"host": h, "pathPrefix": "/v1/", "rewrite": "/", "timeout": "90s", "retries": retries}),
                            ]
                        })
                        .collect();
                    if !routes.is_empty() {
                        spec.insert("edge".into(), json!({"routes": routes}));
                    }
                }
            }
            let mut metadata = json!({"name": name, "namespace": ns});
            if !labels.is_empty() {
                metadata["labels"] = json!(labels);
            }
            json!({"apiVersion": "steward/v1", "kind": "ServiceSpec", "metadata": metadata, "spec": spec})
        })
}

#[test]
fn the_key_shuffle_really_reorders_and_the_yaml_reloads() {
    let (stem, text, spec) = &examples()[0];
    let doc: Value = serde_saphyr::from_str(text).unwrap();
    let mut reordered = 0;
    for seed in 1..20u64 {
        let shuffled = shuffle_keys(&doc, &mut Rng(seed | 1));
        let keys = |v: &Value| {
            v["spec"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        if keys(&shuffled) != keys(&doc) {
            reordered += 1;
        }
        assert_eq!(&reloaded(stem, &doc, seed, false).1, spec);
    }
    assert!(
        reordered > 10,
        "the shuffle barely reorders: {reordered}/19"
    );
}
