# Nomad policy of the read-only commands: `steward doctor` and the reads of `steward diff`.
# One rule per line; tests/e2e/acl_rules.rs removes each one in turn and shows
# that an operation of doctor or diff is then refused.

# diff: the live job of each spec; doctor: a namespace is listed only to a token
# with some capability in it.
namespace "*" { capabilities = ["read-job"] }

# doctor: the server version (GET /v1/agent/self).
agent { policy = "read" }
