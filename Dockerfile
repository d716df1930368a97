# syntax=docker/dockerfile:1
#
# uplink container image: cargo-chef stages (dependencies cached apart from
# the source), a release build from the committed Cargo.lock, and a slim
# Debian runtime that holds only the binary, its configuration and CA roots.
#
#   docker build -t uplink .
#   docker run --rm -p 6060:6060 -e DATABASE_URL=postgres://... uplink
#
# Base images are pinned by tag. Pin them by digest too (`image:tag@sha256:…`)
# in your registry mirror: digests could not be resolved where this file was
# written (no registry access), so none is given here.
# The builder and the runtime are both Debian 12 (bookworm): same glibc.

ARG RUST_IMAGE=rust:1.95.0-bookworm
ARG RUNTIME_IMAGE=debian:12.12-slim

# ---- chef: the toolchain plus cargo-chef, at a pinned version -------------
FROM ${RUST_IMAGE} AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# ---- planner: the dependency recipe (changes only when Cargo.* change) ----
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# ---- builder: dependencies first (cached layer), then uplink itself -------
# The context holds the whole workspace (the bench/ crate too: cargo reads
# every member's manifest), but only the uplink binary is built.
FROM chef AS builder
# Queries checked at compile time use the committed .sqlx/ data; a build never
# needs a live database.
ENV SQLX_OFFLINE=true
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin uplink
COPY . .
RUN cargo build --release --locked --bin uplink \
    && strip target/release/uplink

# ---- runtime ---------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime
# CA roots for TLS to Postgres, S3 and identity providers' JWKS; nothing else.
# Versions are not pinned: the base tag fixes the Debian point release, and a
# rebuild should pick up that release's security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 uplink \
    && useradd --system --uid 10001 --gid uplink --home-dir /var/lib/uplink \
        --shell /usr/sbin/nologin uplink \
    && mkdir -p /var/lib/uplink \
    && chown uplink:uplink /var/lib/uplink

WORKDIR /app
COPY --from=builder /src/target/release/uplink /usr/local/bin/uplink
# Migrations are embedded in the binary; the files ship for reference and for
# operators who apply them with other tools.
COPY config/ /app/config/
COPY migrations/ /app/migrations/

# production: JSON logs, migrations as an explicit step (`uplink migrate`),
# signing keys required from configuration (a secret store).
# data_dir holds generated development keys and local attachments; mount a
# volume there when using `attachments.storage: local`.
# A container listens on every interface (in development too: a port is
# only reachable where it is published), the metrics listener too: publish
# 9464 to the scraper only, never to the public load balancer.
ENV UPLINK_ENVIRONMENT=production \
    UPLINK__SERVER__HOST=0.0.0.0 \
    UPLINK__METRICS__HOST=0.0.0.0 \
    UPLINK_CONFIG_DIR=/app/config \
    UPLINK__SERVER__DATA_DIR=/var/lib/uplink

# Numeric, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 10001:10001
# The API, and the Prometheus metrics listener (metrics.port).
EXPOSE 6060 9464

# Slim images have no curl: the binary checks its own /health/live.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["uplink", "healthcheck"]

ENTRYPOINT ["uplink"]
CMD ["serve"]
