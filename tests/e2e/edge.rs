//! The operator in `xds` edge mode: specs' routes reach the edge control plane (no
//! `http-route` entries), the verdict becomes the `EdgeRoutes` condition, and a
//! conflict's loser serves again when the winner goes.
#![allow(clippy::unwrap_used)]

use steward_e2e::{Env, WAIT, spec, wait_for};
use steward_operator::EdgeMode;
use steward_operator::status::{EDGE_ROUTES, REASON_EDGE_CONFLICT};

fn routed(name: &str) -> String {
    spec(
        "storefront",
        name,
        "image: registry.example/storefront/web:1.0\nreplicas: 0\nport: 8080\nedge:\n  routes:\n    - {host: shop.example.com, pathPrefix: /api/}\n",
    )
}

async fn edge_condition(env: &Env, key: &str) -> Result<(String, String, String), String> {
    let doc = env.status(key).await.ok_or("no status yet")?;
    let c = doc
        .conditions
        .iter()
        .find(|c| c.type_ == EDGE_ROUTES)
        .ok_or_else(|| format!("no {EDGE_ROUTES} condition: {:?}", doc.conditions))?;
    Ok((
        format!("{:?}", c.status),
        c.reason.clone(),
        c.message.clone(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xds_mode_owns_no_http_route_and_reports_conflicts_by_age() {
    let mut env = Env::start().await;
    let mut config = env.config();
    config.edge.mode = EdgeMode::Xds;
    config.edge.xds_listen = Some("127.0.0.1:0".parse().unwrap());
    let _op = env.operator_with("a", config).await;

    env.put_spec("storefront/first", &routed("first")).await;
    let (status, reason, _) = wait_for("first serves", WAIT, || async {
        let c = edge_condition(&env, "storefront/first").await?;
        if c.1 == "Serving" {
            Ok(c)
        } else {
            Err(format!("{c:?}"))
        }
    })
    .await;
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Serving"));
    let doc = env.status("storefront/first").await.unwrap();
    assert!(
        doc.objects.iter().all(|o| o.kind != "http-route"),
        "{:?}",
        doc.objects
    );

    env.put_spec("storefront/second", &routed("second")).await;
    let (_, _, message) = wait_for("second loses", WAIT, || async {
        let c = edge_condition(&env, "storefront/second").await?;
        if c.1 == REASON_EDGE_CONFLICT {
            Ok(c)
        } else {
            Err(format!("{c:?}"))
        }
    })
    .await;
    assert!(message.contains("storefront/first"), "{message}");

    env.delete_spec("storefront/first").await;
    wait_for("second serves once first is gone", WAIT, || async {
        let c = edge_condition(&env, "storefront/second").await?;
        if c.1 == "Serving" {
            Ok(())
        } else {
            Err(format!("{c:?}"))
        }
    })
    .await;
}
