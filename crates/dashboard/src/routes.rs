//! The axum handlers: read the operator's state through its handle, build the view
//! models ([`crate::view`]) and render the pages ([`crate::pages`]).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use maud::Markup;
use serde::Deserialize;
use steward_operator::{ApproveError, OperatorHandle};

use crate::pages::{self, ClusterPage, EdgeProxy, EventView, GcPage, Notice, SpecPage};
use crate::view::{self, OverviewQuery, SpecRow};

/// Events a spec page shows.
pub const SPEC_EVENTS: usize = 50;

const CSS: &str = include_str!("../assets/dashboard.css");
const JS: &str = include_str!("../assets/dashboard.js");

/// Where the cluster page finds the connected edge proxies (the edge xDS server
/// implements it; without one the panel says none runs).
pub trait EdgeSource: Send + Sync + 'static {
    /// The proxies connected now.
    fn proxies(&self) -> Vec<EdgeProxy>;
}

#[derive(Clone)]
struct App {
    handle: OperatorHandle,
    edge: Option<Arc<dyn EdgeSource>>,
}

/// The edge xDS server's proxies, as the cluster page lists them: the versions each
/// acknowledged per type (`cds`, `eds`, `lds`, `rds`) and its last refusal.
impl EdgeSource for steward_edge::Edge {
    fn proxies(&self) -> Vec<EdgeProxy> {
        let mut proxies: Vec<EdgeProxy> = steward_edge::Edge::proxies(self)
            .into_iter()
            .map(|p| {
                let acked: Vec<String> = p
                    .types
                    .iter()
                    .filter_map(|(kind, t)| Some(format!("{kind} {}", t.acked_version.as_ref()?)))
                    .collect();
                EdgeProxy {
                    address: p.peer.clone().unwrap_or_else(|| "-".to_owned()),
                    acked_version: (!acked.is_empty()).then(|| acked.join(", ")),
                    rejected: p
                        .last_nack()
                        .map(|n| format!("version {}: {}", n.version, n.message)),
                    node: p.node_id,
                }
            })
            .collect();
        proxies.sort_by(|a, b| (&a.node, &a.address).cmp(&(&b.node, &b.address)));
        proxies
    }
}

/// The dashboard's routes on `handle` (merge them with [`steward_operator::api::router`]
/// at `/`); the cluster page lists the operator's edge proxies when it serves xDS.
pub fn router(handle: OperatorHandle) -> Router {
    let edge = handle
        .edge()
        .map(|edge| Arc::new(edge) as Arc<dyn EdgeSource>);
    router_with(handle, edge)
}

/// [`router`], with a source of connected edge proxies for the cluster page.
pub fn router_with(handle: OperatorHandle, edge: Option<Arc<dyn EdgeSource>>) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/specs/{ns}/{name}", get(spec))
        .route("/gc", get(gc))
        .route("/gc/approve", post(gc_approve))
        .route("/cluster", get(cluster))
        .route("/assets/dashboard.css", get(css))
        .route("/assets/dashboard.js", get(js))
        .with_state(App { handle, edge })
}

fn page(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        // Pages show live state: never serve one from a cache.
        [(header::CACHE_CONTROL, "no-store")],
        Html(markup.into_string()),
    )
        .into_response()
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        JS,
    )
        .into_response()
}

/// Every spec as an overview row ([`view::rows_of`] on the operator's state).
#[must_use]
pub fn rows(handle: &OperatorHandle) -> Vec<SpecRow> {
    let specs = handle
        .spec_keys()
        .into_iter()
        .filter_map(|key| {
            let generation = handle.spec_generation(&key)?;
            Some((key, generation))
        })
        .collect();
    view::rows_of(specs, handle.statuses())
}

async fn overview(State(app): State<App>, Query(q): Query<OverviewQuery>) -> Response {
    let now = jiff::Timestamp::now();
    let (filter, page_no, error, status) = match q.parse() {
        Ok((filter, page_no)) => (filter, page_no, None, StatusCode::OK),
        Err(e) => (
            view::Filter::default(),
            1,
            Some(e.to_string()),
            StatusCode::BAD_REQUEST,
        ),
    };
    let o = view::overview(rows(&app.handle), filter, page_no);
    page(status, pages::overview(&o, error.as_deref(), now))
}

