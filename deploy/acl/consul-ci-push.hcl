# Consul policy of CI (`steward push [--prune] [--wait]`, `steward status`), prefix `steward`.
# One rule per line; tests/e2e/acl_rules.rs removes each one in turn and shows
# that an operation of `steward push` is then refused.

# Write the specs in CAS-guarded transactions, read them back, and prune the keys this
# source pushed. Nothing outside `steward/specs/` can be written with this token.
key_prefix "steward/specs/" { policy = "write" }

# `--wait` and `steward status` read the operator's status documents, never write them.
key_prefix "steward/status/" { policy = "read" }
