# The c2vm image: the static c2vm binary (the BuildKit frontend, and
# `c2vm assemble` for the frontend's assembly step) plus the Debian tools it
# execs, and what it puts on disks of either architecture (amd64, arm64):
# an init binary, a kernel and GRUB's modules for each. No syntax line: the
# built-in Dockerfile frontend builds it, so no other frontend image has to
# be reachable. Built for linux/amd64 and linux/arm64 (docker-bake.hcl);
# both variants hold the same files for both architectures.

# The Go build runs on the build platform and cross-compiles: an arm64
# variant needs no emulated compiler. It does not depend on the target, so
# both variants share one build of both binaries.
FROM --platform=$BUILDPLATFORM golang:1.26-trixie AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
ARG C2VM_VERSION=dev
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    for arch in amd64 arm64; do \
      CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -ldflags "-s -w -X main.version=${C2VM_VERSION}" \
        -o /out/init/c2vm-$arch ./cmd/c2vm || exit 1; \
    done

# What disks of each architecture need from Debian, fetched and unpacked on
# the build platform (no emulation; both variants share it):
# GRUB's module directories for every platform c2vm installs (i386-pc and
# x86_64-efi of amd64, arm64-efi of arm64), in /usr/lib/c2vm/grub/<platform>.
# App mode boots images with c2vm's own kernel: Debian's generic kernel of
# each architecture (signed, every driver a module), with its modules, in
# /usr/lib/c2vm/kernel/<arch> (C2VM_KERNEL_DIR holds one root per
# architecture). Its init is c2vm itself, one static binary per
# architecture in /usr/lib/c2vm/init (C2VM_INIT_DIR).
# Debian's signed amd64 UEFI chain (shim signed by Microsoft, GRUB and
# MokManager signed by Debian), in /usr/lib/c2vm/secureboot, where
# `c2vm assemble` looks: app disks, and images with a Debian kernel of their
# own, boot with Secure Boot on through it.
# Each is downloaded for its own architecture with apt-get download (checked
# against the archive's signed indexes, as apt-get install does) and
# unpacked with dpkg -x, not installed: no maintainer script or initramfs
# hook runs.
FROM --platform=$BUILDPLATFORM debian:trixie-slim AS payload
RUN set -e \
 && native=$(dpkg --print-architecture) \
 && for a in amd64 arm64; do [ "$a" = "$native" ] || dpkg --add-architecture "$a"; done \
 && apt-get update \
 && mkdir -p /tmp/c2vm /payload/grub /payload/secureboot && cd /tmp/c2vm \
 && apt-get download grub-pc-bin:amd64 grub-efi-amd64-bin:amd64 grub-efi-arm64-bin:arm64 \
 && for p in i386-pc:grub-pc-bin x86_64-efi:grub-efi-amd64-bin arm64-efi:grub-efi-arm64-bin; do \
      dpkg -x ${p#*:}_*.deb "x-${p%%:*}" && mv "x-${p%%:*}/usr/lib/grub/${p%%:*}" /payload/grub/ || exit 1; \
    done \
 && for a in amd64 arm64; do \
      k=$(apt-cache depends --no-recommends linux-image-$a:$a | sed -n 's/^ *Depends: \(linux-image-[0-9][^:]*\).*/\1/p' | head -n1) \
      && [ -n "$k" ] && apt-get download "$k:$a" \
      && mkdir -p /payload/kernel/$a && dpkg -x "${k}"_*_$a.deb /payload/kernel/$a \
      && ls /payload/kernel/$a/boot/vmlinuz-* >/dev/null || exit 1; \
    done \
 && apt-get download shim-signed:amd64 shim-helpers-amd64-signed:amd64 grub-efi-amd64-signed:amd64 \
 && for f in shim-signed_*.deb shim-helpers-amd64-signed_*.deb grub-efi-amd64-signed_*.deb; do dpkg -x "$f" /payload/secureboot; done \
 && cd / && rm -rf /tmp/c2vm /var/lib/apt/lists/*

FROM debian:trixie-slim
# The root filesystem is c2vm's own ext4 writer; these write the partition
# table, the boot loaders (grub-mkimage from grub-common), the ESP and the
# other disk formats. The only step that runs emulated in a foreign variant.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fdisk dosfstools mtools grub-common qemu-utils \
 && rm -rf /var/lib/apt/lists/*
COPY --from=payload /payload/ /usr/lib/c2vm/
ENV C2VM_KERNEL_DIR=/usr/lib/c2vm/kernel \
    C2VM_INIT_DIR=/usr/lib/c2vm/init \
    C2VM_SECURE_BOOT_DIR=/usr/lib/c2vm/secureboot
COPY --from=build /out/init/ /usr/lib/c2vm/init/
# The native binary is the init binary of the image's own architecture:
# the same build, so the same bytes.
ARG TARGETARCH
COPY --from=build /out/init/c2vm-${TARGETARCH} /usr/bin/c2vm
# What the frontend needs from BuildKit: its inputs (named contexts),
# subrequests (--call outline/targets), and no network for itself.
ARG C2VM_VERSION=dev
LABEL org.opencontainers.image.version="${C2VM_VERSION}" \
      org.opencontainers.image.title="c2vm" \
      moby.buildkit.frontend.network.none="true" \
      moby.buildkit.frontend.caps="moby.buildkit.frontend.inputs,moby.buildkit.frontend.subrequests,moby.buildkit.frontend.contexts"
ENTRYPOINT ["/usr/bin/c2vm"]
