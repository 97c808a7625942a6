# Steward as a Nomad service job: three instances, one leader.
#
# The instances elect a leader with a Consul session on `steward/leader`; the others keep
# their caches warm and take over within about 20 s after a crash, at once after a
# graceful stop (README, "Running against real servers"). Every instance serves its API:
# `/healthz` (alive), `/readyz` (caches listed; 503 before), `/metrics` (Prometheus).
#
# Tokens. Steward reads the standard variables (CONSUL_HTTP_TOKEN, NOMAD_TOKEN,
# VAULT_TOKEN, STEWARD_API_TOKEN) from `secrets/steward.env`, rendered by the template
# below. Two ways to fill it, pick one:
#
#  1. Vault, through workload identity (default here): the task logs in to Vault with
#     its Nomad workload identity (`vault { role = "steward" }`, a role on Vault's
#     `jwt-nomad` auth mount bound to this job), and the template reads a Consul token
#     and a Nomad token from Vault's Consul and Nomad secrets engines (roles `steward`,
#     granting what Steward reads and writes: README, "Running against real servers"),
#     and the API token from a KV secret. Vault renews them; the task restarts when a
#     token changes.
#  2. Nomad variables: store the tokens at `nomad/jobs/steward` (`nomad var put
#     nomad/jobs/steward consul_token=... nomad_token=... api_token=...`), remove the
#     `vault` block, and use the commented template instead. Nomad gives every task
#     read access to the variables under its own job's path.
#
# Image: build it from this repository (`cargo build --release -p steward-cli`) and push
# it to your registry; change `image` below.

job "steward" {
  namespace   = "default"
  type        = "service"
  datacenters = ["*"]

  # Never two instances on one node: losing a node loses one instance at most.
  constraint {
    operator = "distinct_hosts"
    value    = "true"
  }

  update {
    max_parallel      = 1
    min_healthy_time  = "15s"
    healthy_deadline  = "3m"
    progress_deadline = "10m"
    health_check      = "checks"
    auto_revert       = true
  }

  group "operator" {
    count = 3

    network {
      port "api" {
        to = 7070
      }
    }

    service {
      name     = "steward"
      port     = "api"
      provider = "consul"
      tags     = ["metrics"]

      # Alive: the process serves.
      check {
        name     = "alive"
        type     = "http"
        path     = "/healthz"
        interval = "10s"
        timeout  = "2s"
      }

      # Ready: the caches have listed (a follower is ready too: it takes over warm).
      check {
        name     = "ready"
        type     = "http"
        path     = "/readyz"
        interval = "10s"
        timeout  = "2s"
      }
    }

    restart {
      attempts = 3
      interval = "5m"
      delay    = "15s"
      mode     = "delay"
    }

    task "steward" {
      driver = "docker"

      config {
        image = "registry.example/platform/steward:0.1.0"
        ports = ["api"]
        args = [
          "run",
          # Inside the container: reachable through the mapped port only; the API token
          # guards the mutating endpoints (Steward refuses a non-loopback listen
          # without one).
          "--listen", "0.0.0.0:7070",
          "--log-format", "json",
          "--policy", "/local/guardrails.yaml",
        ]
      }

      # Option 1: tokens from Vault through workload identity.
      vault {
        role        = "steward"
        change_mode = "restart"
      }

      template {
        destination = "secrets/steward.env"
        env         = true
        change_mode = "restart"
        data        = <<EOT
{{ with secret "consul/creds/steward" }}CONSUL_HTTP_TOKEN={{ .Data.token }}{{ end }}
{{ with secret "nomad/creds/steward" }}NOMAD_TOKEN={{ .Data.secret_id }}{{ end }}
{{ with secret "secret/data/platform/steward" }}STEWARD_API_TOKEN={{ .Data.data.api_token }}{{ end }}
EOT
      }

      # Option 2: tokens from Nomad variables (remove the `vault` block and the template
      # above, and use this one):
      #
      # template {
      #   destination = "secrets/steward.env"
      #   env         = true
      #   change_mode = "restart"
      #   data        = <<EOT
      # {{ with nomadVar "nomad/jobs/steward" }}CONSUL_HTTP_TOKEN={{ .consul_token }}
      # NOMAD_TOKEN={{ .nomad_token }}
      # STEWARD_API_TOKEN={{ .api_token }}{{ end }}
      # EOT
      # }

      # The servers' addresses: the local agents.
      env {
        CONSUL_HTTP_ADDR = "http://${attr.unique.network.ip-address}:8500"
        NOMAD_ADDR       = "http://${attr.unique.network.ip-address}:4646"
        VAULT_ADDR       = "https://vault.service.consul:8200"
      }

      # The guardrail policy, from the repository's `deploy/guardrails.yaml` (here read
      # from Consul KV, where CI can push it next to the specs).
      template {
        destination = "local/guardrails.yaml"
        change_mode = "restart"
        data        = <<EOT
{{ key "steward/config/guardrails.yaml" }}
EOT
      }

      resources {
        # 1,000 specs: about 55 MiB resident; 10,000: about 170 MiB (BENCHMARKS.md).
        cpu        = 500
        memory     = 256
        memory_max = 512
      }

      kill_timeout = "20s"
    }
  }
}
