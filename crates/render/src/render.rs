//! `render(spec) = desired`: every object a spec owns, pure and deterministic.

use steward_spec::{AllowFrom, CheckKind, ServiceSpec};

use crate::context::RenderContext;
use crate::desired::{Desired, NomadJob};
use crate::error::{Error, Result};
use crate::hash::spec_hash;
use crate::names::{self, SpecKey};
use crate::{http_route, intentions, job, policy, role, service_defaults};

/// Renders every object `spec` owns.
///
/// The same spec and context always give the same result, byte for byte. The Consul
/// objects (`service-defaults`, `service-intentions`, `http-route`) exist only for specs
/// with a `port`, the Vault objects only for specs with `secrets`.
///
/// # Errors
/// Combinations a server would reject or that would drop part of the spec: see
/// [`Error`]. Validated specs never produce them.
pub fn render(spec: &ServiceSpec, ctx: &RenderContext) -> Result<Desired> {
    check(spec)?;
    let key = SpecKey::of(spec);
    let hash = spec_hash(spec, ctx)?;
    let meta = names::ownership_meta(&key, ctx.generation, &hash);
    let nomad_job = NomadJob {
        namespace: names::nomad_namespace(&key),
        id: names::job_id(&key),
        job: job::render_job(spec, ctx, &meta),
    };
    let consul = spec.spec.port.is_some();
    Ok(Desired {
        key: key.to_string(),
        hash,
        nomad_job,
        service_defaults: consul.then(|| service_defaults::render_service_defaults(spec, &meta)),
        service_intentions: consul.then(|| intentions::render_intentions(spec, ctx, &meta)),
        http_routes: http_route::render_http_routes(spec, ctx, &meta),
        vault_policy: policy::render_policy(spec),
        vault_role: role::render_role(spec, ctx),
    })
}

fn check(spec: &ServiceSpec) -> Result<()> {
    let s = &spec.spec;
    let key = || spec.key();
    if s.image.is_some() == s.command.is_some() {
        return Err(Error::Workload { key: key() });
    }
    // Periodic jobs run to completion: nothing may connect to them, but they may call
    // upstreams. A service without `port` has no inbound features either.
    let inbound: [(&'static str, bool); 3] = [
        ("check", s.check.is_some()),
        ("allowFrom", !s.allow_from.is_empty()),
        ("edge.routes", !s.edge.is_empty()),
    ];
    if spec.is_batch() {
        let ports = [("port", s.port.is_some()), ("ports", !s.ports.is_empty())];
        if let Some((feature, _)) = ports.iter().chain(&inbound).find(|(_, used)| *used) {
            return Err(Error::NotForPeriodic {
                key: key(),
                feature,
            });
        }
    } else if let (None, Some((feature, _))) = (s.port, inbound.iter().find(|(_, used)| *used)) {
        return Err(Error::NeedsPort {
            key: key(),
            feature,
        });
    }
    if !spec.effective_protocol().is_l7() {
        if !s.edge.is_empty() {
            return Err(Error::NeedsL7Protocol {
                key: key(),
                feature: "edge.routes",
            });
        }
        if s.allow_from.iter().any(AllowFrom::is_l7) {
            return Err(Error::NeedsL7Protocol {
                key: key(),
                feature: "allowFrom",
            });
        }
    }
    // Every service with a port is in the Connect mesh, where Nomad accepts only checks
    // the sidecar can expose (`tcp checks are not valid for Connect enabled services`).
    if let Some(c) = &s.check
        && !matches!(c.kind(), Some(CheckKind::Http(_)))
    {
        return Err(Error::CheckNotInMesh { key: key() });
    }
    Ok(())
}
