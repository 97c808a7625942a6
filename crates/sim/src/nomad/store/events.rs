//! The event buffer behind `/v1/event/stream`: frames (every event of one index),
//! events with their payloads, and emitting them.

use super::*;

/// One frame of the event stream: every event of one index.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub(crate) index: u64,
    pub(crate) events: Vec<Arc<Event>>,
}

/// One event. Payloads are kept as what they describe — a job as its shared
/// serialisation plus the values its in-place fields had ([`JobSnapshot`]; a job is
/// large and changes in place soon after, so copying it would cost far more), the
/// other objects as copies — and turned into JSON only when a subscriber reads them:
/// most events leave the buffer unread.
#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) topic: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) key: String,
    pub(crate) namespace: String,
    pub(crate) filter_keys: Vec<String>,
    pub(crate) payload: Payload,
}

/// What an event carries.
#[derive(Debug)]
pub(crate) enum Payload {
    /// `{"Job": <job>}`.
    Job(JobSnapshot),
    /// `{"Allocation": <allocation stub>}`.
    Allocation(Box<Alloc>),
    /// `{"Deployment": <deployment>}`.
    Deployment(Box<Deployment>),
    /// `{"Evaluation": <evaluation>}`.
    Evaluation(Box<Eval>),
}

impl Payload {
    /// A job payload: the job as it is now.
    pub(crate) fn job(entry: &JobEntry) -> Payload {
        Payload::Job(entry.job_snapshot())
    }
}

impl Event {
    /// The event's JSON (`FilterKeys`, `Index`, `Key`, `Namespace`, `Payload`,
    /// `Topic`, `Type`, as the event object serialises), appended to `out`.
    pub(crate) fn write_json(&self, index: u64, cfg: &NomadSimConfig, out: &mut Vec<u8>) {
        fn put<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
            let _ = serde_json::to_writer(&mut *out, v);
        }
        out.extend_from_slice(b"{\"FilterKeys\":");
        if self.filter_keys.is_empty() {
            out.extend_from_slice(b"null");
        } else {
            put(out, &self.filter_keys);
        }
        out.extend_from_slice(format!(",\"Index\":{index},\"Key\":").as_bytes());
        put(out, &self.key);
        out.extend_from_slice(b",\"Namespace\":");
        put(out, &self.namespace);
        out.extend_from_slice(b",\"Payload\":{");
        match &self.payload {
            Payload::Job(job) => {
                out.extend_from_slice(b"\"Job\":");
                job.write(out);
            }
            Payload::Allocation(a) => {
                out.extend_from_slice(b"\"Allocation\":");
                put(out, &a.stub(&cfg.node_id, &cfg.node_name));
            }
            Payload::Deployment(d) => {
                out.extend_from_slice(b"\"Deployment\":");
                put(out, d.as_ref());
            }
            Payload::Evaluation(e) => {
                out.extend_from_slice(b"\"Evaluation\":");
                put(out, e.as_ref());
            }
        }
        out.extend_from_slice(b"},\"Topic\":");
        put(out, self.topic);
        out.extend_from_slice(b",\"Type\":");
        put(out, self.kind);
        out.push(b'}');
    }
}

impl Inner {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn emit(
        &mut self,
        cfg: &NomadSimConfig,
        index: u64,
        topic: &'static str,
        kind: &'static str,
        key: &str,
        namespace: &str,
        filter_keys: Vec<String>,
        payload: Payload,
    ) {
        let event = Arc::new(Event {
            topic,
            kind,
            key: key.to_string(),
            namespace: namespace.to_string(),
            filter_keys,
            payload,
        });
        match self.events.back_mut() {
            Some(f) if f.index == index => f.events.push(event),
            _ => {
                self.events.push_back(Frame {
                    index,
                    events: vec![event],
                });
                while self.events.len() > cfg.event_buffer_size.max(1) {
                    self.events.pop_front();
                }
            }
        }
    }

    pub(super) fn emit_job(
        &mut self,
        cfg: &NomadSimConfig,
        index: u64,
        kind: &'static str,
        key: &JobKey,
    ) {
        if let Some(payload) = self.jobs.get(key).map(Payload::job) {
            self.emit(cfg, index, "Job", kind, &key.1, &key.0, Vec::new(), payload);
        }
    }

    pub(super) fn emit_alloc(
        &mut self,
        cfg: &NomadSimConfig,
        index: u64,
        kind: &'static str,
        id: &str,
    ) {
        let Some(a) = self.allocs.get(id) else { return };
        let mut keys = vec![a.job_id.clone()];
        if !a.deployment_id.is_empty() {
            keys.push(a.deployment_id.clone());
        }
        let ns = a.namespace.clone();
        let payload = Payload::Allocation(Box::new(a.clone()));
        self.emit(cfg, index, "Allocation", kind, id, &ns, keys, payload);
    }

    pub(super) fn emit_deployment(
        &mut self,
        cfg: &NomadSimConfig,
        index: u64,
        kind: &'static str,
        id: &str,
    ) {
        let Some(d) = self.deployments.get(id) else {
            return;
        };
        let (ns, job) = (d.namespace.clone(), d.job_id.clone());
        let payload = Payload::Deployment(Box::new(d.clone()));
        self.emit(cfg, index, "Deployment", kind, id, &ns, vec![job], payload);
    }

    pub(super) fn emit_eval(&mut self, cfg: &NomadSimConfig, index: u64, id: &str) {
        let Some(e) = self.evals.get(id) else { return };
        let (ns, job) = (e.namespace.clone(), e.job_id.clone());
        let payload = Payload::Evaluation(Box::new(e.clone()));
        self.emit(
            cfg,
            index,
            "Evaluation",
            "EvaluationUpdated",
            id,
            &ns,
            vec![job],
            payload,
        );
    }
}
