# c2vm: container images to bootable VM disks.
#   make demo   set up this machine and the test world, build examples/debian
#               with docker buildx into a disk, boot it
#   make test   the same set-up, unit tests, boot tests, end-to-end tests

GO      ?= go
BIN     := bin/c2vm
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
export C2VM_CACHE ?= /var/cache/c2vm
# One build configuration for the binary, vet and every test (the static
# binary's): they then share compiled packages, and a new machine compiles
# the dependencies once instead of twice (measured: 300 s of a cold compile
# down to 160 s on two cores).
export CGO_ENABLED := 0
export GOFLAGS += -trimpath

.PHONY: all build deps fixture setup-test vet unit fuzz fuzz-check boot-test world-test bench bench-smoke test demo testenv-up testenv-down clean test-examples test-matrix test-upgrade test-reliability test-secure-boot test-arm64 test-distros

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/c2vm

# Debian packages the tools and tests need (idempotent; needs root once).
deps:
	./hack/deps

# The set-up a new machine meets: every package hack/deps names still has a
# candidate in the archive, a missing one stops hack/deps before it installs
# anything, the Ubuntu archive key and the tool pins are checked.
setup-test:
	$(GO) test -tags setup -count=1 -v ./test/setup/

# The cached debootstrap tree the boot tests and the demo use.
fixture: deps
	./hack/fixture-tree >/dev/null

vet:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags boot ./test/boot/
	$(GO) vet -tags world ./test/world/
	$(GO) vet -tags setup ./test/setup/
	for f in hack/deps hack/fixture-tree hack/secureboot-files hack/tools hack/fuzz bench/pipeline2021.sh; do sh -n $$f || exit 1; done
	for f in hack/testenv hack/world-test hack/make-test hack/demo hack/examples-test; do bash -n $$f || exit 1; done

# Fast tests; C2VM_REQUIRE_TOOLS turns "tool missing" skips into failures.
unit: deps
	C2VM_REQUIRE_TOOLS=1 $(GO) test -short -count=1 ./...

# Native Go fuzzing of layer flattening, the tar reader, the size estimate
# and the ext4 writer: 20 s each in make test, 5 minutes each here.
fuzz-check:
	FUZZTIME=20s ./hack/fuzz

fuzz:
	FUZZTIME=$${FUZZTIME:-5m} ./hack/fuzz

# Tests that assemble the Debian tree and boot it under BIOS and UEFI.
# The initramfs tests that read the fixture's kernel run here too.
boot-test: fixture
	C2VM_FIXTURE=$$(./hack/fixture-tree) $(GO) test -count=1 -run FixtureKernel ./exporter/initramfs/
	C2VM_FIXTURE=$$(./hack/fixture-tree) C2VM_SECURE_BOOT_DIR=$$(./hack/secureboot-files) $(GO) test -count=1 -run Fixture ./exporter/secureboot/ ./exporter/
	C2VM_FIXTURE=$$(./hack/fixture-tree) C2VM_SECURE_BOOT_DIR=$$(./hack/secureboot-files) $(GO) test -tags boot -count=1 -timeout 40m -v ./test/boot/

# A VM's long life: a Debian 12 guest that installs and purges kernels
# and grows its disk over five boots (6 minutes), and one upgraded to
# Debian 13 with apt and rebooted (11 minutes under emulation on
# 2026-12-05: it downloads the whole release).
test-upgrade: fixture
	C2VM_UPGRADE_TEST=1 C2VM_FIXTURE=$$(./hack/fixture-tree) $(GO) test -tags boot -count=1 -timeout 180m -v -run 'TestLongLivedVM|TestReleaseUpgrade' ./test/boot/

# Secure Boot on every supported release (docs/secure-boot.md): make test
# boots Debian 12 and Ubuntu 24.04; this adds Debian 11 and 13, Ubuntu
# 20.04 and 22.04, and both first disks under BIOS and plain UEFI.
test-secure-boot: deps build
	C2VM_SECURE_BOOT_FULL=1 C2VM_DISTROS=all ./hack/world-test -run 'TestSecureBoot'

# arm64 (docs/arm64.md): the arm64 Debian 12 tree (built under qemu-user)
# assembled here and booted on qemu-system-aarch64 -M virt with AAVMF
# under TCG, system and app mode; then the arm64 world tests through
# buildx with the multi-arch c2vm image and arm64 base images
# (C2VM_ARM64=1). make test keeps the exporter's arm64 unit tests.
test-arm64: deps build
	C2VM_FIXTURE_ARM64=$$(./hack/fixture-tree arm64) $(GO) test -tags boot -count=1 -timeout 60m -v -run ARM64 ./test/boot/
	C2VM_ARM64=1 ./hack/world-test -run 'ARM64|MultiArch|UnsupportedPlatform'

# Load and faults (docs/reliability.md): concurrent builds, a builder
# killed mid-build, power cuts in first boots, parallel assemblies, fifty
# rebuilds. make test runs the short ones.
test-reliability: fixture deps build
	./hack/reliability-test

# Every cell of the hardware matrix (storage controllers × firmware, NIC
# models × machines); make test runs a few of them.
test-matrix: deps build
	C2VM_MATRIX=full ./hack/world-test -run 'TestMatrix'

# Tests through BuildKit and buildx in the test world (hack/testenv).
world-test: deps build
	./hack/world-test

# System mode on every supported release: make test boots Debian 12 and 13
# and Ubuntu 24.04; this adds Debian 11 and Ubuntu 20.04 and 22.04 (about
# 8 minutes, 11 on a new machine: three more base images).
test-distros: deps build
	C2VM_DISTROS=all ./hack/world-test -run 'TestMoreDistros'

# Speed and size against baselines measured in the same run (not part of
# make test): writes docs/benchmarks.md.
bench: fixture
	./hack/deps bench
	mkdir -p $(C2VM_CACHE) && C2VM_SECURE_BOOT_DIR=$$(./hack/secureboot-files) flock $(C2VM_CACHE)/testenv.lock $(GO) run ./bench -out docs/benchmarks.md

# Checks that the benchmark program still runs, on a tiny tree.
bench-smoke: deps
	$(GO) run ./bench -smoke -out $${TMPDIR:-/tmp}/c2vm-bench-smoke.md

# After the set-up checks and deps, hack/make-test runs vet, build, unit,
# fuzz-check, bench-smoke, boot-test and world-test, with the cold set-up
# (the fixture tree, the test world's tools, base images and c2vm image)
# beside them.
test: setup-test deps
	./hack/make-test

# The examples (basic, devbox, devbox-ui) built with buildx and booted, as
# their READMEs say; not part of make test (one to two hours, several GB).
test-examples: deps build
	./hack/examples-test

demo: deps build
	./hack/demo

testenv-up:
	@./hack/testenv up

testenv-down:
	@./hack/testenv down

clean:
	rm -rf bin out
