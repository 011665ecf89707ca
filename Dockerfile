# syntax=docker/dockerfile:1
#
# TokenRouter image: one binary, `tokenrouter`, running `serve` by default; give `control-plane` or
# `data-plane` as the command to run one plane (deploy/compose.yaml does).
#
#   docker build -t tokenrouter .
#   docker run --rm -p 8080:8080 tokenrouter serve --demo
#
# No HEALTHCHECK: the runtime image has no curl or gRPC probe. Have the orchestrator probe the data
# plane's HTTP `/readyz` (ready after its first snapshot; `/livez` for liveness) and the control
# plane's gRPC `grpc.health.v1.Health/Check` (NOT_SERVING while its store is unreachable).

############################ build ############################
FROM rust:1.95-slim-bookworm AS builder

# The slim image has gcc and libc6-dev (for ring, bundled SQLite); jemalloc's build also needs
# make. No OpenSSL (rustls), no protobuf-compiler (protoc-bin-vendored), no pkg-config.
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /work

# The workspace has 7 members whose manifests all have to be present to resolve it, so the whole
# context is copied (.dockerignore keeps target/, .git/, virtualenvs and node_modules out) and the
# cache lives in cache mounts instead of layers: the crates.io registry, git checkouts and target/.
COPY . .

# target/ is a cache mount, so it is not part of the image: the binary is copied out of it in the
# same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/work/target,sharing=locked \
    cargo build --release --locked -p tokenrouter \
    && install -D -m 0755 /work/target/release/tokenrouter /out/tokenrouter

############################ runtime ############################
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 tokenrouter \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /var/lib/tokenrouter --shell /usr/sbin/nologin tokenrouter \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/tokenrouter

COPY --from=builder /out/tokenrouter /usr/local/bin/tokenrouter

# Inside a container the listeners must not be on 127.0.0.1 (the binary's default), or nothing
# outside the container can reach them. With gRPC on 0.0.0.0, `serve` and `control-plane` refuse to
# start without TOKENROUTER_ADMIN_TOKEN (or, for `control-plane`, mutual TLS): pass one with -e. A named volume mounted on /var/lib/tokenrouter starts with
# this directory's owner (uid 10001).
ENV TOKENROUTER_DATA_DIR=/var/lib/tokenrouter \
    TOKENROUTER_HTTP_ADDR=0.0.0.0:8080 \
    TOKENROUTER_GRPC_ADDR=0.0.0.0:50051 \
    HOME=/var/lib/tokenrouter

WORKDIR /var/lib/tokenrouter
USER 10001

# 8080: OpenAI-compatible HTTP API (data plane); 50051: gRPC Admin and Discovery (control plane);
# 9090: the admin listener (/metrics, /status); set TOKENROUTER_ADMIN_ADDR=0.0.0.0:9090 to reach
# it from outside the container, and keep it off public networks.
EXPOSE 8080 50051 9090

ENTRYPOINT ["/usr/local/bin/tokenrouter"]
CMD ["serve"]
