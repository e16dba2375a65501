//! Embedding the wire layer in your own HTTP server: every request goes
//! through `localkms::wire::handle`, which verifies its signature and
//! answers it. `localkms serve` (feature `cli`) is the full server, with a
//! store on disk, faults, fixtures and an audit log; this is the smallest
//! one, over an in-memory store.
//!
//! ```text
//! cargo run --features cli --example gateway -- 127.0.0.1:8080
//! ```
//!
//! Clients sign with AccessKeyId `testid` and secret `testsecret`.

use std::io::Read as _;

use localkms::Kms;
use localkms::wire::{self, HttpRequest, Verifier};

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let kms = Kms::in_memory()?;
    // One verifier for the server's life: it remembers recent nonces.
    let verifier = Verifier::new("testid", "testsecret");
    let server = tiny_http::Server::http(listen.as_str())?;
    if let Some(addr) = server.server_addr().to_ip() {
        println!("listening on http://{addr}");
    }
    for mut request in server.incoming_requests() {
        let (method, target) = (request.method().to_string(), request.url().to_owned());
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|h| (h.field.to_string(), h.value.to_string()))
            .collect();
        let mut body = Vec::new();
        // A real server bounds the body; `localkms serve` takes 1 MiB.
        if request
            .as_reader()
            .take(1 << 20)
            .read_to_end(&mut body)
            .is_err()
        {
            continue;
        }
        let http = HttpRequest {
            method: &method,
            target: &target,
            headers: &headers,
            body: &body,
        };
        let response = wire::handle(&kms, &verifier, &http);
        let content_type = tiny_http::Header::from_bytes("Content-Type", response.content_type)
            .map_err(|()| "bad header")?;
        let reply = tiny_http::Response::from_string(response.body)
            .with_status_code(response.status)
            .with_header(content_type);
        let _ = request.respond(reply); // the client may have gone away
    }
    Ok(())
}
