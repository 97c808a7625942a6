//! The Consul service registrations (with checks and sidecars) of an allocation.

use super::*;

impl Inner {
    /// The Consul registrations of a starting allocation.
    pub(super) fn service_instances(
        &self,
        cfg: &NomadSimConfig,
        a: &Alloc,
        job: &Value,
        g: &Value,
        failing: bool,
    ) -> Vec<ServiceInstance> {
        let key = (a.namespace.clone(), a.job_id.clone());
        let backend = self.backends.get(&key).copied();
        let status = if failing { "critical" } else { "passing" };
        let port_of = |label: &str| -> u16 {
            if let Ok(n) = label.parse::<u16>() {
                return n;
            }
            a.ports
                .iter()
                .find(|p| p.label == label)
                .map(|p| p.value)
                .unwrap_or(0)
        };
        let to_of = |label: &str| -> u16 {
            if let Ok(n) = label.parse::<u16>() {
                return n;
            }
            a.ports
                .iter()
                .find(|p| p.label == label)
                .map(|p| if p.to > 0 { p.to as u16 } else { p.value })
                .unwrap_or(0)
        };
        let mut out = Vec::new();
        let mut push = |sv: &Value, owner: &str| {
            if s(sv, "Provider") != "consul" {
                return;
            }
            let name = s(sv, "Name").to_string();
            let label = s(sv, "PortLabel").to_string();
            let id = format!("_nomad-task-{}-{}-{}-{}", a.id, owner, name, label);
            let (address, port) = match backend {
                Some(sa) => (sa.ip().to_string(), sa.port()),
                None => (cfg.service_address.clone(), port_of(&label)),
            };
            let mut meta: BTreeMap<String, String> = sv["Meta"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            meta.insert("external-source".into(), "nomad".into());
            let tags: Vec<String> = arr(sv, "Tags")
                .iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect();
            let checks: Vec<CheckInstance> = arr(sv, "Checks")
                .iter()
                .map(|c| CheckInstance {
                    check_id: format!(
                        "_nomad-check-{}",
                        short_hash(&format!("{id}/{}", s(c, "Name")))
                    ),
                    name: s(c, "Name").into(),
                    status: status.into(),
                    kind: s(c, "Type").into(),
                    output: if failing {
                        "connection refused".into()
                    } else {
                        "HTTP GET: 200 OK".into()
                    },
                })
                .collect();
            out.push(ServiceInstance {
                id: id.clone(),
                name: name.clone(),
                kind: String::new(),
                tags,
                meta: meta.clone(),
                address: address.clone(),
                port,
                proxy: None,
                checks,
            });
            let sidecar = &sv["Connect"]["SidecarService"];
            if sidecar.is_object() {
                let proxy_label = format!("connect-proxy-{name}");
                let sidecar_id = format!("{id}-sidecar-proxy");
                let upstreams = arr(&sidecar["Proxy"], "Upstreams")
                    .iter()
                    .map(|up| Upstream {
                        destination_name: s(up, "DestinationName").into(),
                        local_bind_port: i(up, "LocalBindPort").clamp(0, 65535) as u16,
                    })
                    .collect();
                let local_port = {
                    let lsp = i(&sidecar["Proxy"], "LocalServicePort");
                    if lsp > 0 { lsp as u16 } else { to_of(&label) }
                };
                let sidecar_tags: Vec<String> = match sidecar["Tags"].as_array() {
                    Some(t) => t
                        .iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect(),
                    None => arr(sv, "Tags")
                        .iter()
                        .filter_map(|t| t.as_str().map(String::from))
                        .collect(),
                };
                out.push(ServiceInstance {
                    id: sidecar_id.clone(),
                    name: format!("{name}-sidecar-proxy"),
                    kind: "connect-proxy".into(),
                    tags: sidecar_tags,
                    meta: meta.clone(),
                    address: cfg.service_address.clone(),
                    port: port_of(&proxy_label),
                    proxy: Some(ProxyInstance {
                        destination_service_name: name.clone(),
                        destination_service_id: id.clone(),
                        local_service_address: "127.0.0.1".into(),
                        local_service_port: local_port,
                        upstreams,
                    }),
                    checks: vec![
                        CheckInstance {
                            check_id: format!("service:{sidecar_id}:1"),
                            name: "Connect Sidecar Listening".into(),
                            status: status.into(),
                            kind: "tcp".into(),
                            output: String::new(),
                        },
                        CheckInstance {
                            check_id: format!("service:{sidecar_id}:2"),
                            name: "Connect Sidecar Aliasing".into(),
                            status: status.into(),
                            kind: "alias".into(),
                            output: String::new(),
                        },
                    ],
                });
            }
        };
        let gname = format!("group-{}", s(g, "Name"));
        for sv in arr(g, "Services") {
            push(sv, &gname);
        }
        for t in arr(g, "Tasks") {
            for sv in arr(t, "Services") {
                push(sv, s(t, "Name"));
            }
        }
        let _ = job;
        out
    }
}
