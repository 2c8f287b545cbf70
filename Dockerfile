# syntax=docker/dockerfile:1
# Two images from one file, both built by the project:
#   docker buildx build --sbom=true --provenance=true -t ghcr.io/sickbay-dev/sickbay:0.1.0 .
#   docker buildx build --sbom=true --provenance=true --target shim -t ghcr.io/sickbay-dev/sickbay-shim:0.1.0 .
# - the default target: `sickbay serve` and `sickbay agent` (Node 24, dist/, node_modules);
# - `shim`: what injected pods mount as an image volume or run as the init container, and
#   nothing else (~2 MB: the shim's scripts, a static busybox, sigexec). Every injected pod
#   pulls it, not the 100+ MB image.
#
# Base images are pinned by digest (Renovate or Dependabot move them); override with
# --build-arg NODE_IMAGE=... / ALPINE_IMAGE=... for a mirror.
ARG NODE_IMAGE=node:24-alpine@sha256:a0b9bf06e4e6193cf7a0f58816cc935ff8c2a908f81e6f1a95432d679c54fbfd
ARG ALPINE_IMAGE=alpine:3.22@sha256:14358309a308569c32bdc37e2e0e9694be33a9d99e68afb0f5ff33cc1f695dce

# The build stage compiles TypeScript (tsconfig.build.json: src/ only, no source maps).
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# The shim's static helpers: busybox (the init container's shell, and liveness checks in
# app images that have no HTTP client) and sigexec (starts the app with its signals at
# their defaults).
FROM ${ALPINE_IMAGE} AS helper
RUN apk add --no-cache busybox-static gcc musl-dev
COPY shim/sigexec.c /tmp/sigexec.c
RUN gcc -static -Os -s -o /tmp/sigexec /tmp/sigexec.c

# Production dependencies without their source maps, and the SBOM of what ships (npm's
# own generator, SPDX).
FROM ${NODE_IMAGE} AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force \
 && find node_modules -name '*.map' -type f -delete \
 && npm sbom --omit=dev --package-lock-only --sbom-format=spdx > /src/sbom.spdx.json

# The runtime's base: Node without its package managers (npm, npx, corepack, yarn, apk).
FROM ${NODE_IMAGE} AS runtime
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
      /opt/yarn-* /usr/local/bin/yarn /usr/local/bin/yarnpkg \
      /sbin/apk /etc/apk /lib/apk /usr/share/apk /var/cache/apk

# The init container's image. It runs as 65532 with a read-only root filesystem:
#   /opt/sickbay/shim/busybox sh /opt/sickbay/shim/install /sickbay
FROM scratch AS shim
LABEL org.opencontainers.image.title="sickbay-shim" \
      org.opencontainers.image.description="The supervisor shim sickbay injects into pods (an image volume, or copied by an init container)" \
      org.opencontainers.image.source="https://github.com/sickbay-dev/sickbay" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
COPY shim/install shim/supervise shim/probe shim/diagnose /opt/sickbay/shim/
COPY --from=helper /bin/busybox.static /opt/sickbay/shim/busybox
COPY --from=helper /tmp/sigexec /opt/sickbay/shim/sigexec
USER 65532:65532
ENTRYPOINT ["/opt/sickbay/shim/busybox", "sh", "/opt/sickbay/shim/install"]
CMD ["/sickbay"]

FROM runtime
LABEL org.opencontainers.image.title="sickbay" \
      org.opencontainers.image.description="Keep the crash scene, restore the service: quarantines broken pods, isolates faulty nodes" \
      org.opencontainers.image.source="https://github.com/sickbay-dev/sickbay" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
ENV NODE_ENV=production
WORKDIR /opt/sickbay
COPY --from=deps /src/node_modules ./node_modules
COPY --from=deps /src/sbom.spdx.json ./sbom.spdx.json
COPY --from=build /src/dist ./dist
COPY package.json ./
# The shim stays here too, so an install that sets SICKBAY_SHIM_IMAGE to this image works.
COPY shim ./shim
COPY --from=helper /bin/busybox.static ./shim/busybox
COPY --from=helper /tmp/sigexec ./shim/sigexec
# Non-root (the chart runs it as 65532 and asks for it). Nothing is written outside
# /tmp, so a read-only root filesystem works.
USER 65532:65532
ENTRYPOINT ["node", "/opt/sickbay/dist/cli.js"]
CMD ["--help"]
