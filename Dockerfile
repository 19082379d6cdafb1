# syntax=docker/dockerfile:1.7
# One image, three binaries: tributary-operator (the entrypoint), tributary-sink (the command of
# every sink Deployment the operator writes) and tributary-seed (the seed-data producer).
#   make image                      # docker build -t tributary:dev .
#   make operator-install           # builds it, imports it into k3d and installs the chart

FROM docker.io/library/rust:1.95-bookworm AS build
# librdkafka is built from source by the rdkafka crate (cmake) and links OpenSSL and zlib.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cmake libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY api api
COPY crdgen crdgen
COPY operator operator
COPY sink sink
COPY tests tests
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
      --bin tributary-operator --bin tributary-sink --bin tributary-seed \
 && mkdir -p /out \
 && cp target/release/tributary-operator target/release/tributary-sink target/release/tributary-seed /out/

FROM docker.io/library/debian:bookworm-slim
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates libssl3 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 65532 --no-create-home --shell /usr/sbin/nologin tributary
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/tributary-operator"]
