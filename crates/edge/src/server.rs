//! The ADS gRPC service (state of the world) over tonic: one task per stream drives a
//! [`Session`] with the proxy's requests and the edge's snapshots.

use std::net::SocketAddr;
use std::pin::Pin;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use futures::{Stream, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::metrics::TypeLabel;
use crate::resources::TypeKind;
use crate::session::{Received, Session};
use crate::state::Edge;

/// Largest message accepted or sent (a route configuration of 10k routes is ~1 MiB).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Errors of the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen for xDS on {addr}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("xDS server failed")]
    Serve(#[source] tonic::transport::Error),
}

/// Result of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The ADS service of one [`Edge`].
#[derive(Debug, Clone)]
pub struct AdsService {
    edge: Edge,
    shutdown: CancellationToken,
}

impl AdsService {
    /// A service serving `edge`'s snapshots; streams end at `shutdown`.
    #[must_use]
    pub fn new(edge: Edge, shutdown: CancellationToken) -> Self {
        Self { edge, shutdown }
    }

    /// As a tonic service.
    #[must_use]
    pub fn into_server(self) -> AggregatedDiscoveryServiceServer<Self> {
        AggregatedDiscoveryServiceServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

/// Binds `addr` (port 0: any free port) and returns the bound address and the listener.
///
/// # Errors
/// [`Error::Bind`].
pub async fn bind(addr: SocketAddr) -> Result<(SocketAddr, TcpListener)> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?;
    Ok((local, listener))
}

/// Serves ADS on `listener` until `shutdown`.
///
/// # Errors
/// [`Error::Serve`] when the gRPC server fails.
pub async fn serve(edge: Edge, listener: TcpListener, shutdown: CancellationToken) -> Result<()> {
    let service = AdsService::new(edge, shutdown.clone()).into_server();
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.cancelled_owned())
        .await
        .map_err(Error::Serve)
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<DiscoveryResponse, Status>> + Send>>;
type DeltaStream = Pin<Box<dyn Stream<Item = Result<DeltaDiscoveryResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AggregatedDiscoveryService for AdsService {
    type StreamAggregatedResourcesStream = ResponseStream;
    type DeltaAggregatedResourcesStream = DeltaStream;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<ResponseStream>, Status> {
        let peer = request.remote_addr().map(|a| a.to_string());
        let requests = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let edge = self.edge.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let stream = edge.open_stream(peer.clone());
            tracing::info!(stream, peer, "xDS stream opened");
            let end = drive(&edge, stream, requests, &tx, &shutdown).await;
            edge.close_stream(stream);
            tracing::info!(stream, end, "xDS stream closed");
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn delta_aggregated_resources(
        &self,
        _request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<DeltaStream>, Status> {
        Err(Status::unimplemented(
            "Steward serves state-of-the-world ADS only (api_type: GRPC)",
        ))
    }
}

/// Runs one stream; returns why it ended.
async fn drive(
    edge: &Edge,
    stream: u64,
    mut requests: Streaming<DiscoveryRequest>,
    tx: &mpsc::Sender<Result<DiscoveryResponse, Status>>,
    shutdown: &CancellationToken,
) -> &'static str {
    let mut snapshots = edge.subscribe_snapshots();
    let mut session = Session::new();
    loop {
        let snap = snapshots.borrow_and_update().clone();
        while let Some((kind, response)) = session.next_response(&snap) {
            edge.metrics()
                .pushes
                .get_or_create(&TypeLabel::of(kind))
                .inc();
            tracing::debug!(
                stream,
                node = session.node_id(),
                r#type = kind.label(),
                version = response.version_info,
                "xDS push"
            );
            if tx.send(Ok(response)).await.is_err() {
                return "proxy went away";
            }
        }
        edge.update_stream(stream, &session);
        tokio::select! {
            () = shutdown.cancelled() => return "shutdown",
            changed = snapshots.changed() => {
                if changed.is_err() {
                    return "edge stopped";
                }
                let snap = snapshots.borrow().clone();
                session.observe(&snap);
            }
            next = requests.next() => {
                let req = match next {
                    None => return "proxy closed the stream",
                    Some(Err(status)) => {
                        // WARN: a proxy whose stream keeps failing would otherwise only show as a
                        // reconnect count; the gRPC status says why (reset, protocol error).
                        tracing::warn!(stream, %status, "xDS stream from a proxy failed; it will have to reconnect");
                        return "stream error";
                    }
                    Some(Ok(req)) => req,
                };
                let snap = snapshots.borrow().clone();
                let previous = TypeKind::from_url(&req.type_url)
                    .map_or(0, |k| session.status(k).acked_generation);
                match session.receive(&req, &snap) {
                    Received::Ack { kind, generation } => {
                        edge.record_ack(kind, previous, generation);
                    }
                    Received::Nack { kind, nack } => {
                        edge.record_nack(session.node_id(), kind, &nack);
                    }
                    Received::UnknownType(url) => {
                        tracing::warn!(stream, node = session.node_id(), type_url = url,
                            "xDS request for a type Steward does not serve");
                    }
                    Received::Subscribed(_) | Received::Resumed(_) | Received::Stale(_) => {}
                }
            }
        }
    }
}
