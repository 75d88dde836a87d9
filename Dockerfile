# syntax=docker/dockerfile:1.7
# One image per service: docker build --build-arg SERVICE=book -t housebook/book .
# SERVICE is one of: book payment house mypage notification gateway.

FROM rust:1.95-slim-bookworm AS build
ARG SERVICE
RUN test -n "$SERVICE" || (echo "--build-arg SERVICE=<book|payment|house|mypage|notification|gateway> is required" && false)
# librdkafka is compiled from source (C compiler, make, perl for its configure); TLS to
# PostgreSQL, Kafka and the OTLP collector links the system's OpenSSL (libssl-dev here,
# libssl3 in the runtime image).
RUN apt-get update && apt-get install -y --no-install-recommends build-essential perl pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p "$SERVICE" --bin "$SERVICE" \
    && install -D "target/release/$SERVICE" /out/service

# glibc, libgcc and OpenSSL (libssl3, part of distroless base) only; zlib and librdkafka
# are linked statically. No shell, no package
# manager, no build tools; runs as the distroless nonroot user (uid 65532).
FROM gcr.io/distroless/cc-debian12:nonroot
ARG SERVICE
LABEL org.opencontainers.image.title="housebook-${SERVICE}"
COPY --from=build /out/service /app/service
USER 65532:65532
ENV HOUSEBOOK_HTTP__HOST=0.0.0.0 HOUSEBOOK_HTTP__PORT=8080 HOUSEBOOK_LOG__FORMAT=json
# 8080 the API, 9090 /metrics (HOUSEBOOK_HTTP__ADMIN_PORT), book also 50051 (gRPC, HOUSEBOOK_GRPC__PORT).
EXPOSE 8080 9090 50051
ENTRYPOINT ["/app/service"]
