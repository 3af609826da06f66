# The deployable apps, one image each, from one multi-stage build:
#   docker build --target relay      -t eventbus-relay .
#   docker build --target dlq-mirror -t eventbus-dlq-mirror .
#   docker build --target demo       -t eventbus-demo .
# Each runtime image holds only its app, its production dependencies (`pnpm deploy --prod`)
# and the migrations, runs as the unprivileged `node` user, and starts node directly
# (exec-form CMD, no shell in between) so SIGTERM reaches the app's shutdown handler.
# The Node that scripts/run.sh and CI run (.node-version; docs/node-versions.md): bump both together.
# Overridable for a 22 image (--build-arg NODE_VERSION=22.23.5; engines allow ^22.15.0 || ^24.0.0).
ARG NODE_VERSION=24.22.3

# ---- build: all dependencies, compile, then one pruned production tree per app ----
# The full image has python/make/g++ for the few native builds (testcontainers' ssh2 in the demo).
FROM node:${NODE_VERSION}-bookworm AS build
# CI: pnpm never prompts, and installs with the lockfile as it is.
ENV CI=true
# The version of package.json's packageManager (npm, not corepack, as in scripts/run.sh).
RUN npm install -g pnpm@10.34.9
WORKDIR /repo
# Dependencies are fetched from the lockfile alone, so this layer survives source changes.
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json .npmrc ./
# kafkajs is installed with its patch (patches/, see README "Performance"); pnpm needs it at fetch.
COPY patches ./patches
RUN pnpm fetch
COPY . .
RUN pnpm install --offline --frozen-lockfile
# pnpm runs the builds in dependency order (the libraries' dist/ first).
RUN pnpm --filter "@eventbus/relay-app..." --filter "@eventbus/dlq-mirror..." --filter "@eventbus/demo..." run build
# --legacy: copies each workspace package as it is on disk (dist/ included) instead of
# requiring inject-workspace-packages for the whole repository. "As it is on disk" means
# src/ and test/ too, in the app and in every @eventbus package under node_modules/.pnpm:
# all are removed (the packages' `source` export condition is only for vitest).
RUN pnpm deploy --legacy --prod --filter=@eventbus/relay-app /out/relay \
 && pnpm deploy --legacy --prod --filter=@eventbus/dlq-mirror /out/dlq-mirror \
 && pnpm deploy --legacy --prod --filter=@eventbus/demo /out/demo \
 && rm -rf /out/*/src /out/*/test /out/*/.turbo \
    /out/*/node_modules/.pnpm/@eventbus+*/node_modules/@eventbus/*/src \
    /out/*/node_modules/.pnpm/@eventbus+*/node_modules/@eventbus/*/test \
    /out/*/node_modules/.pnpm/@eventbus+*/node_modules/@eventbus/*/.turbo \
 && cp -r packages/schema/drizzle /out/drizzle

# ---- runtime base: no pnpm, no compiler, no sources ----
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# The migrations live outside node_modules, where @eventbus/schema cannot find them by itself.
ENV NODE_ENV=production EVENTBUS_MIGRATIONS_DIR=/app/drizzle
WORKDIR /app
# Files stay owned by root: the app only reads them.
COPY --from=build /out/drizzle /app/drizzle

# ---- the DLQ mirror: DLQ topics → eventbus.dead_letters ----
FROM runtime AS dlq-mirror
COPY --from=build /out/dlq-mirror /app
USER node
ENV HTTP_PORT=8081
EXPOSE 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.HTTP_PORT||8081)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/main.js"]

# ---- the demo workload: orders with events, two consumer groups, a live view on stderr ----
FROM runtime AS demo
COPY --from=build /out/demo /app
USER node
CMD ["node", "dist/main.js", "--duration", "600"]

# ---- the relay: outbox → Kafka (last, so the default target of a plain `docker build .`) ----
FROM runtime AS relay
COPY --from=build /out/relay /app
USER node
# A young generation of 2 × 4 MB: V8 sizes it from the host's memory (2 × 64 MB on a 24 GB
# host), and the relay's garbage is per batch, so a larger one only holds dead batches longer:
# peak RSS draining 100,000 rows ~280 MB → ~155 MB, relay CPU per event unchanged
# (`pnpm bench --only relay-memory`, docs/performance.md#memory).
ENV HTTP_PORT=8080 NODE_OPTIONS=--max-semi-space-size=4
EXPOSE 8080
# /readyz: Postgres, Kafka and the LISTEN connection answer. Node's fetch, so no curl in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.HTTP_PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/main.js"]
