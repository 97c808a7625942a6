//! [`LockBackend`] on the `steward-hashi` Consul client.

use std::time::Duration;

use steward_hashi::consul::{TxnOp, TxnOutcome};

use super::{Error, LOCK_FLAG_VALUE, LockBackend, LockState, Result, SessionSpec};

/// [`LockBackend`] on a [`steward_hashi::ConsulClient`].
#[derive(Clone, Debug)]
pub struct ConsulLock {
    client: steward_hashi::ConsulClient,
}

impl ConsulLock {
    /// Uses `client` for every call.
    pub fn new(client: steward_hashi::ConsulClient) -> Self {
        Self { client }
    }
}

fn backend(op: &'static str) -> impl FnOnce(steward_hashi::Error) -> Error {
    move |e| match e {
        steward_hashi::Error::SessionNotFound { id } => Error::SessionNotFound { id },
        other => Error::Backend {
            op,
            source: Box::new(other),
        },
    }
}

impl LockBackend for ConsulLock {
    async fn create_session(&self, spec: &SessionSpec) -> Result<String> {
        let body = steward_hashi::consul::SessionCreate::ttl_only(spec.name.clone(), spec.ttl)
            .lock_delay(spec.lock_delay);
        self.client
            .session_create(&body)
            .await
            .map_err(backend("create session"))
    }

    async fn renew_session(&self, id: &str) -> Result<Option<Duration>> {
        let info = self
            .client
            .session_renew(id)
            .await
            .map_err(backend("renew session"))?;
        Ok(info.ttl)
    }

    async fn destroy_session(&self, id: &str) -> Result<()> {
        self.client
            .session_destroy(id)
            .await
            .map(|_| ())
            .map_err(backend("destroy session"))
    }

    async fn acquire(&self, key: &str, session: &str, value: &[u8]) -> Result<bool> {
        self.client
            .kv_acquire(key, value, session, Some(LOCK_FLAG_VALUE))
            .await
            .map_err(backend("acquire"))
    }

    async fn release(&self, key: &str, session: &str) -> Result<bool> {
        self.client
            .kv_release(key, &[], session, Some(LOCK_FLAG_VALUE))
            .await
            .map_err(backend("release"))
    }

    async fn read_lock(&self, key: &str, index: u64, wait: Duration) -> Result<LockState> {
        let opts = steward_hashi::QueryOptions::blocking(index, wait).consistent();
        let r = self
            .client
            .kv_get(key, &opts)
            .await
            .map_err(backend("read lock key"))?;
        Ok(match r.value {
            None => LockState {
                index: r.meta.index,
                ..LockState::default()
            },
            Some(pair) => LockState {
                index: r.meta.index,
                exists: true,
                holder: pair.session,
                lock_index: pair.lock_index,
                flags: pair.flags,
            },
        })
    }

    async fn txn(&self, ops: Vec<TxnOp>) -> Result<TxnOutcome> {
        self.client
            .txn(&ops, &steward_hashi::QueryOptions::new())
            .await
            .map(|r| r.value)
            .map_err(backend("txn"))
    }
}
