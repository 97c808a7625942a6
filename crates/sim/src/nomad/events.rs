//! `GET /v1/event/stream`: newline-delimited JSON frames `{"Index":N,"Events":[...]}`
//! from a bounded buffer (one frame per index), `{}` heartbeats, topic/key and
//! namespace filters, and `index=` to resume (an index older than the buffer starts
//! at the oldest frame still held, as the real event broker's `StartAtClosest` does).

use super::NomadState;
use super::acl::Authz;
use super::http::{Query, authz, error};
use super::store::Event;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::HeaderMap;
use std::sync::Arc;
use std::time::Duration;

pub(crate) fn routes() -> Router<Arc<NomadState>> {
    Router::new().route("/v1/event/stream", get(stream))
}

#[derive(Debug, Clone)]
struct TopicFilter {
    topic: String,
    key: String,
}

struct Sub {
    state: Arc<NomadState>,
    topics: Vec<TopicFilter>,
    namespace: String,
    authz: Authz,
    next: u64,
    rx: tokio::sync::watch::Receiver<u64>,
    heartbeat: tokio::time::Instant,
    cancel: tokio_util::sync::CancellationToken,
}

impl Sub {
    fn wanted(&self, e: &Event) -> bool {
        let ns = e.namespace.as_str();
        let any = self.namespace == "*" && self.state.cfg.namespace_wildcard;
        if !any && ns != self.namespace && !ns.is_empty() {
            return false;
        }
        if !ns.is_empty() && !self.authz.allow_ns(ns, "read-job") {
            return false;
        }
        self.topics.iter().any(|t| {
            (t.topic == "*" || t.topic == e.topic)
                && (t.key == "*" || e.key == t.key || e.filter_keys.contains(&t.key))
        })
    }

    /// Frames at or after `next` that have wanted events, as NDJSON.
    fn pending(&mut self) -> Option<Bytes> {
        let (oldest, newest) = self.state.read(|inner| {
            (
                inner.events.front().map(|f| f.index).unwrap_or(0),
                inner.events.back().map(|f| f.index).unwrap_or(0),
            )
        });
        // Indexes went backwards (snapshot restore): start over from the buffer.
        if newest > 0 && newest + 1 < self.next {
            self.next = oldest;
        }
        // Frames are in index order: start at the first one at or after `next`.
        let frames: Vec<(u64, Vec<Arc<Event>>)> = self.state.read(|inner| {
            let start = inner.events.partition_point(|f| f.index < self.next);
            inner
                .events
                .range(start..)
                .map(|f| (f.index, f.events.clone()))
                .collect()
        });
        let cfg = &self.state.cfg;
        let mut out = Vec::new();
        for (index, events) in frames {
            self.next = index + 1;
            let mut wanted = events.iter().filter(|e| self.wanted(e)).peekable();
            if wanted.peek().is_none() {
                continue;
            }
            // `{"Index":N,"Events":[...]}`, as the frame's JSON object serialises.
            out.extend_from_slice(format!("{{\"Index\":{index},\"Events\":[").as_bytes());
            for (n, e) in wanted.enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                e.write_json(index, cfg, &mut out);
            }
            out.extend_from_slice(b"]}\n");
        }
        if out.is_empty() {
            None
        } else {
            Some(Bytes::from(out))
        }
    }
}

async fn stream(
    State(st): State<Arc<NomadState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let a = match authz(&st, &headers, &q) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let mut topics = Vec::new();
    for t in q.all("topic") {
        let (topic, key) = t.split_once(':').unwrap_or((t, "*"));
        if topic.is_empty() {
            return error(400, &format!("Invalid topic query {t:?}"));
        }
        topics.push(TopicFilter {
            topic: topic.to_string(),
            key: if key.is_empty() {
                "*".into()
            } else {
                key.to_string()
            },
        });
    }
    if topics.is_empty() {
        topics.push(TopicFilter {
            topic: "*".into(),
            key: "*".into(),
        });
    }
    let index = match q.get("index") {
        None | Some("") => 0,
        Some(v) => match v.parse::<u64>() {
            Ok(i) => i,
            Err(_) => return error(400, "Unable to parse index: invalid syntax"),
        },
    };
    let namespace = q.namespace();
    if namespace != "*" && !a.allow_ns(&namespace, "read-job") {
        return super::http::denied();
    }
    // index=N starts at the closest frame at or after N (the oldest held when N is
    // older than the buffer).
    let oldest = st.read(|i| i.events.front().map(|f| f.index).unwrap_or(0));
    let start = if index == 0 {
        oldest
    } else {
        index.max(oldest)
    };
    let heartbeat_every = Duration::from_millis(st.cfg.event_heartbeat_ms.max(1));
    let sub = Sub {
        rx: st.clock.subscribe(),
        cancel: st.ctx.cancel.clone(),
        state: st.clone(),
        topics,
        namespace,
        authz: a,
        next: start,
        heartbeat: tokio::time::Instant::now() + heartbeat_every,
    };
    let body = futures::stream::unfold(sub, move |mut sub| async move {
        loop {
            sub.rx.borrow_and_update();
            if let Some(bytes) = sub.pending() {
                return Some((Ok::<Bytes, std::convert::Infallible>(bytes), sub));
            }
            tokio::select! {
                () = sub.cancel.cancelled() => return None,
                changed = sub.rx.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                () = tokio::time::sleep_until(sub.heartbeat) => {
                    sub.heartbeat = tokio::time::Instant::now() + heartbeat_every;
                    return Some((Ok(Bytes::from_static(b"{}\n")), sub));
                }
            }
        }
    });
    (
        http::StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response()
}
