# kimai-mcp as a container image: the static binary in an otherwise empty image (FROM scratch).
#
#   make static && make image          # tags kimai-mcp:<version> and kimai-mcp:latest
#   docker compose up -d               # see compose.yaml and README.md, "Container"
#
# This file copies the binary that `make static` built (target/static/kimai-mcp, statically
# linked: it needs no libc, no CA bundle and no shell in the image); `make image-test` builds
# and checks exactly this. With network access you can build from source instead: add a build
# stage in front and copy from it, e.g.
#
#   FROM rust:1-bookworm AS build
#   WORKDIR /src
#   COPY . .
#   RUN RUSTFLAGS="-C target-feature=+crt-static" \
#       cargo build --locked --release --target x86_64-unknown-linux-gnu
#   ...
#   COPY --from=build /src/target/x86_64-unknown-linux-gnu/release/kimai-mcp /kimai-mcp
#
# (and let the sources through .dockerignore).
#
# What the binary needs at run time, and why nothing else is here:
#   - TLS: the Mozilla (webpki) roots are compiled in; a private CA is a mounted PEM file
#     (ssl_verify in users.json, KIMAI_SSL_VERIFY), see compose.yaml.
#   - Names: glibc's built-in "files" and "dns" lookups; the container runtime provides
#     /etc/hosts and /etc/resolv.conf.
#   - Time: logs are in UTC and Kimai sends its own time zones, so no zoneinfo.
#   - Users: it runs as a numeric user (10001) and never looks a name up: no /etc/passwd.
#   - Files: it writes no temporary files (no /tmp); only the OAuth state, in /var/lib/kimai-mcp.
#   - Randomness: in a static binary the getrandom crate cannot find glibc's getrandom() (no
#     dlsym) and reads /dev/urandom, which every container runtime provides (an OCI default
#     device), as it provides /etc/hosts and /etc/resolv.conf.
FROM scratch

# Overridden by `make image` from Cargo.toml; keep this default in step (make image-test checks).
ARG VERSION=0.1.0
# The repository URL of the sources, for org.opencontainers.image.source: the project records
# none, so it is empty unless given (`make image IMAGE_SOURCE=https://…`).
ARG SOURCE=""

LABEL org.opencontainers.image.title="kimai-mcp" \
      org.opencontainers.image.description="MCP server for the Kimai time-tracking system: stdio and HTTP transports, one static binary" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}"

# Owned by root and not writable by the server's user.
COPY target/static/kimai-mcp /kimai-mcp
# The state directory (for KIMAI_MCP_OAUTH_STATE_FILE), owned by the server's user so that a new
# named volume mounted here starts out writable by it (Docker and Podman copy the owner). COPY
# --chown gives the parents it creates (/var, /var/lib) to that user as well; with no shell in
# the image they cannot be made otherwise, and they hold nothing but this directory.
COPY --chown=10001:10001 config/image-state/ /var/lib/kimai-mcp/

# A numeric user and group that exist nowhere else: no name lookup, never root.
USER 10001:10001

# Inside a container the server must listen on all interfaces (outside one its default stays
# 127.0.0.1); `kimai-mcp health` reads the same two variables.
ENV KIMAI_MCP_HOST=0.0.0.0 \
    KIMAI_MCP_PORT=8000
EXPOSE 8000

# GET /health on 127.0.0.1:$KIMAI_MCP_PORT; exit 0 healthy, 1 not. (Needs the docker image
# format: `podman build --format docker`, as `make image` does; OCI images drop HEALTHCHECK.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/kimai-mcp", "health"]

ENTRYPOINT ["/kimai-mcp"]
CMD ["serve"]
