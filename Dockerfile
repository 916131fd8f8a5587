# The c2vm image: the static c2vm binary (the BuildKit frontend, and
# `c2vm assemble` for the frontend's assembly step) plus the Debian tools it
# execs. No syntax line: the built-in Dockerfile frontend builds it, so no
# other frontend image has to be reachable.

FROM golang:1.26-trixie AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
ARG C2VM_VERSION=dev
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${C2VM_VERSION}" -o /out/c2vm ./cmd/c2vm

FROM debian:trixie-slim
# The root filesystem is c2vm's own ext4 writer; these write the partition
# table, the boot loaders, the ESP and the other disk formats.
# App mode boots images with c2vm's own kernel: Debian's generic kernel
# (signed, every driver a module), unpacked with its modules where
# `c2vm assemble --mode app` looks (C2VM_KERNEL_DIR), not installed: no
# initramfs hook runs, c2vm builds its own initramfs.
# Debian's signed UEFI chain (shim signed by Microsoft, GRUB and MokManager
# signed by Debian), unpacked where `c2vm assemble` looks
# (/usr/lib/c2vm/secureboot), not installed: app disks, and images with a
# Debian kernel of their own, boot with Secure Boot on through it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      fdisk dosfstools mtools grub-common grub-pc-bin grub-efi-amd64-bin qemu-utils \
 && cd /tmp \
 && apt-get download $(apt-cache depends --no-recommends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)/\1/p' | head -n1) \
 && mkdir -p /usr/lib/c2vm/kernel && dpkg -x linux-image-*.deb /usr/lib/c2vm/kernel \
 && rm -f linux-image-*.deb \
 && apt-get download shim-signed shim-helpers-amd64-signed grub-efi-amd64-signed \
 && mkdir -p /usr/lib/c2vm/secureboot \
 && for f in shim-signed_*.deb shim-helpers-amd64-signed_*.deb grub-efi-amd64-signed_*.deb; do dpkg -x "$f" /usr/lib/c2vm/secureboot; done \
 && rm -f ./*.deb \
 && rm -rf /var/lib/apt/lists/*
ENV C2VM_KERNEL_DIR=/usr/lib/c2vm/kernel \
    C2VM_SECURE_BOOT_DIR=/usr/lib/c2vm/secureboot
COPY --from=build /out/c2vm /usr/bin/c2vm
# What the frontend needs from BuildKit: its inputs (named contexts),
# subrequests (--call outline/targets), and no network for itself.
ARG C2VM_VERSION=dev
LABEL org.opencontainers.image.version="${C2VM_VERSION}" \
      org.opencontainers.image.title="c2vm" \
      moby.buildkit.frontend.network.none="true" \
      moby.buildkit.frontend.caps="moby.buildkit.frontend.inputs,moby.buildkit.frontend.subrequests,moby.buildkit.frontend.contexts"
ENTRYPOINT ["/usr/bin/c2vm"]