/// The spec page's model for `key`; `None` when neither a document nor a status exists.
pub async fn spec_page(handle: &OperatorHandle, key: &str) -> Option<SpecPage> {
    let document = handle.spec_document(key);
    let status = handle.status(key);
    if document.is_none() && status.is_none() {
        return None;
    }
    let (desired, diff) = handle
        .describe(key)
        .await
        .unwrap_or((serde_json::Value::Null, serde_json::Value::Null));
    let mut events: Vec<EventView> = handle
        .recorder()
        .for_key(key, SPEC_EVENTS)
        .iter()
        .map(|e| EventView {
            time: e.time,
            type_: match e.type_ {
                steward_runtime::EventType::Normal => "Normal",
                steward_runtime::EventType::Warning => "Warning",
            }
            .to_owned(),
            reason: e.reason.clone(),
            message: e.message.clone(),
            object: e.object.clone(),
        })
        .collect();
    if events.is_empty() {
        // Not recorded by this process (a follower, or a restart): the status keeps the
        // last few.
        events = status
            .iter()
            .flat_map(|s| &s.events)
            .map(|e| EventView {
                time: e.time,
                type_: e.type_.clone(),
                reason: e.reason.clone(),
                message: e.message.clone(),
                object: e.object.clone(),
            })
            .collect();
    }
    events.sort_by_key(|e| std::cmp::Reverse(e.time));
    Some(SpecPage {
        key: key.to_owned(),
        objects: view::objects(status.as_ref(), &desired, &diff),
        plan_note: if document.is_some() {
            view::plan_note(&diff)
        } else {
            None
        },
        document,
        status,
        events,
    })
}

async fn spec(State(app): State<App>, Path((ns, name)): Path<(String, String)>) -> Response {
    let key = format!("{ns}/{name}");
    match spec_page(&app.handle, &key).await {
        Some(p) => page(StatusCode::OK, pages::spec(&p, jiff::Timestamp::now())),
        None => page(
            StatusCode::NOT_FOUND,
            pages::not_found(&format!(
                "There is no spec {key}: no document and no status."
            )),
        ),
    }
}

fn gc_page(handle: &OperatorHandle, notice: Option<Notice>) -> GcPage {
    GcPage {
        blocked: handle.gc_blocked(),
        leader: handle.is_leader(),
        token_configured: handle.config().api_token.is_some(),
        notice,
    }
}

async fn gc(State(app): State<App>) -> Response {
    page(
        StatusCode::OK,
        pages::gc(&gc_page(&app.handle, None), jiff::Timestamp::now()),
    )
}

/// The approval form's fields.
#[derive(Debug, Deserialize)]
pub struct ApproveForm {
    /// The deletion set's digest.
    pub digest: String,
    /// The operator's API token.
    pub token: String,
}

/// Whether a request comes from a page of this very site: its `Origin` (sent by
/// browsers with every form post) names the host the request was sent to. A request
/// without `Origin` (a script, `curl`) is let through: it still needs the token.
#[must_use]
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

async fn gc_approve(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<ApproveForm>,
) -> Response {
    let handle = &app.handle;
    let refuse = |status: StatusCode, why: String| {
        page(
            status,
            pages::gc(
                &gc_page(handle, Some(Notice::Refused(why))),
                jiff::Timestamp::now(),
            ),
        )
    };
    if !same_origin(&headers) {
        return refuse(
            StatusCode::FORBIDDEN,
            "the form was posted from another site".to_owned(),
        );
    }
    let Some(token) = handle.config().api_token.as_ref() else {
        return refuse(
            StatusCode::FORBIDDEN,
            "this operator runs without an API token (STEWARD_API_TOKEN or \
             STEWARD_API_TOKEN_FILE): nothing can be approved through it"
                .to_owned(),
        );
    };
    if !token.matches(form.token.trim()) {
        tracing::warn!("dashboard: a GC approval with a wrong API token was refused");
        return refuse(
            StatusCode::UNAUTHORIZED,
            "that is not this operator's API token".to_owned(),
        );
    }
    match handle.approve_gc(&form.digest) {
        Ok(()) => {
            tracing::info!(digest = %form.digest, "dashboard: GC deletion set approved");
            page(
                StatusCode::ACCEPTED,
                pages::gc(
                    &gc_page(handle, Some(Notice::Approved(form.digest.clone()))),
                    jiff::Timestamp::now(),
                ),
            )
        }
        Err(e) => {
            let status = match &e {
                ApproveError::NothingBlocked => StatusCode::NOT_FOUND,
                ApproveError::DigestMismatch { .. } => StatusCode::CONFLICT,
                ApproveError::NotLeader => StatusCode::SERVICE_UNAVAILABLE,
            };
            refuse(status, e.to_string())
        }
    }
}

async fn cluster(State(app): State<App>) -> Response {
    let p = ClusterPage {
        detected: app.handle.cluster(),
        caches: app.handle.cache_health(),
        edge: app.edge.as_ref().map(|e| e.proxies()),
    };
    page(StatusCode::OK, pages::cluster(&p))
}
