# dsync: DTP host, tracker and client in one image.
#   docker build -t dsync .
# See README.md "## Docker" for the run lines (host, tracker, sync).

# ---- build: full dependencies, TypeScript compiled to dist/, the CLI bundled into dist/bundle/
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# webrtc-polyfill is replaced by a local stub (package.json "overrides"): npm ci needs it.
COPY stubs ./stubs
# --ignore-scripts: our "prepare" would run tsc before the sources are copied; the native
# optional deps (bufferutil, utf-8-validate, utp-native) are not needed (see README).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY types ./types
COPY src ./src
COPY cli ./cli
COPY tracker ./tracker
COPY scripts ./scripts
# tsconfig also includes test/, testbed/ and bench/, which are not copied: only the product is built.
RUN npx tsc -p tsconfig.json && node scripts/bundle.mjs

# ---- runtime: the bundle only (dsync has no runtime dependencies once bundled), non-root
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json ./
COPY --from=build /src/dist/bundle ./dist/bundle
# The node image's own "node" user has uid 1000; dsync gets the next one.
RUN groupadd --system dsync \
 && useradd --system --gid dsync --create-home --home-dir /home/dsync dsync \
 && mkdir -p /home/dsync/dxync /mirrors \
 && chown -R dsync:dsync /home/dsync /mirrors
USER dsync
ENV DXYNC_HOME=/home/dsync/dxync
# The DTP port (peer wire and HTTP on one TCP port); the tracker, when run with --port 47921,
# uses it on TCP and UDP.
EXPOSE 47921/tcp 47921/udp
VOLUME ["/mirrors", "/home/dsync/dxync"]
ENTRYPOINT ["node", "/app/dist/bundle/dsync.js"]
CMD ["--help"]
