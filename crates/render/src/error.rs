//! Why a spec could not be rendered.

/// A spec that the renderer cannot turn into objects.
///
/// Loading and validation (`steward-spec`) reject these documents first; the renderer
/// still refuses them rather than writing objects a server would reject or that would
/// silently drop part of the spec.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither `image` nor `command` is set, or both are.
    #[error("spec {key}: set exactly one of `image` (docker) and `command` (exec)")]
    Workload {
        /// The spec key `<ns>/<name>`.
        key: String,
    },
    /// An inbound feature (check, `allowFrom`, edge routes) is used without the main `port`.
    #[error("spec {key}: `{feature}` needs `port` (nothing can reach the service without it)")]
    NeedsPort {
        /// The spec key `<ns>/<name>`.
        key: String,
        /// The spec field that needs the port.
        feature: &'static str,
    },
    /// A feature of long-running services is used on a periodic batch job.
    #[error("spec {key}: `{feature}` cannot be used together with `periodic`")]
    NotForPeriodic {
        /// The spec key `<ns>/<name>`.
        key: String,
        /// The spec field that periodic jobs do not support.
        feature: &'static str,
    },
    /// An L7 feature (edge routes, L7 `allowFrom`) on a service whose protocol is `tcp`.
    #[error("spec {key}: `{feature}` needs an HTTP-family protocol, but `protocol` is `tcp`")]
    NeedsL7Protocol {
        /// The spec key `<ns>/<name>`.
        key: String,
        /// The L7 spec field.
        feature: &'static str,
    },
    /// A check other than `http` on a service in the mesh: Nomad refuses TCP checks on
    /// Connect services, and only HTTP checks can be exposed through the sidecar.
    #[error(
        "spec {key}: only an `http` check can run on a service in the mesh (Nomad: tcp checks are not valid for Connect enabled services)"
    )]
    CheckNotInMesh {
        /// The spec key `<ns>/<name>`.
        key: String,
    },
    /// The spec could not be serialised for hashing (never expected for a loaded spec).
    #[error("spec {key}: could not serialise the spec for its hash")]
    Serialise {
        /// The spec key `<ns>/<name>`.
        key: String,
        /// What serde_json reported.
        #[source]
        source: serde_json::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
