//! The real server on a data directory (SQLite + a blob directory under it), listening on
//! 127.0.0.1 and a free port, which it prints on stdout as one line (`127.0.0.1:PORT`). It
//! serves until it is killed: this crate's storage tests kill it with SIGKILL in the middle of
//! a blob write (T15, T61) and scan what it left.
//!
//! ```text
//! cargo run -p toyseal-server --example serve_dir -- /tmp/toyseal-data
//! ```

use std::io::Write;
use std::time::Duration;
use toyseal_server::{Config, Server};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data_dir = std::env::args_os()
        .nth(1)
        .ok_or("usage: serve_dir DATA_DIR")?;
    // Rate limits off: a test drives it from one address as fast as it likes.
    let config = Config::embedded(std::path::PathBuf::from(data_dir))
        .with_rate_limit(0, 0)
        .with_address_rate_limit(0, 0)
        .with_request_timeout(Duration::from_secs(30));
    let server = Server::builder(config).build().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", listener.local_addr()?)?;
    out.flush()?;
    drop(out);
    server.serve(listener, std::future::pending()).await?;
    Ok(())
}
