//! The async client's transport errors, with no server at all. Everything that needs a server
//! (every route, retries under injected faults, the checks the client makes instead of
//! trusting the server, T60) runs against the real one: `toyseal-server`'s `tests/client.rs`
//! and `tests/t60_outbox_kill9.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;
use toyseal_cloud::{Client, ClientConfig, Error};
use toyseal_core::{DeviceIdentity, OsRng, Role};

#[tokio::test]
async fn transport_errors_are_typed_and_say_nothing_secret() {
    // A port nothing listens on (bound, then dropped).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = ClientConfig::default();
    config.initial_backoff = Duration::from_millis(5);
    config.max_backoff = Duration::from_millis(50);
    config.max_attempts = 2;
    let toy = DeviceIdentity::generate(Role::Toy, &mut OsRng);
    let secret = toy.export_secret_key_text().unwrap();
    let c = Client::with_config(&format!("http://127.0.0.1:{port}"), toy, config).unwrap();
    let e = c.health().await.unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e:?}");
    assert!(e.is_transient());
    let text = format!("{e} {e:?}");
    assert!(!text.contains("127.0.0.1"), "{text}");
    assert!(!format!("{c:?}").contains(secret.as_str()));
}
