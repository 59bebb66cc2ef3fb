//! Log setup: servers log at `info` by default, clients at `warn`, the demo (whose in-process
//! roles refuse things on purpose) at `error`; `RUST_LOG` overrides.

use tracing_subscriber::EnvFilter;

/// Who is logging.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Server,
    Client,
    Demo,
}

pub fn init(kind: Kind) {
    let default = match kind {
        Kind::Server => "info,quinn=warn",
        Kind::Client => "warn",
        Kind::Demo => "error",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
