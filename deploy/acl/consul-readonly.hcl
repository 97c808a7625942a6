# Consul policy of the read-only commands: `steward doctor` and `steward diff` (CI on a
# pull request), prefix `steward`. Nothing here can write.
# One rule per line; tests/e2e/acl_rules.rs removes each one in turn and shows
# that an operation of doctor or diff is then refused.

# doctor: the server version (GET /v1/agent/self).
agent_prefix "" { policy = "read" }

# doctor: the namespaces of the specs in KV; diff: the specs a pull request changes.
key_prefix "steward/specs/" { policy = "read" }

# doctor: the edge api-gateway entry; diff: live service-defaults and, as intentions
# default to read with a service read rule, live service-intentions.
service_prefix "" { policy = "read" }

# diff: live http-route entries (Consul checks mesh:read for route kinds).
mesh = "read"
