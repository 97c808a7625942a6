# Consul policy of the operator (`steward run`), prefix `steward`.
# One rule per line; tests/e2e/acl_rules.rs removes each one in turn and shows
# that an operation of `steward run` is then refused. Change the prefix with --prefix.

# Watch the specs CI pushed (blocking list of the prefix); the operator never writes them.
key_prefix "steward/specs/" { policy = "read" }

# Status documents, and the GC guard's record `steward/status/_gc`, in leader-fenced transactions.
key_prefix "steward/status/" { policy = "write" }

# The leader lock: acquire, release, and the check-session guard of every status write.
key "steward/leader" { policy = "write" }

# The leader's session, created on the node of the agent Steward talks to (any node).
session_prefix "" { policy = "write" }

# service-defaults of every spec's service, and reading the edge api-gateway entry.
service_prefix "" {
  policy     = "write"
  # The service-intentions entry of every spec's service.
  intentions = "write"
}

# http-route entries on the edge gateway (Consul checks mesh:write for route kinds).
mesh = "write"

# The server version at start-up (GET /v1/agent/self).
agent_prefix "" { policy = "read" }
