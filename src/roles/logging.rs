//! Log setup: servers log at `info` by default, clients at `warn`, the demo (whose in-process
//! roles refuse things on purpose) at `error`; `RUST_LOG` overrides. Lines go to stderr as
//! text or, with `--log-format json`, one JSON object per line (fields flattened, e.g.
//! `request`, `peer`, `outcome`, `reason` on every admitted or refused request).

use tracing_subscriber::EnvFilter;

/// Who is logging.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Server,
    Client,
    Demo,
}

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `message` and the event's fields.
    Json,
}

pub fn init(kind: Kind, format: Format) {
    let default = match kind {
        Kind::Server => "info,quinn=warn",
        Kind::Client => "warn",
        Kind::Demo => "error",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        Format::Text => builder.try_init(),
        Format::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}
