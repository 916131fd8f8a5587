# docker buildx bake frontend      the c2vm image from this checkout
# docker buildx bake debian        examples/debian as out/debian/linux.img
#
# The examples choose c2vm with BUILDKIT_SYNTAX and get the frontend image
# from the frontend target through a named context, so nothing has to be
# pushed first.

variable "C2VM_IMAGE" {
  default = "c2vm:dev"
}

variable "C2VM_VERSION" {
  default = "dev"
}

variable "C2VM_FORMAT" {
  default = "raw"
}

target "frontend" {
  context    = "."
  dockerfile = "Dockerfile"
  args       = { C2VM_VERSION = C2VM_VERSION }
  tags       = [C2VM_IMAGE]
  platforms  = ["linux/amd64"]
}

target "_example" {
  args = {
    BUILDKIT_SYNTAX = "c2vm-frontend"
    C2VM_FORMAT     = C2VM_FORMAT
  }
  contexts = {
    c2vm-frontend = "target:frontend"
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
    c2vm-frontend = "target:frontend"
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
