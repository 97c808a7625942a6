//! Hostile documents: whatever is stored under the specs prefix, loading it on a small
//! stack never panics nor overflows, and every problem is a diagnostic with a position.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use steward_spec::limits::{MAX_DEPTH, MAX_DOCUMENT_BYTES};
use steward_spec::{Loaded, load, load_bytes};

/// The operator's worker threads have 2 MiB stacks (tokio's default).
const WORKER_STACK: usize = 2 << 20;

const HEADER: &str = "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: web}\n";

/// Runs `f` on a thread with a worker's stack; a stack overflow aborts the test binary.
fn on_worker_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(WORKER_STACK)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

fn codes(loaded: &Loaded) -> Vec<&str> {
    loaded.diagnostics.iter().map(|d| d.code.as_str()).collect()
}

/// Every diagnostic points at a line of `text`, at a column, with that line as excerpt.
fn located(text: &str, loaded: &Loaded) -> Result<(), String> {
    let lines: Vec<&str> = text.split('\n').collect();
    for d in &loaded.diagnostics {
        if d.line < 1 || d.line > lines.len() || d.column < 1 || d.end_column <= d.column {
            return Err(format!("not located: {d:?}"));
        }
        if d.excerpt != lines[d.line - 1].trim_end_matches('\r') {
            return Err(format!("excerpt is not line {}: {d:?}", d.line));
        }
    }
    if loaded.spec.is_some() == loaded.has_errors() {
        return Err("a spec with errors, or none without".to_owned());
    }
    Ok(())
}

#[test]
fn invalid_utf8_is_a_diagnostic_at_the_first_bad_byte_not_a_replacement() {
    let mut bytes = HEADER.as_bytes().to_vec();
    bytes.extend_from_slice(b"# caf\xe9 au lait\nspec: {image: 'nginx:1.27'}\n");
    let loaded = load_bytes("ns/web", &bytes, None);
    assert!(loaded.spec.is_none());
    assert_eq!(codes(&loaded), ["invalid-utf8"]);
    let d = &loaded.diagnostics[0];
    assert_eq!((d.file.as_str(), d.line, d.column), ("ns/web", 4, 6));
    assert_eq!(d.excerpt, "# caf");
    assert!(d.message.contains("0xe9"), "{}", d.message);
    // Valid bytes load as text does.
    let good = format!("{HEADER}spec: {{image: 'nginx:1.27'}}\n");
    assert!(load_bytes("ns/web", good.as_bytes(), None).spec.is_some());
}

#[test]
fn chained_aliases_thousands_of_levels_deep_are_refused_on_a_worker_stack() {
    let loaded = on_worker_stack(|| {
        let mut doc = format!("{HEADER}spec:\n  image: 'nginx:1.27'\n  env:\n    a0: &a0 [x]\n");
        for i in 1..3000 {
            doc.push_str(&format!("    a{i}: &a{i} [*a{}]\n", i - 1));
        }
        load("deep.yaml", &doc, None)
    });
    assert_eq!(codes(&loaded), ["too-deep"]);
    // `a{i}` is on line 7 + i; its alias opens level 4 + i (root, spec, env and its own
    // sequence above): level 65 in `a61`.
    assert_eq!(loaded.diagnostics[0].line, 7 + 61);
}

#[test]
fn nesting_and_size_limits_are_errors_with_positions() {
    let deep = format!(
        "{HEADER}spec: {{image: x, env: {}{}}}\n",
        "[".repeat(MAX_DEPTH),
        "]".repeat(MAX_DEPTH)
    );
    let loaded = load("deep.yaml", &deep, None);
    assert_eq!(codes(&loaded), ["too-deep"]);
    assert_eq!(loaded.diagnostics[0].line, 4);
    located(&deep, &loaded).unwrap();

    let big = format!("{HEADER}{}", "# padding\n".repeat(MAX_DOCUMENT_BYTES / 10));
    let loaded = load("big.yaml", &big, None);
    assert_eq!(codes(&loaded), ["document-too-large"]);
    located(&big, &loaded).unwrap();
}

/// A random YAML structure.
#[derive(Debug, Clone)]
enum Yaml {
    Scalar(String),
    Seq(Vec<Yaml>, bool),
    Map(Vec<(String, Yaml)>, bool),
    Anchored(u8, Box<Yaml>),
    Alias(u8),
    /// `levels` of flow sequences (or mappings) around a value, written iteratively.
    Deep(usize, bool, Box<Yaml>),
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9._/-]{0,12}",
        // Odd unicode, double-quoted with control characters escaped.
        "[\\u{0}-\\u{1f}\"\\\\a\\u{85}\\u{a0}\\u{200b}-\\u{200f}\\u{2028}\\u{202e}\\u{feff}\\u{1f600}é̀ß中]{0,16}"
            .prop_map(|s| {
                let mut out = String::from("\"");
                for c in s.chars() {
                    match c {
                        '"' | '\\' => {
                            out.push('\\');
                            out.push(c);
                        }
                        c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                        c => out.push(c),
                    }
                }
                out.push('"');
                out
            }),
        (1usize..60_000).prop_map(|n| "x".repeat(n)),
        // Junk: YAML punctuation in odd places (syntax errors).
        "[ :,\\[\\]{}&*!|>'\"#%@`?-]{1,6}",
        Just("<<".to_owned()),
    ]
}

