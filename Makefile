# The commands a newcomer needs; each is a thin wrapper over a script in tests/.
.PHONY: demo demo-down cluster cluster-down postgres postgres-down test lint bench soak helm-resident

## demo: the main job: local cluster up, a store created and followed until Ready
demo:
	@tests/demo up

## demo-down: delete the demo store and wait until nothing of it remains
demo-down:
	@tests/demo down

## cluster: start (or reuse) the local Kubernetes; prints the exports to eval
cluster:
	@tests/cluster/up

## cluster-down: stop the local Kubernetes and remove its data
cluster-down:
	@tests/cluster/down

## postgres: start (or reuse) PostgreSQL on loopback for the tests; prints the export
postgres:
	@tests/postgres/up

postgres-down:
	@tests/postgres/down

## test: every test, against the real parts (starts what it needs)
test:
	@tests/all

## lint: formatting and clippy, warnings denied
lint:
	@URUMI_TEST_STAGES=lint tests/all

## helm-resident: build urumi-helm-resident (Go) into target/bin, for helmResident / --helm-resident
helm-resident:
	@mkdir -p target/bin && cd urumi-core/helm-resident && \
	  go build -trimpath -ldflags "-s -w" -o ../../target/bin/urumi-helm-resident . && \
	  echo "built target/bin/urumi-helm-resident"

## bench: the benchmarks; each prints its figures and ratios
bench:
	@eval "$$(tests/postgres/up)" && cargo bench -p urumi-core --bench state
	@eval "$$(tests/cluster/up)" && cargo bench -p urumi-core --bench lifecycle
	@eval "$$(tests/cluster/up)" && cargo bench -p urumi-core --bench fleet
	@command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
	@mkdir -p target/bench && eval "$$(tests/cluster/up)" && \
	  cargo bench -p urumi-http --bench http | tee target/bench/http.md

## soak: 300 stores created and deleted through the server with SIGKILLs and helm faults
## sprinkled in (about 20 min); memory, open files and tasks must stay flat
## (URUMI_SOAK_STORES=N); then the fuzzers for longer (URUMI_FUZZ_SECS, 300 s per target)
soak:
	@eval "$$(tests/cluster/up)" && \
	  cargo test -p urumi-http --test soak -- --ignored --nocapture
	@URUMI_FUZZ_SECS=$${URUMI_FUZZ_SECS:-300} URUMI_SCHEMATHESIS_EXAMPLES=$${URUMI_SCHEMATHESIS_EXAMPLES:-100} \
	  tests/fuzz/test
