//! A TCP relay between uplink and Postgres that records the text of every
//! statement uplink sends (simple `Query` and extended-protocol `Parse`
//! messages): what reached SQL, read off the wire, whatever the server's
//! logging settings or the privileges of the database role.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use uplink::settings::Settings;

use super::relay::Relay;

/// The protocol codes of requests sent before the startup message.
const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;

#[derive(Clone)]
pub struct StatementRelay {
    relay: Relay,
    seen: Seen,
}

impl StatementRelay {
    /// Listens on a free port; connections are relayed once `route` has run.
    pub async fn start() -> Self {
        let seen = Seen::default();
        let recorded = seen.clone();
        let relay =
            Relay::start(move |client, server| relay_connection(client, server, recorded.clone()))
                .await;
        Self { relay, seen }
    }

    /// A settings customisation that points the app's database URL at this
    /// relay (plain text, so the messages can be read).
    pub fn route(&self) -> impl FnOnce(&mut Settings) + 'static {
        self.relay.route(5432, ("sslmode", "disable"))
    }

    /// Every statement text sent so far, in order.
    pub fn statements(&self) -> Vec<String> {
        self.seen.statements.lock().expect("not poisoned").clone()
    }

    /// Round trips so far: each simple `Query` and each `Sync` of the
    /// extended protocol (a pool's ping is a `Sync` alone) waits for the
    /// server's answer.
    pub fn round_trips(&self) -> usize {
        self.seen.round_trips.load(Ordering::SeqCst)
    }

    /// Statements run so far (a simple query of several counts once).
    pub fn executed(&self) -> usize {
        self.seen.executed.load(Ordering::SeqCst)
    }

    /// Statements sent unnamed so far: parsed and planned for one run (a
    /// named one is parsed once per connection and may reuse its plan).
    pub fn unnamed_parses(&self) -> usize {
        self.seen.unnamed_parses.load(Ordering::SeqCst)
    }
}

/// What the relay records of its connections' messages.
#[derive(Clone, Default)]
struct Seen {
    statements: Arc<Mutex<Vec<String>>>,
    /// Messages that wait for the server's answer (`Query`, `Sync`).
    round_trips: Arc<AtomicUsize>,
    /// Statements run: simple `Query` and extended `Execute` messages.
    executed: Arc<AtomicUsize>,
    /// `Parse` messages of the unnamed statement: planned for this run only.
    unnamed_parses: Arc<AtomicUsize>,
}

async fn relay_connection(mut client: TcpStream, mut server: TcpStream, seen: Seen) {
    let (mut from_server, mut to_server) = server.split();
    let (mut from_client, mut to_client) = client.split();
    let downstream = tokio::io::copy(&mut from_server, &mut to_client);
    let upstream = async {
        let mut reader = MessageReader::default();
        let mut chunk = vec![0; 64 * 1024];
        loop {
            let n = match from_client.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            reader.feed(&chunk[..n], &seen);
            if to_server.write_all(&chunk[..n]).await.is_err() {
                break;
            }
        }
        let _ = to_server.shutdown().await;
    };
    let _ = tokio::join!(downstream, upstream);
}

/// Splits the frontend byte stream into messages.
#[derive(Default)]
struct MessageReader {
    buffer: Vec<u8>,
    /// The startup message (untyped) has been seen.
    started: bool,
}

impl MessageReader {
    fn feed(&mut self, bytes: &[u8], seen: &Seen) {
        self.buffer.extend_from_slice(bytes);
        loop {
            let header = if self.started { 5 } else { 4 };
            if self.buffer.len() < header {
                return;
            }
            let at = header - 4;
            let length = i32::from_be_bytes(self.buffer[at..at + 4].try_into().expect("4 bytes"));
            let total = at + usize::try_from(length).expect("a message length");
            if self.buffer.len() < total {
                return;
            }
            let message: Vec<u8> = self.buffer.drain(..total).collect();
            if !self.started {
                let code = i32::from_be_bytes(message[4..8].try_into().expect("4 bytes"));
                assert!(
                    code != SSL_REQUEST && code != GSSENC_REQUEST,
                    "the relay reads plain text only (sslmode=disable)"
                );
                self.started = true;
                continue;
            }
            if matches!(message[0], b'Q' | b'S') {
                seen.round_trips.fetch_add(1, Ordering::SeqCst);
            }
            if matches!(message[0], b'Q' | b'E') {
                seen.executed.fetch_add(1, Ordering::SeqCst);
            }
            let body = &message[5..];
            let text = match message[0] {
                b'Q' => body,
                // Parse: the statement's name, then its text.
                b'P' => {
                    let name_end = body.iter().position(|&b| b == 0).expect("a name");
                    if name_end == 0 {
                        seen.unnamed_parses.fetch_add(1, Ordering::SeqCst);
                    }
                    &body[name_end + 1..]
                }
                _ => continue,
            };
            let end = text.iter().position(|&b| b == 0).expect("a C string");
            seen.statements
                .lock()
                .expect("not poisoned")
                .push(String::from_utf8_lossy(&text[..end]).into_owned());
        }
    }
}
