# c2vm: container images to bootable VM disks.
#   make demo   set up this machine, assemble the Debian example, boot it
#   make test   set up this machine, run unit tests, then boot tests in QEMU

GO      ?= go
BIN     := bin/c2vm
export C2VM_CACHE ?= /var/cache/c2vm

.PHONY: all build deps fixture vet unit boot-test test demo clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/c2vm

# Debian packages the tools and tests need (idempotent; needs root once).
deps:
	./hack/deps

# The cached debootstrap tree the boot tests and the demo use.
fixture: deps
	./hack/fixture-tree >/dev/null

vet:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags boot ./test/...

# Fast tests; C2VM_REQUIRE_TOOLS turns "tool missing" skips into failures.
unit: deps
	C2VM_REQUIRE_TOOLS=1 $(GO) test -short -count=1 ./...

# Tests that assemble the Debian tree and boot it under BIOS and UEFI.
boot-test: fixture
	C2VM_FIXTURE=$$(./hack/fixture-tree) $(GO) test -tags boot -count=1 -timeout 40m -v ./test/boot/

test: vet unit boot-test

demo: fixture build
	./hack/demo

clean:
	rm -rf bin out
