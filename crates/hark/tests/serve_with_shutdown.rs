//! `hark::server::serve_with` in this process, on sockets the test bound to port 0: it answers
//! OPTIONS over UDP and `/healthz`, and returns once its shutdown future resolves, its
//! listeners closed.

mod common;

use std::time::Duration;

use common::*;
use tokio::net::{TcpListener, UdpSocket};

#[test]
fn serve_with_runs_on_given_sockets_until_the_shutdown_future_resolves() {
    let tmp = TempDir::new("serve-with");
    let rtp = alloc_port_block();
    let config_path = tmp.join("hark.toml");
    let storage = tmp.join("recordings");
    // The listen keys are not used by serve_with; the sockets are.
    std::fs::write(
        &config_path,
        format!(
            "[sip]\nlisten = \"127.0.0.1:0\"\n\
             [http]\nlisten = \"127.0.0.1:0\"\npublic_url = \"\"\n\
             [rtp]\nport_min = {rtp}\nport_max = {}\n\
             [storage]\ndir = {}\n\
             [transcription]\nengine = \"none\"\n\
             [app]\ntwiml = \"<Response><Hangup/></Response>\"\n",
            rtp + 39,
            common::daemon::toml_string(&storage.display().to_string()),
        ),
    )
    .expect("write config");
    let config = hark::config::Config::load(Some(&config_path)).expect("valid config");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listeners = hark::server::Listeners {
            sip_udp: UdpSocket::bind("127.0.0.1:0").await.expect("bind udp"),
            sip_tcp: TcpListener::bind("127.0.0.1:0").await.expect("bind tcp"),
            http: TcpListener::bind("127.0.0.1:0").await.expect("bind http"),
        };
        let sip = listeners.sip_udp.local_addr().expect("udp addr");
        let sip_tcp = listeners.sip_tcp.local_addr().expect("tcp addr");
        let http = listeners.http.local_addr().expect("http addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(hark::server::serve_with(config, listeners, async move {
            let _ = stopped.await;
        }));

        let (options, health) = tokio::task::spawn_blocking(move || {
            let options = wait_until(Duration::from_secs(10), || options_ok(sip).then_some(()));
            (options, http_get(http, "/healthz"))
        })
        .await
        .expect("checks ran");
        assert!(options.is_some(), "OPTIONS over UDP to {sip} answered 200");
        let (status, body) = health.expect("/healthz answered");
        assert_eq!(status, 200, "/healthz: {body}");

        stop.send(()).expect("serve_with still waiting");
        let result = tokio::time::timeout(Duration::from_secs(15), served)
            .await
            .expect("serve_with returns within 15 s of the shutdown future")
            .expect("serve_with did not panic");
        assert!(result.is_ok(), "{result:?}");

        // Its tasks are stopped: the HTTP and SIP TCP listeners are closed.
        for addr in [http, sip_tcp] {
            let closed = tokio::task::spawn_blocking(move || {
                wait_until(Duration::from_secs(2), || {
                    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                        .is_err()
                        .then_some(())
                })
            })
            .await
            .expect("check ran");
            assert!(
                closed.is_some(),
                "listener {addr} still open after serve_with returned"
            );
        }
    });
}
