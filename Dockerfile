# Production image of the service: a static binary on a minimal base, run as
# a non-root user. Grading itself happens in separate grading containers
# (deployment/grader-image); this image holds no Python and no build tools.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/otter-service ./cmd/otter-service

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/otter-service /usr/local/bin/otter-service
USER nonroot:nonroot
ENV OTTER_DATA_DIR=/var/lib/otter-service
EXPOSE 10101
ENTRYPOINT ["/usr/local/bin/otter-service"]
CMD ["serve"]
