# syntax=docker/dockerfile:1
# The c2vm image: the static c2vm binary plus the Debian tools it execs to
# assemble disks. The BuildKit frontend (next issue) runs from this image and
# finds it again for its assembly step.

FROM golang:1.26-trixie AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/c2vm ./cmd/c2vm

FROM debian:trixie-slim
# trixie's e2fsprogs (1.47.2) reads tar input with libarchive.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      e2fsprogs libarchive13t64 fdisk dosfstools mtools \
      grub-common grub-pc-bin grub-efi-amd64-bin qemu-utils \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/c2vm /usr/bin/c2vm
ENTRYPOINT ["/usr/bin/c2vm"]
