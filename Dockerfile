# syntax=docker/dockerfile:1
# One image for `sickbay serve`, `sickbay agent`, and the init container that copies the
# shim into pods (/bin/sh /opt/sickbay/shim/install /sickbay).
#   docker build -t ghcr.io/sickbay-dev/sickbay:0.1.0 .

# Node 24 LTS. The build stage compiles TypeScript; nothing of it but dist/ ships.
FROM node:24-alpine AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# The shim's static helpers: busybox (liveness checks in app images that have no HTTP
# client) and sigexec (starts the app with its signals at their defaults).
FROM alpine:3.22 AS helper
RUN apk add --no-cache busybox-static gcc musl-dev
COPY shim/sigexec.c /tmp/sigexec.c
RUN gcc -static -Os -s -o /tmp/sigexec /tmp/sigexec.c

FROM node:24-alpine AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:24-alpine
ENV NODE_ENV=production
WORKDIR /opt/sickbay
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
# The shim is POSIX sh; the init container runs it with this image's busybox sh and cp.
COPY shim ./shim
COPY --from=helper /bin/busybox.static ./shim/busybox
COPY --from=helper /tmp/sigexec ./shim/sigexec
# Non-root (the chart and the injected init container run as 65532 and ask for it).
# Nothing is written outside /tmp, so a read-only root filesystem works.
USER 65532:65532
ENTRYPOINT ["node", "/opt/sickbay/dist/cli.js"]
CMD ["--help"]
