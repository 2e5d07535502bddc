# gograd: see README.md. `make train` and `make test` are the two commands a
# fresh machine needs.
GO ?= go

.PHONY: test train vet build

test: vet
	$(GO) test ./...

vet:
	$(GO) vet ./...

build:
	CGO_ENABLED=0 $(GO) build ./...
