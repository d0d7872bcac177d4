//! Accepting connections (TCP or a Unix socket) and serving HTTP/1.1 on them within
//! the bounds of `limits`, until SIGTERM or SIGINT; then draining.

use std::convert::Infallible;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_service::Service;

use super::limits::{HEAD_TIMEOUT, MAX_CONNECTIONS, MAX_HEAD, MAX_HEADERS};
use super::{Listen, Peer};
use crate::error::{Error, Result};

pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// Serves until a signal, then drains.
pub async fn serve(listener: Listener, app: Router) -> Result<()> {
    let mut terminate = signal(SignalKind::terminate())
        .map_err(|e| Error::runtime(format!("cannot watch for SIGTERM: {e}")))?;
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|e| Error::runtime(format!("cannot watch for SIGINT: {e}")))?;
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEAD);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        // Beyond MAX_CONNECTIONS nothing is accepted: new connections wait in the
        // kernel's queue until one closes.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            a = accept(&listener) => a,
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        };
        match accepted {
            Ok(Accepted::Tcp(stream, peer)) => {
                let _ = stream.set_nodelay(true);
                spawn_connection(&http, &graceful, stream, Peer(Some(peer.ip())), &app, slot);
            }
            Ok(Accepted::Unix(stream)) => {
                spawn_connection(&http, &graceful, stream, Peer(None), &app, slot);
            }
            // Out of descriptors or a connection reset before it was taken: the
            // listener itself is fine; a short pause lets descriptors free up.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
    // Stop accepting now: new connections are refused while the others finish.
    drop(listener);
    drop(app);
    graceful.shutdown().await;
    Ok(())
}

enum Accepted {
    Tcp(tokio::net::TcpStream, std::net::SocketAddr),
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &Listener) -> std::io::Result<Accepted> {
    match listener {
        Listener::Tcp(l) => l.accept().await.map(|(s, a)| Accepted::Tcp(s, a)),
        Listener::Unix(l) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
    }
}

fn spawn_connection<IO>(
    http: &http1::Builder,
    graceful: &GracefulShutdown,
    io: IO,
    peer: Peer,
    app: &Router,
    slot: OwnedSemaphorePermit,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let app = app.clone();
    let service = service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(peer);
        let mut app = app.clone();
        async move {
            let response = app.call(req.map(Body::new)).await;
            Ok::<_, Infallible>(match response {
                Ok(r) => r,
                Err(never) => match never {},
            })
        }
    });
    let connection = graceful.watch(http.serve_connection(TokioIo::new(io), service));
    tokio::spawn(async move {
        // A client that breaks its connection only ends that connection.
        let _ = connection.await;
        drop(slot);
    });
}

/// Binds (inside the runtime) and says where on stderr: the first line, which
/// supervisors and tests wait for.
pub fn bind(listen: &Listen) -> Result<Listener> {
    match listen {
        Listen::Tcp(addr) => {
            let std_listener = std::net::TcpListener::bind(addr)
                .map_err(|e| Error::runtime(format!("cannot listen on {addr}: {e}")))?;
            let bound = std_listener
                .local_addr()
                .map_err(|e| Error::runtime(format!("cannot listen on {addr}: {e}")))?;
            let listener = std_listener
                .set_nonblocking(true)
                .and_then(|_| TcpListener::from_std(std_listener))
                .map_err(|e| Error::runtime(format!("cannot listen on {addr}: {e}")))?;
            announce(&format!("listening on http://{bound}"));
            Ok(Listener::Tcp(listener))
        }
        Listen::Unix(path) => {
            clear_stale_socket(path)?;
            let shown = path.display();
            let listener = UnixListener::bind(path)
                .map_err(|e| Error::runtime(format!("cannot listen on unix:{shown}: {e}")))?;
            // Owner and group: a proxy in the service's group may connect.
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
                .map_err(|e| Error::runtime(format!("cannot set the mode of {shown}: {e}")))?;
            announce(&format!("listening on unix:{shown}"));
            Ok(Listener::Unix(listener))
        }
    }
}

/// A socket file left by a server that is gone is replaced; a live server's socket,
/// and any other file, are not.
fn clear_stale_socket(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    let shown = path.display();
    if !meta.file_type().is_socket() {
        return Err(Error::runtime(format!(
            "cannot listen on unix:{shown}: a file that is not a socket is there; remove it or choose another path"
        )));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(Error::runtime(format!(
            "cannot listen on unix:{shown}: a server is listening there already"
        )));
    }
    std::fs::remove_file(path)
        .map_err(|e| Error::runtime(format!("cannot replace the old socket {shown}: {e}")))
}

/// The one line on stderr a supervisor or test waits for: always shown, `--quiet` too.
fn announce(line: &str) {
    let mut err = std::io::stderr();
    let _ = writeln!(err, "{line}");
    let _ = err.flush();
}
