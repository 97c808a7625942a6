//! The simulator's own admin API, served on every product's listener under `/_sim/v1/`:
//!
//! - `GET /_sim/v1/faults`: every active fault.
//! - `POST /_sim/v1/faults`: add one fault. Request-level kinds (`latency`, `error`,
//!   `reset`, `stall`) take a [`FaultRule`] body, e.g.
//!   `{"kind":"error","product":"consul","pathPrefix":"/v1/kv","status":503,"rate":0.5}`
//!   and answer `{"id": N}`. State-level kinds:
//!   `{"kind":"indexReset","product":"consul"}`,
//!   `{"kind":"leaderLoss","product":"nomad","durationMs":5000}` (no duration = until
//!   cleared), `{"kind":"leaderRestore","product":"nomad"}`,
//!   `{"kind":"vaultSealed","sealed":true}`,
//!   `{"kind":"failAllocations","namespace":"trading","job":"order-api","failing":true}`.
//! - `DELETE /_sim/v1/faults`: clear every fault; `DELETE /_sim/v1/faults/{id}`: one rule.
//! - `GET /_sim/v1/stats`: request counters; `DELETE /_sim/v1/stats`: reset them.

use crate::Product;
use crate::faults::{FaultController, FaultRule};
use crate::stats::RequestStats;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

#[derive(Clone)]
struct AdminState {
    faults: FaultController,
    stats: RequestStats,
}

#[derive(Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
enum StateFault {
    IndexReset {
        product: Product,
    },
    LeaderLoss {
        product: Product,
        duration_ms: Option<u64>,
    },
    LeaderRestore {
        product: Product,
    },
    VaultSealed {
        sealed: bool,
    },
    FailAllocations {
        namespace: String,
        job: String,
        failing: bool,
    },
}

/// The admin routes, to be merged into each product's router.
pub fn router(faults: FaultController, stats: RequestStats) -> Router {
    Router::new()
        .route(
            "/_sim/v1/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/_sim/v1/faults/{id}", delete(remove_fault))
        .route("/_sim/v1/stats", get(get_stats).delete(reset_stats))
        .with_state(AdminState { faults, stats })
}

async fn list_faults(State(s): State<AdminState>) -> Response {
    Json(s.faults.view()).into_response()
}

async fn add_fault(State(s): State<AdminState>, body: axum::body::Bytes) -> Response {
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")).into_response(),
    };
    let kind = value
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or_default();
    if matches!(kind, "latency" | "error" | "reset" | "stall") {
        return match serde_json::from_value::<FaultRule>(value) {
            Ok(rule) => Json(json!({ "id": s.faults.add(rule) })).into_response(),
            Err(e) => (StatusCode::BAD_REQUEST, format!("invalid fault rule: {e}")).into_response(),
        };
    }
    let fault: StateFault = match serde_json::from_value(value) {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("invalid fault: {e}")).into_response(),
    };
    match fault {
        StateFault::IndexReset { product } => {
            if !s.faults.reset_indexes(product) {
                return (StatusCode::CONFLICT, format!("{product} is not running")).into_response();
            }
        }
        StateFault::LeaderLoss {
            product,
            duration_ms,
        } => {
            s.faults
                .lose_leader(product, duration_ms.map(Duration::from_millis));
        }
        StateFault::LeaderRestore { product } => s.faults.restore_leader(product),
        StateFault::VaultSealed { sealed } => s.faults.set_vault_sealed(sealed),
        StateFault::FailAllocations {
            namespace,
            job,
            failing,
        } => {
            s.faults.set_job_failing(&namespace, &job, failing);
        }
    }
    Json(json!({ "ok": true })).into_response()
}

async fn clear_faults(State(s): State<AdminState>) -> Response {
    s.faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn remove_fault(State(s): State<AdminState>, Path(id): Path<u64>) -> Response {
    if s.faults.remove(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (StatusCode::NOT_FOUND, format!("no fault rule {id}")).into_response()
    }
}

async fn get_stats(State(s): State<AdminState>) -> Response {
    let writes: serde_json::Map<String, serde_json::Value> = Product::ALL
        .iter()
        .map(|p| (p.as_str().to_string(), json!(s.stats.writes(*p))))
        .collect();
    let statuses: Vec<_> = s
        .stats
        .statuses()
        .into_iter()
        .map(|(p, code, n)| json!({"product": p, "status": code, "count": n}))
        .collect();
    Json(json!({ "requests": s.stats.snapshot(), "writes": writes, "statuses": statuses }))
        .into_response()
}

async fn reset_stats(State(s): State<AdminState>) -> Response {
    s.stats.reset();
    StatusCode::NO_CONTENT.into_response()
}