fn key() -> impl Strategy<Value = String> {
    // A small set, so duplicate keys (and merge keys) are frequent.
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("<<".to_owned()),
        Just("spec".to_owned()),
        Just("\"a\"".to_owned()),
        "[a-z]{1,3}",
    ]
}

fn yaml() -> impl Strategy<Value = Yaml> {
    let leaf = prop_oneof![
        4 => scalar().prop_map(Yaml::Scalar),
        1 => (0u8..4).prop_map(Yaml::Alias),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            (prop::collection::vec(inner.clone(), 0..6), any::<bool>())
                .prop_map(|(items, flow)| Yaml::Seq(items, flow)),
            (
                prop::collection::vec((key(), inner.clone()), 0..6),
                any::<bool>()
            )
                .prop_map(|(entries, flow)| Yaml::Map(entries, flow)),
            (0u8..4, inner.clone()).prop_map(|(id, y)| Yaml::Anchored(id, Box::new(y))),
            (0usize..300, any::<bool>(), inner).prop_map(|(levels, seq, y)| Yaml::Deep(
                levels,
                seq,
                Box::new(y)
            )),
        ]
    })
}

/// Writes `y` at `indent` (block collections indent their children by two spaces).
fn render(y: &Yaml, indent: usize, flow: bool, out: &mut String) {
    let pad = " ".repeat(indent);
    match y {
        Yaml::Scalar(s) => out.push_str(s),
        Yaml::Alias(id) => out.push_str(&format!("*a{id}")),
        Yaml::Anchored(id, inner) => {
            out.push_str(&format!("&a{id} "));
            render(inner, indent, flow, out);
        }
        Yaml::Deep(levels, seq, inner) => {
            let (open, close) = if *seq { ("[", "]") } else { ("{k: ", "}") };
            out.push_str(&open.repeat(*levels));
            render(inner, indent, true, out);
            out.push_str(&close.repeat(*levels));
        }
        Yaml::Seq(items, own_flow) if flow || *own_flow => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render(item, indent, true, out);
            }
            out.push(']');
        }
        Yaml::Map(entries, own_flow) if flow || *own_flow => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push_str(": ");
                render(v, indent, true, out);
            }
            out.push('}');
        }
        Yaml::Seq(items, _) => {
            for item in items {
                out.push_str(&format!("\n{pad}- "));
                render(item, indent + 2, false, out);
            }
            if items.is_empty() {
                out.push_str("[]");
            }
        }
        Yaml::Map(entries, _) => {
            for (k, v) in entries {
                out.push_str(&format!("\n{pad}{k}: "));
                render(v, indent + 2, false, out);
            }
            if entries.is_empty() {
                out.push_str("{}");
            }
        }
    }
}

fn document() -> impl Strategy<Value = String> {
    prop_oneof![
        // A random structure at the root, or as the spec's env.
        (yaml(), any::<bool>()).prop_map(|(y, in_spec)| {
            let mut out = String::new();
            if in_spec {
                out.push_str(HEADER);
                out.push_str("spec:\n  image: 'nginx:1.27'\n  env: ");
                render(&y, 4, false, &mut out);
            } else {
                render(&y, 0, false, &mut out);
            }
            out.push('\n');
            out
        }),
        // Chains of aliases, each link `width` copies of the last: deep or wide.
        (1usize..3000, 1usize..4).prop_map(|(links, width)| {
            let mut out = String::from("a0: &a0 [x]\n");
            for i in 1..links {
                let copies = vec![format!("*a{}", i - 1); width].join(", ");
                out.push_str(&format!("a{i}: &a{i} [{copies}]\n"));
            }
            out
        }),
        // Around the size limit.
        (MAX_DOCUMENT_BYTES - 64..MAX_DOCUMENT_BYTES + 64)
            .prop_map(|n| format!("a: {}\n", "y".repeat(n.saturating_sub(4)))),
    ]
}

#[test]
fn random_yaml_never_panics_nor_overflows_a_worker_stack_and_every_error_has_a_position() {
    let outcome = on_worker_stack(|| {
        let mut runner = TestRunner::new(Config {
            cases: 256,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&document(), |text| {
                let loaded = load("fuzz.yaml", &text, None);
                located(&text, &loaded).map_err(TestCaseError::fail)
            })
            .map_err(|e| e.to_string())
    });
    outcome.unwrap();
}
