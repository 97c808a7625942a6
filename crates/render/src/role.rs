//! The Vault JWT auth role (reference §7.6) Nomad workload identities of the job log in
//! with; it grants the spec's policy.
//!
//! Body, following Nomad's reference setup but bound to this one job:
//! `role_type` `jwt`, `bound_audiences` `[<audience>]`, `user_claim` `/nomad_job_id` with
//! `user_claim_json_pointer` true, `bound_claims` `{nomad_namespace, nomad_job_id}`,
//! `claim_mappings` `{nomad_namespace, nomad_job_id, nomad_task}` (each to itself),
//! `token_type` `service`, `token_period` [`TOKEN_PERIOD`], `token_policies` `[<policy>]`.

use serde_json::json;
use steward_spec::ServiceSpec;

use crate::context::RenderContext;
use crate::desired::VaultRole;
use crate::names::{self, SpecKey};

/// Period of the tokens the role issues (renewed by Nomad for as long as the task runs),
/// as in Nomad's reference setup.
pub const TOKEN_PERIOD: &str = "30m";

/// The role for `spec`, or `None` without secrets.
pub(crate) fn render_role(spec: &ServiceSpec, ctx: &RenderContext) -> Option<VaultRole> {
    if spec.spec.secrets.is_empty() {
        return None;
    }
    let key = SpecKey::of(spec);
    let body = json!({
        "role_type": "jwt",
        "bound_audiences": [ctx.jwt_audience],
        "user_claim": "/nomad_job_id",
        "user_claim_json_pointer": true,
        "bound_claims": {
            "nomad_namespace": names::nomad_namespace(&key),
            "nomad_job_id": names::job_id(&key),
        },
        "claim_mappings": {
            "nomad_namespace": "nomad_namespace",
            "nomad_job_id": "nomad_job_id",
            "nomad_task": "nomad_task",
        },
        "token_type": "service",
        "token_period": TOKEN_PERIOD,
        "token_policies": [names::vault_policy(&key)],
    });
    Some(VaultRole {
        mount: ctx.jwt_auth_mount.clone(),
        name: names::jwt_role(&key),
        body,
    })
}
