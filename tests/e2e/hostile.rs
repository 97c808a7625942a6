//! Hostile specs in KV (an alias chain hundreds of KiB long, an alias bomb, bytes that
//! are not UTF-8) are `Invalid` with a located diagnostic, and never hold back the good
//! specs beside them.
#![allow(clippy::unwrap_used)]

use steward_e2e::{Env, spec, web};
use steward_operator::Phase;
use steward_spec::limits::MAX_DOCUMENT_BYTES;

/// Just under the size limit: a spec whose env is a chain of aliases, each link one
/// level deeper than the last once expanded (thousands of levels).
fn alias_chain(ns: &str, name: &str) -> String {
    let mut text = spec(
        ns,
        name,
        "image: registry.example/x:1\nenv:\n  a0: &a0 [x]\n",
    );
    let mut i = 1;
    loop {
        let link = format!("    a{i}: &a{i} [*a{}]\n", i - 1);
        if text.len() + link.len() > MAX_DOCUMENT_BYTES {
            break text;
        }
        text.push_str(&link);
        i += 1;
    }
}

/// Ten copies of ten copies of ... of ten scalars: 10^8 nodes once expanded.
fn alias_bomb(ns: &str, name: &str) -> String {
    let mut text = spec(ns, name, "image: registry.example/x:1\nenv:\n");
    text.push_str("    l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..8 {
        let copies = vec![format!("*l{}", i - 1); 10].join(", ");
        text.push_str(&format!("    l{i}: &l{i} [{copies}]\n"));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_specs_are_invalid_with_a_position_and_the_good_ones_beside_them_converge() {
    let mut env = Env::start().await;
    env.operator("a").await;

    // The hostile specs land first, so the good ones queue behind them.
    let latin1 = web("shop", "latin1", "1.0.0");
    let bad_line = latin1.lines().count() + 1;
    let mut not_utf8 = latin1.into_bytes();
    not_utf8.extend_from_slice(b"# caf\xe9\n");
    let hostile = [
        ("shop/chain", alias_chain("shop", "chain").into_bytes()),
        ("shop/bomb", alias_bomb("shop", "bomb").into_bytes()),
        ("shop/latin1", not_utf8),
    ];
    let mut generations = Vec::new();
    for (key, value) in &hostile {
        assert!(value.len() <= MAX_DOCUMENT_BYTES);
        generations.push(env.put_spec_bytes(key, value).await);
    }
    let mut good = Vec::new();
    for name in ["web", "api", "cart"] {
        let key = format!("shop/{name}");
        good.push((
            key.clone(),
            env.put_spec(&key, &web("shop", name, "1.0.0")).await,
        ));
    }

    for (key, generation) in &good {
        env.wait_synced(key, *generation).await;
    }
    let expected = [
        ("too-deep", 0),
        ("document-too-large", 0),
        // The bad byte: on the line after the spec, after `# caf`.
        ("invalid-utf8", bad_line),
    ];
    for (((key, _), generation), (code, line)) in hostile.iter().zip(&generations).zip(expected) {
        let s = env.wait_phase(key, Phase::Invalid, *generation).await;
        assert_eq!(s.diagnostics.len(), 1, "{key}: {:?}", s.diagnostics);
        let d = &s.diagnostics[0];
        assert_eq!(d.code, code, "{key}: {d:?}");
        assert!(d.line >= 1 && d.column >= 1, "{key}: {d:?}");
        if line > 0 {
            assert_eq!((d.line, d.column), (line, 6), "{key}: {d:?}");
        }
        assert!(s.message.contains(&d.message), "{key}: {}", s.message);
    }
    // Nothing was written for them, and the operator still serves changes.
    assert!(env.job("shop", "latin1").await.is_none());
    assert!(env.job("shop", "chain").await.is_none());
    let g = env.put_spec("shop/web", &web("shop", "web", "1.0.1")).await;
    env.wait_synced("shop/web", g).await;
    env.finish().await;
}
