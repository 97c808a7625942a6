# Nomad policy of the operator (`steward run`).
# One rule per line; tests/e2e/acl_rules.rs removes each one in turn and shows
# that an operation of `steward run` is then refused.
# "*" covers the namespaces of every spec; list the spec namespaces instead to narrow it
# (namespaces are created by `steward bootstrap` with a management token, not here).

# list-jobs: the job list it watches (`?meta=true`, probed at start-up);
# read-job: jobs, versions, deployments and the Job/Deployment event stream;
# submit-job: plan, register (EnforceIndex), stop or purge.
namespace "*" { capabilities = ["list-jobs", "read-job", "submit-job"] }

# The server version at start-up (GET /v1/agent/self).
agent { policy = "read" }
