# Nomad policy that `steward diff` adds to nomad-readonly.hcl for the scheduler's
# preview (PUT /v1/job/<id>/plan). A plan is a dry run, but Nomad grants it only with
# submit-job, which also allows registering and stopping jobs: this token is NOT
# read-only. Give it to the pull-request pipeline only, as a protected secret, or leave
# it out: diff then reports the Nomad part as refused and shows the rest.
# tests/e2e/acl_rules.rs removes the rule and shows that the plan is refused.

namespace "*" { capabilities = ["submit-job"] }
