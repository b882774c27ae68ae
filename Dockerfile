# Production image of the service: one static binary on an empty base, run as
# a non-root user. Grading happens in separate grading containers
# (deployment/grader-image) that the service starts through a Docker engine;
# this image holds no Python, no shell and no build tools.
#
#   docker build -t <registry>/otter-service:<tag> .
#
# The base images are build arguments so that the image can be built where
# they come from elsewhere than a registry (deployment/images_test.go builds
# it on a local engine from a locally made Go image). GOPROXY, GOFLAGS and the
# other Go settings may be passed the same way.
ARG GO_IMAGE=golang:1.26-bookworm

# ---- Modules: downloaded once per go.mod/go.sum. ----
FROM ${GO_IMAGE} AS modules
ARG GOPROXY
ARG GOFLAGS
ARG GOSUMDB
ARG GONOSUMDB
ARG GOPRIVATE
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download

# ---- The list of the binary's third-party packages. ----
FROM modules AS deps
COPY . .
RUN go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./cmd/otter-service \
      | grep -v '^github.com/otter-service/otter-service' >/deps.txt

# ---- The build: dependencies compiled in their own layer, which stays
# cached until the list above changes; then the service itself. ----
FROM modules AS build
COPY --from=deps /deps.txt /deps.txt
RUN go build -trimpath $(cat /deps.txt)
COPY . .
RUN go build -trimpath -ldflags='-s -w' -o /out/otter-service ./cmd/otter-service \
 && /out/otter-service settings >/dev/null \
 && mkdir -p /rootfs/etc/ssl/certs /rootfs/tmp /rootfs/var/lib/otter-service /rootfs/usr/local/bin \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && echo 'otter:x:65532:65532:otter-service:/var/lib/otter-service:/sbin/nologin' >/rootfs/etc/passwd \
 && echo 'otter:x:65532:' >/rootfs/etc/group \
 && chmod 1777 /rootfs/tmp \
 && chown 65532:65532 /rootfs/var/lib/otter-service \
 && mv /out/otter-service /rootfs/usr/local/bin/

# ---- The runtime: the binary, CA certificates, a user, a data directory
# owned by it, and /tmp. Copying from a stage keeps owners and modes. ----
FROM scratch
COPY --from=build /rootfs/ /
ENV OTTER_DATA_DIR=/var/lib/otter-service \
    OTTER_RUNNER=docker
USER 65532:65532
WORKDIR /var/lib/otter-service
EXPOSE 10101
ENTRYPOINT ["/usr/local/bin/otter-service"]
CMD ["serve"]
