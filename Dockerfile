# urumi-server image: the HTTP API, the dashboard and helm (charts/urumi runs it).
#   docker build -t urumi-server .
# Stage 1 builds the binary; stage 2 fetches helm; stage 3 is a slim, non-root runtime.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p urumi-http --bin urumi-server

FROM debian:bookworm-slim AS helm
ARG HELM_VERSION=v3.17.3
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
 && curl -fsSL "https://get.helm.sh/helm-${HELM_VERSION}-linux-amd64.tar.gz" | tar -xz -C /tmp \
 && install -m 0755 /tmp/linux-amd64/helm /usr/local/bin/helm

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/urumi --create-home urumi
COPY --from=helm /usr/local/bin/helm /usr/local/bin/helm
COPY --from=build /src/target/release/urumi-server /usr/local/bin/urumi-server
USER 10001:10001
WORKDIR /var/lib/urumi
ENV HOME=/var/lib/urumi URUMI_LISTEN=0.0.0.0:8080 URUMI_STATE=sqlite:///var/lib/urumi/urumi.db URUMI_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/urumi-server"]
