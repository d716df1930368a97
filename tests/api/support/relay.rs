//! What the statement relays (Postgres, MySQL) share: a listener on a free
//! port that forwards each connection to the real server, and the settings
//! change that points uplink's database URL at it.

use std::sync::{Arc, OnceLock};

use tokio::net::{TcpListener, TcpStream};

use uplink::config::Secret;
use uplink::settings::Settings;

#[derive(Clone, Default)]
pub struct Relay {
    /// `host:port` of the real server, set when the app's settings are known.
    target: Arc<OnceLock<String>>,
    port: Arc<OnceLock<u16>>,
}

impl Relay {
    /// Listens on a free port; once `route` has run, each connection is
    /// handed to `relay` with one of its own to the real server.
    pub async fn start<F, Fut>(relay: F) -> Self
    where
        F: Fn(TcpStream, TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let this = Self::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        this.port
            .set(listener.local_addr().expect("address").port())
            .expect("port set once");
        let target = this.target.clone();
        let relay = Arc::new(relay);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let target = target.get().expect("routed").clone();
                let relay = relay.clone();
                tokio::spawn(async move {
                    let server = TcpStream::connect(target)
                        .await
                        .expect("reach the database");
                    relay(client, server).await;
                });
            }
        });
        this
    }

    /// A settings customisation that points the app's database URL at this
    /// relay; `plain_text` is the URL parameter that turns TLS off, so the
    /// messages can be read.
    pub fn route(
        &self,
        default_port: u16,
        plain_text: (&'static str, &'static str),
    ) -> impl FnOnce(&mut Settings) + 'static {
        let relay = self.clone();
        move |settings| {
            let real = settings.database.url.as_ref().expect("a database URL");
            let mut url = reqwest::Url::parse(real.expose()).expect("a database URL");
            let target = format!(
                "{}:{}",
                url.host_str().expect("a host"),
                url.port().unwrap_or(default_port)
            );
            relay.target.set(target).expect("routed once");
            url.set_host(Some("127.0.0.1")).expect("host");
            url.set_port(Some(*relay.port.get().expect("listening")))
                .expect("port");
            url.query_pairs_mut()
                .append_pair(plain_text.0, plain_text.1);
            settings.database.url = Some(Secret::new(url.to_string()));
        }
    }
}
