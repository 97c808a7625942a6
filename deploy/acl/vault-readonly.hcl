# Vault policy of the read-only commands: `steward doctor` and `steward diff`.
# One rule per line; tests/e2e/acl_rules.rs removes each capability in turn and
# shows that an operation of doctor or diff is then refused. The token also holds
# Vault's `default` policy (sys/capabilities-self, which doctor asks).

# diff: the live `steward-<ns>-<name>` policies, to show capabilities added or removed.
path "sys/policies/acl/steward-*" { capabilities = ["read"] }

# diff: the live `steward-<ns>-<name>` JWT roles, to show what a change does to them.
path "auth/jwt-nomad/role/steward-*" { capabilities = ["read"] }

# doctor: is the JWT auth mount there (GET /v1/sys/auth)?
path "sys/auth" { capabilities = ["read"] }

# doctor: is the JWT auth method configured (jwks_url and algorithms)?
path "auth/jwt-nomad/config" { capabilities = ["read"] }
