//! The Envoy bootstrap for `steward edge envoy-bootstrap`: ADS over gRPC (HTTP/2) to
//! Steward, clusters and listeners from ADS. A stock Envoy starts with it unchanged:
//! `envoy -c FILE --disable-hot-restart`.
//!
//! The edge listener's address travels in the node metadata (`steward.listen`), so each
//! Envoy gets its own listener over LDS: several Envoys can share a machine.

use std::net::SocketAddr;

use crate::session::LISTEN_METADATA_KEY;

/// Default node id.
pub const DEFAULT_NODE_ID: &str = "edge-1";
/// Node cluster of every edge Envoy.
pub const NODE_CLUSTER: &str = "steward-edge";
/// Name of the static cluster carrying xDS.
pub const XDS_CLUSTER: &str = "steward_xds";

/// What the bootstrap says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapOptions {
    /// Steward's xDS address.
    pub xds: SocketAddr,
    /// Address the edge listener binds.
    pub listen: SocketAddr,
    /// Envoy's admin address.
    pub admin: SocketAddr,
    /// Node id (shown in `/api/v1/edge`).
    pub node_id: String,
}

/// Renders the bootstrap YAML.
#[must_use]
pub fn render(opts: &BootstrapOptions) -> String {
    // JSON strings are YAML strings: quoting this way is always safe.
    let q = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        "\
# Envoy bootstrap for Steward's edge: listeners, routes, clusters and endpoints come
# over ADS from Steward at {xds}. Start with:
#   envoy -c <this file> --disable-hot-restart
node:
  id: {node_id}
  cluster: {node_cluster}
  metadata:
    steward:
      {listen_key}: {listen}
admin:
  address:
    socket_address: {{address: {admin_ip}, port_value: {admin_port}}}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    set_node_on_first_message_only: true
    grpc_services:
      - envoy_grpc: {{cluster_name: {xds_cluster}}}
  cds_config: {{ads: {{}}, resource_api_version: V3}}
  lds_config: {{ads: {{}}, resource_api_version: V3}}
static_resources:
  clusters:
    - name: {xds_cluster}
      type: STATIC
      connect_timeout: 1s
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          explicit_http_config:
            http2_protocol_options: {{}}
      load_assignment:
        cluster_name: {xds_cluster}
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:
                    socket_address: {{address: {xds_ip}, port_value: {xds_port}}}
",
        xds = opts.xds,
        node_id = q(&opts.node_id),
        node_cluster = q(NODE_CLUSTER),
        listen_key = LISTEN_METADATA_KEY,
        listen = q(&opts.listen.to_string()),
        admin_ip = q(&opts.admin.ip().to_string()),
        admin_port = opts.admin.port(),
        xds_cluster = XDS_CLUSTER,
        xds_ip = q(&opts.xds.ip().to_string()),
        xds_port = opts.xds.port(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bootstrap_matches_the_golden_file() {
        let yaml = render(&BootstrapOptions {
            xds: "127.0.0.1:18000".parse().expect("addr"),
            listen: "127.0.0.1:10080".parse().expect("addr"),
            admin: "127.0.0.1:19001".parse().expect("addr"),
            node_id: DEFAULT_NODE_ID.into(),
        });
        insta::assert_snapshot!("bootstrap", yaml);
    }
}
