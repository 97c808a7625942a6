# Vault policy of the operator (`steward run`), JWT auth mount `jwt-nomad`.
# One rule per line; tests/e2e/acl_rules.rs removes each capability in turn and
# shows that an operation of `steward run` is then refused. The token also holds Vault's
# `default` policy (token lookup, sys/capabilities-self).

# The `steward-<ns>-<name>` policies: read to compare, update to write (Vault has no
# existence check on this path, so a new policy is an update too), delete for GC.
path "sys/policies/acl/steward-*" { capabilities = ["read", "update", "delete"] }

# Listing the policies, to find the orphans garbage collection removes.
path "sys/policies/acl" { capabilities = ["list"] }

# The `steward-<ns>-<name>` JWT roles: create a new one, update an existing one, read to
# compare, delete for GC.
path "auth/jwt-nomad/role/steward-*" { capabilities = ["create", "read", "update", "delete"] }

# Listing the roles, to find orphans.
path "auth/jwt-nomad/role" { capabilities = ["list"] }

# At start-up: is the JWT auth mount there (GET /v1/sys/auth)?
path "sys/auth" { capabilities = ["read"] }
