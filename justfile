# Everyday recipes. `just --list` shows them.

# Run the whole system on loopback with simulated providers
demo *ARGS:
    cargo run --release -- demo {{ARGS}}

# The test command of the README
test:
    cargo test --release

# Everything CI checks
ci:
    .ci/run

# cargo-fuzz targets of every decoder of network or file input, 10^5 inputs each
fuzz *ARGS:
    .ci/fuzz {{ARGS}}

# Engine and system benchmarks (prints time, rounds and bytes per party)
bench *ARGS:
    cargo bench --bench mpc {{ARGS}}

# A deployment on loopback in ./deploy, then its servers in the background
local:
    cargo run --release -- init --out deploy --force
    cargo run --release -- coordinator --cluster deploy/cluster.toml &
    for i in 0 1 2; do cargo run --release -- party --id $i --cluster deploy/cluster.toml & done

fmt:
    cargo fmt

lint:
    cargo clippy --release --all-targets -- -D warnings
