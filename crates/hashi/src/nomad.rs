//! Nomad client: jobs (register with `EnforceIndex`, plan with diff, read, list, stop,
//! purge, versions), deployments, allocations, evaluations, and job change streams.

pub mod alloc;
pub mod diff;
mod env;
pub mod events;
pub mod job;

use std::time::Duration;

use futures::Stream;
use serde_json::Value;

pub use alloc::{AllocationStub, Deployment, DeploymentState, Evaluation, TaskGroups};
pub use diff::{
    DesiredUpdates, DiffType, FieldDiff, JobDiff, ObjectDiff, PlanAnnotations, PlanResponse,
    TaskDiff, TaskGroupDiff,
};
pub use env::NomadConfig;
pub use events::{Event, EventDecoder, EventFrame, EventStreamOptions, Payload};
pub use job::{Job, JobListStub, JobVersions, JobView, JobWriteResponse, RegisterOptions};

use crate::config::ConfigError;
use crate::error::Result;
use crate::request::{QueryOptions, WriteOptions};
use crate::response::Response;
use crate::transport::Transport;
use crate::watch::{WatchConfig, watch};

/// Typed Nomad HTTP API client. Cheap to clone; `Debug` never shows the token.
#[derive(Clone, Debug)]
pub struct NomadClient {
    transport: Transport,
}

impl NomadClient {
    /// Builds a client.
    ///
    /// # Errors
    /// [`ConfigError`] for unusable TLS files or settings.
    pub fn new(config: NomadConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            transport: Transport::new(config.endpoint())?,
        })
    }

    /// Builds a client from the `NOMAD_*` environment variables.
    ///
    /// # Errors
    /// [`ConfigError`] for unusable variables.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::new(NomadConfig::from_env()?)
    }

    /// The same client, also reporting every request attempt to `observer` (metrics).
    #[must_use]
    pub fn with_observer(&self, observer: crate::transport::Observer) -> Self {
        Self {
            transport: self.transport.with_observer(observer),
        }
    }

    /// The executor.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Registers a job. With `enforce_index`, a lost race is [`crate::Error::CasConflict`].
    ///
    /// # Errors
    /// `CasConflict`, `InvalidRequest` (validation), transport, status or decode errors.
    pub async fn register_job(
        &self,
        job: &Value,
        opts: &RegisterOptions,
    ) -> Result<JobWriteResponse> {
        self.transport
            .call(job::register(job, opts)?, job::parse_write)
            .await
    }

    /// Plans a job (dry run) with its diff against the stored version.
    ///
    /// # Errors
    /// `InvalidRequest` (validation), transport, status or decode errors.
    pub async fn plan_job(&self, job: &Value, namespace: Option<&str>) -> Result<PlanResponse> {
        self.transport
            .call(job::plan(job, true, namespace)?, job::parse_plan)
            .await
    }

    /// Reads a job; `None` when unknown.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn get_job(&self, id: &str, opts: &QueryOptions) -> Result<Response<Option<Job>>> {
        self.transport
            .call(job::get(id, opts)?, job::parse_get)
            .await
    }

    /// Lists jobs (`namespace("*")` in `opts` for all namespaces).
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn list_jobs(
        &self,
        prefix: Option<&str>,
        with_meta: bool,
        opts: &QueryOptions,
    ) -> Result<Response<Vec<JobListStub>>> {
        self.transport
            .call(job::list(prefix, with_meta, opts)?, job::parse_list)
            .await
    }

    /// Stops (`purge = false`, the job stays as a new stopped version) or purges a job.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn deregister_job(
        &self,
        id: &str,
        purge: bool,
        opts: &WriteOptions,
    ) -> Result<JobWriteResponse> {
        self.transport
            .call(job::deregister(id, purge, opts)?, job::parse_write)
            .await
    }

    /// Reads the stored versions of a job, newest first; `None` when unknown.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn job_versions(
        &self,
        id: &str,
        diffs: bool,
        opts: &QueryOptions,
    ) -> Result<Response<Option<JobVersions>>> {
        self.transport
            .call(job::versions(id, diffs, opts)?, job::parse_versions)
            .await
    }

    /// The job's latest deployment; `None` when there is none.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn latest_deployment(
        &self,
        id: &str,
        opts: &QueryOptions,
    ) -> Result<Response<Option<Deployment>>> {
        self.transport
            .call(
                alloc::latest_deployment(id, opts)?,
                alloc::parse_latest_deployment,
            )
            .await
    }

    /// The job's allocations (`all` includes earlier jobs with the same ID).
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn job_allocations(
        &self,
        id: &str,
        all: bool,
        opts: &QueryOptions,
    ) -> Result<Response<Vec<AllocationStub>>> {
        self.transport
            .call(alloc::allocations(id, all, opts)?, alloc::parse_allocations)
            .await
    }

    /// The job's evaluations.
    ///
    /// # Errors
    /// Transport, status or decode errors.
    pub async fn job_evaluations(
        &self,
        id: &str,
        opts: &QueryOptions,
    ) -> Result<Response<Vec<Evaluation>>> {
        self.transport
            .call(alloc::evaluations(id, opts)?, alloc::parse_evaluations)
            .await
    }

    /// Opens `/v1/event/stream`. The stream ends after yielding a transport error or an
    /// idle timeout; reopen with the last frame's index.
    ///
    /// # Errors
    /// Connection and status errors when opening.
    pub async fn event_stream(
        &self,
        opts: &EventStreamOptions,
    ) -> Result<impl Stream<Item = Result<EventFrame>> + Send + 'static> {
        events::open(&self.transport, opts).await
    }

    /// Watches the job list with blocking queries (`/v1/jobs?index=`), yielding the
    /// list whenever it changes. `query` sets namespace/prefix filters; its index and
    /// wait are managed by the watch.
    pub fn watch_jobs(
        &self,
        prefix: Option<String>,
        with_meta: bool,
        query: QueryOptions,
        wait: Duration,
        config: WatchConfig,
    ) -> impl Stream<Item = Result<Response<Vec<JobListStub>>>> + Send + 'static {
        let client = self.clone();
        watch(
            move |index| {
                let client = client.clone();
                let prefix = prefix.clone();
                let opts = query.clone().with_index(index).with_wait(wait);
                async move { client.list_jobs(prefix.as_deref(), with_meta, &opts).await }
            },
            config,
        )
    }
}
