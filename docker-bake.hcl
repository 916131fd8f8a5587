# docker buildx bake frontend      the c2vm image from this checkout, for
#                                  linux/amd64 and linux/arm64
# docker buildx bake debian        examples/debian as out/debian/linux.img
#
# C2VM_PLATFORMS=linux/amd64 docker buildx bake frontend builds one variant
# only (a builder without arm64 emulation can build that one). Each variant
# makes disks for both architectures.
#
# The examples choose c2vm with BUILDKIT_SYNTAX and get the frontend image
# from the frontend-native target (the same image for the builder's own
# platform) through a named context, so nothing has to be pushed first.

variable "C2VM_IMAGE" {
  default = "c2vm:dev"
}

variable "C2VM_VERSION" {
  default = "dev"
}

variable "C2VM_PLATFORMS" {
  default = "linux/amd64,linux/arm64"
}

variable "C2VM_FORMAT" {
  default = "raw"
}

target "_frontend" {
  context    = "."
  dockerfile = "Dockerfile"
  args       = { C2VM_VERSION = C2VM_VERSION }
}

target "frontend" {
  inherits  = ["_frontend"]
  tags      = [C2VM_IMAGE]
  platforms = split(",", C2VM_PLATFORMS)
}

# The c2vm image for the builder's own platform only: the examples' frontend.
target "frontend-native" {
  inherits = ["_frontend"]
}

target "_example" {
  args = {
    BUILDKIT_SYNTAX = "c2vm-frontend"
    C2VM_FORMAT     = C2VM_FORMAT
  }
  contexts = {
    c2vm-frontend = "target:frontend-native"
  }
}

target "example" {
  name     = ex
  matrix   = { ex = ["basic", "debian", "devbox"] }
  inherits = ["_example"]
  context  = "examples/${ex}"
  output   = ["type=local,dest=out/${ex}"]
}

target "devbox-ui" {
  inherits = ["_example"]
  context  = "examples/devbox-ui"
  contexts = {
    c2vm-frontend = "target:frontend-native"
    devbox        = "target:devbox-image"
  }
  output = ["type=local,dest=out/devbox-ui"]
}

# The devbox as an image (no c2vm), the base of devbox-ui.
target "devbox-image" {
  context = "examples/devbox"
}

group "default" {
  targets = ["frontend"]
}
