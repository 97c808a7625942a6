//! Nomad event stream (`GET /v1/event/stream`): newline-delimited JSON frames with `{}`
//! heartbeats (reference §9, end).

use std::collections::VecDeque;
use std::time::Duration;

use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::{Error, Product, Result};
use crate::request::RequestSpec;
use crate::transport::Transport;
use crate::util::null_default;

/// One event.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Event {
    /// Topic (`Job`, `Deployment`, `Evaluation`, `Allocation`...).
    #[serde(default)]
    pub topic: String,
    /// Type (`JobRegistered`, `JobDeregistered`, `PlanResult`...).
    #[serde(rename = "Type", default)]
    pub event_type: String,
    /// Key (job ID, deployment ID...).
    #[serde(default)]
    pub key: String,
    /// Namespace.
    #[serde(default)]
    pub namespace: String,
    /// Raft index.
    #[serde(default)]
    pub index: u64,
    /// The object (`{"Job": {...}}`...), as its JSON text.
    #[serde(default)]
    pub payload: Payload,
}

/// An event's payload kept as the JSON text it arrived as: its reader decodes the few
/// fields it needs straight from the text ([`Payload::decode`]). Building a
/// `serde_json::Value` of every job and deployment body first (and dropping it) was the
/// larger part of the event stream's cost at 10,000 jobs.
#[derive(Clone, Debug)]
pub struct Payload(Box<RawValue>);

impl Payload {
    /// The JSON text.
    #[must_use]
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Decodes the payload (or a part of it: a struct with the wanted fields only).
    ///
    /// # Errors
    ///
    /// The text does not match `T`.
    pub fn decode<'a, T: Deserialize<'a>>(&'a self) -> serde_json::Result<T> {
        serde_json::from_str(self.0.get())
    }

    /// The payload as a JSON value (tests, diagnostics).
    #[must_use]
    pub fn to_value(&self) -> Value {
        self.decode().unwrap_or(Value::Null)
    }

    /// A payload holding `value` (tests, fixtures).
    #[must_use]
    pub fn from_value(value: &Value) -> Self {
        serde_json::value::to_raw_value(value).map_or_else(|_| Self::default(), Self)
    }
}

impl Default for Payload {
    /// `null`, as a missing payload decoded to before it was kept as text.
    fn default() -> Self {
        Self(RawValue::NULL.to_owned())
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Box::<RawValue>::deserialize(d).map(Self)
    }
}

/// A data frame: the events of one index.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventFrame {
    /// Index to resume after.
    #[serde(default)]
    pub index: u64,
    /// Events.
    #[serde(default, deserialize_with = "null_default")]
    pub events: Vec<Event>,
}

/// Splits a byte stream into frames; heartbeats (`{}`) and blank lines are dropped.
#[derive(Debug, Default)]
pub struct EventDecoder {
    buf: Vec<u8>,
}

impl EventDecoder {
    /// A fresh decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns every complete line decoded (an `Err` holds the decode
    /// failure text of that line).
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Result<EventFrame, String>> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        // Lines are decoded in place and the buffer shifted once per chunk: draining
        // each line moved the rest of the buffer once per line.
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos;
            if let Some(frame) = decode_line(&self.buf[start..end]) {
                out.push(frame);
            }
            start = end + 1;
        }
        self.buf.drain(..start);
        out
    }

    /// Decodes what is left after the stream ended (a last line without newline).
    pub fn finish(&mut self) -> Option<Result<EventFrame, String>> {
        let rest = std::mem::take(&mut self.buf);
        decode_line(&rest)
    }
}

fn decode_line(line: &[u8]) -> Option<Result<EventFrame, String>> {
    let text = std::str::from_utf8(line).map(str::trim);
    let text = match text {
        Ok(t) => t,
        Err(e) => return Some(Err(e.to_string())),
    };
    if text.is_empty() || is_empty_object(text) {
        return None;
    }
    // Straight into the typed frame (payloads stay text): no intermediate `Value`.
    Some(serde_json::from_str::<EventFrame>(text).map_err(|e| e.to_string()))
}

/// Whether `text` is a heartbeat: `{}`, with any JSON whitespace inside.
fn is_empty_object(text: &str) -> bool {
    text.strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .is_some_and(|inner| {
            inner
                .bytes()
                .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        })
}

/// Options of an event stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventStreamOptions {
    /// Topics, `Topic` or `Topic:key filter` (empty = all).
    pub topics: Vec<String>,
    /// Resume after this index (0 = from now).
    pub index: u64,
    /// Namespace (`*` for all).
    pub namespace: Option<String>,
    /// The stream ends with an `Unavailable` error when no byte (not even a heartbeat)
    /// arrives for this long. Nomad sends heartbeats every 10 s.
    pub idle_timeout: Duration,
}

impl Default for EventStreamOptions {
    fn default() -> Self {
        Self {
            topics: Vec::new(),
            index: 0,
            namespace: None,
            idle_timeout: Duration::from_secs(45),
        }
    }
}

/// `GET /v1/event/stream?topic=...&index=...&namespace=...`.
pub fn event_stream(opts: &EventStreamOptions) -> RequestSpec {
    let mut spec = RequestSpec::get("/v1/event/stream");
    for t in &opts.topics {
        spec = spec.query("topic", t);
    }
    if opts.index > 0 {
        spec = spec.query("index", opts.index);
    }
    if let Some(ns) = &opts.namespace {
        spec = spec.query("namespace", ns);
    }
    spec
}

struct StreamState {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    decoder: EventDecoder,
    pending: VecDeque<Result<EventFrame>>,
    done: bool,
    idle: Duration,
    spec: RequestSpec,
    transport: Transport,
}

/// Opens the stream and yields frames; errors end the stream after being yielded
/// (reconnect with the last frame's index).
pub(crate) async fn open(
    transport: &Transport,
    opts: &EventStreamOptions,
) -> Result<impl Stream<Item = Result<EventFrame>> + Send + 'static> {
    let spec = event_stream(opts);
    let resp = transport.open_stream(&spec).await?;
    let state = StreamState {
        body: resp.bytes_stream().boxed(),
        decoder: EventDecoder::new(),
        pending: VecDeque::new(),
        done: false,
        idle: opts.idle_timeout,
        spec,
        transport: transport.clone(),
    };
    Ok(futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.pending.pop_front() {
                return Some((item, st));
            }
            if st.done {
                return None;
            }
            let decode_err = |msg: String, spec: &RequestSpec| Error::Decode {
                product: Product::Nomad,
                method: spec.method.clone(),
                path: spec.path.clone(),
                message: msg,
            };
            match tokio::time::timeout(st.idle, st.body.next()).await {
                Err(_) => {
                    st.done = true;
                    st.pending.push_back(Err(Error::Unavailable {
                        product: Product::Nomad,
                        method: st.spec.method.clone(),
                        path: st.spec.path.clone(),
                        status: None,
                        message: format!("event stream idle for {:?}", st.idle),
                        source: None,
                    }));
                }
                Ok(None) => {
                    st.done = true;
                    if let Some(r) = st.decoder.finish() {
                        st.pending.push_back(r.map_err(|m| decode_err(m, &st.spec)));
                    }
                }
                Ok(Some(Err(e))) => {
                    st.done = true;
                    st.pending
                        .push_back(Err(st.transport.stream_error(&st.spec, e)));
                }
                Ok(Some(Ok(chunk))) => {
                    for r in st.decoder.push(&chunk) {
                        st.pending.push_back(r.map_err(|m| decode_err(m, &st.spec)));
                    }
                }
            }
        }
    }))
}
