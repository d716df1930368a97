//! A TCP relay between uplink and MySQL/MariaDB that records the text of
//! every statement uplink runs (`COM_QUERY`, and `COM_STMT_EXECUTE` by the
//! text its `COM_STMT_PREPARE` sent): what reached SQL, read off the wire,
//! whatever the server's counters or the other tests on it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use uplink::settings::Settings;

use super::relay::Relay;

const COM_QUIT: u8 = 0x01;
const COM_QUERY: u8 = 0x03;
const COM_STMT_PREPARE: u8 = 0x16;
const COM_STMT_EXECUTE: u8 = 0x17;
const COM_STMT_CLOSE: u8 = 0x19;

#[derive(Clone)]
pub struct MySqlStatementRelay {
    relay: Relay,
    executed: Arc<Mutex<Vec<String>>>,
}

impl MySqlStatementRelay {
    /// Listens on a free port; connections are relayed once `route` has run.
    pub async fn start() -> Self {
        let executed = Arc::new(Mutex::new(Vec::new()));
        let recorded = executed.clone();
        let relay =
            Relay::start(move |client, server| relay_connection(client, server, recorded.clone()))
                .await;
        Self { relay, executed }
    }

    /// A settings customisation that points the app's database URL at this
    /// relay (without TLS, so the packets can be read).
    pub fn route(&self) -> impl FnOnce(&mut Settings) + 'static {
        self.relay.route(3306, ("ssl-mode", "DISABLED"))
    }

    /// The text of every statement run so far, in order (a prepared
    /// statement once per execution).
    pub fn executed(&self) -> Vec<String> {
        self.executed.lock().expect("not poisoned").clone()
    }
}

/// One connection's commands: the texts of the prepares that await their
/// statement id, and the ids the server gave.
#[derive(Default)]
struct Session {
    /// Per command sent that the server answers, in order: the text of a
    /// `COM_STMT_PREPARE`, or `None`.
    awaiting: VecDeque<Option<String>>,
    prepared: HashMap<u32, String>,
}

async fn relay_connection(
    mut client: TcpStream,
    mut server: TcpStream,
    executed: Arc<Mutex<Vec<String>>>,
) {
    let session = Arc::new(Mutex::new(Session::default()));
    let (mut from_server, mut to_server) = server.split();
    let (mut from_client, mut to_client) = client.split();
    let upstream = relay(&mut from_client, &mut to_server, |packet| {
        let mut session = session.lock().expect("not poisoned");
        // A command starts a sequence (handshake packets continue one).
        let (0, [command, body @ ..]) = (packet.sequence, packet.payload) else {
            return;
        };
        let text = || String::from_utf8_lossy(body).into_owned();
        match *command {
            COM_QUERY => {
                executed.lock().expect("not poisoned").push(text());
                session.awaiting.push_back(None);
            }
            COM_STMT_PREPARE => session.awaiting.push_back(Some(text())),
            COM_STMT_EXECUTE => {
                let id = u32::from_le_bytes(body[..4].try_into().expect("a statement id"));
                let text = session
                    .prepared
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| format!("(statement {id}, prepare not seen)"));
                executed.lock().expect("not poisoned").push(text);
                session.awaiting.push_back(None);
            }
            COM_STMT_CLOSE | COM_QUIT => {}
            _ => session.awaiting.push_back(None),
        }
    });
    let downstream = relay(&mut from_server, &mut to_client, |packet| {
        // Each answer starts at sequence 1; a prepare's `OK` names its id.
        if packet.sequence != 1 {
            return;
        }
        let mut session = session.lock().expect("not poisoned");
        if let (Some(Some(text)), [0x00, id @ ..]) = (session.awaiting.pop_front(), packet.payload)
        {
            let id = u32::from_le_bytes(id[..4].try_into().expect("a statement id"));
            session.prepared.insert(id, text);
        }
    });
    let _ = tokio::join!(upstream, downstream);
}

struct Packet<'b> {
    sequence: u8,
    payload: &'b [u8],
}

/// Copies `from` to `to`, showing `seen` each whole packet first.
async fn relay(
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    mut seen: impl FnMut(Packet<'_>),
) {
    let mut buffer = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    loop {
        let n = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buffer.extend_from_slice(&chunk[..n]);
        while buffer.len() >= 4 {
            let length =
                usize::from(buffer[0]) | usize::from(buffer[1]) << 8 | usize::from(buffer[2]) << 16;
            if buffer.len() < 4 + length {
                break;
            }
            seen(Packet {
                sequence: buffer[3],
                payload: &buffer[4..4 + length],
            });
            buffer.drain(..4 + length);
        }
        if to.write_all(&chunk[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
