# docker buildx bake frontend: the c2vm image from this checkout.
# Example targets that use it through BUILDKIT_SYNTAX come with the frontend.

variable "C2VM_IMAGE" {
  default = "c2vm:dev"
}

target "frontend" {
  context    = "."
  dockerfile = "Dockerfile"
  tags       = [C2VM_IMAGE]
  platforms  = ["linux/amd64"]
}

group "default" {
  targets = ["frontend"]
}
