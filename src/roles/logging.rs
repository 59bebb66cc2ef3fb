//! Log setup: servers log at `info` by default, clients at `warn`; `RUST_LOG` overrides.

use tracing_subscriber::EnvFilter;

pub fn init(server: bool) {
    let default = if server { "info,quinn=warn" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
