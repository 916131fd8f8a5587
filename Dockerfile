# The c2vm image: the static c2vm binary (the BuildKit frontend, and
# `c2vm assemble` for the frontend's assembly step) plus the Debian tools it
# execs. No syntax line: the built-in Dockerfile frontend builds it, so no
# other frontend image has to be reachable.

FROM golang:1.26-trixie AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/c2vm ./cmd/c2vm

FROM debian:trixie-slim
# trixie's e2fsprogs (1.47.2) reads tar input, with libarchive.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      e2fsprogs libarchive13t64 fdisk dosfstools mtools \
      grub-common grub-pc-bin grub-efi-amd64-bin qemu-utils \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/c2vm /usr/bin/c2vm
# What the frontend needs from BuildKit: its inputs (named contexts),
# subrequests (--call outline/targets), and no network for itself.
LABEL moby.buildkit.frontend.network.none="true" \
      moby.buildkit.frontend.caps="moby.buildkit.frontend.inputs,moby.buildkit.frontend.subrequests,moby.buildkit.frontend.contexts"
ENTRYPOINT ["/usr/bin/c2vm"]
