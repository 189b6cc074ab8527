# syntax=docker/dockerfile:1
# (BuildKit: the cache mounts below keep the registry index and target/ between builds.)
# A container image of berth: built in a Rust image, run in a distroless one (glibc, no shell,
# not root). Not built on the machine this was written on (it has no Docker engine).
#
#   docker build --build-arg BERTH_COMMIT=$(git rev-parse --short=12 HEAD) -t berth .
#   docker run -p 5000:5000 -v berth-data:/var/lib/berth \
#     -e BERTH_ACCESS_KEY_ID=AKIAEXAMPLEKEY1 -e BERTH_SECRET_ACCESS_KEY_FILE=/run/secrets/key berth
#
# berth listens beyond loopback here, so it refuses to start without access keys (or
# BERTH_INSECURE_ACCEPT_ANY_SIGNATURE=true). Probes: GET /healthz and GET /readyz (the image has
# no shell or curl for a HEALTHCHECK; orchestrators probe over HTTP).

FROM rust:1-bookworm AS build
WORKDIR /src
# The commit `berth --version` reports: .git is not in the build context.
ARG BERTH_COMMIT=unknown
ENV BERTH_COMMIT=${BERTH_COMMIT}
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p berth \
    && install -D target/release/berth /out/berth

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/berth /usr/local/bin/berth
# The data directory: blobs, SQLite, the signing key (unless configured elsewhere).
VOLUME /var/lib/berth
WORKDIR /var/lib/berth
EXPOSE 5000
ENTRYPOINT ["/usr/local/bin/berth"]
CMD ["serve", "--listen", "0.0.0.0:5000", "--data-dir", "/var/lib/berth"]
