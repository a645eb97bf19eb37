# simq: a job queue for simulation sweeps.  See README.md.
#
#   make            build bin/simqd (and the other programs)
#   make check      install missing build dependencies, build, run every test
#   make check-unit build and run the unit tests only (optimised build)
#   make check-slurm  pilot workers on a real one-node Slurm cluster
#                   (installs slurm-wlm and munge; needs root)
#   make bench      run the benchmarks (and the stress run, tests/bench/stress.py,
#                   the Python package's, tests/bench/python.py, and RQ+Redis
#                   beside simq, tests/bench/rq_commands.py; installs
#                   python3-rq and redis-server)
#   make demo       start a broker and two workers, run a sweep, show it
#   make install    PREFIX=/usr/local DESTDIR= (the programs, man pages,
#                   Python package, systemd units, bash completion)
#   make deps       install missing Debian packages (needs root or sudo)
#   make dashboard-shot  build/dashboard.png: the dashboard, in chromium
#
# One line a file is printed; V=1 prints the commands.  CC=clang builds
# with clang (a change of compiler or CFLAGS rebuilds what it affects).

PREFIX	?= /usr/local
DESTDIR	?=
CC	?= cc

PKGS_DEB = gcc make pkg-config libevent-dev libjemalloc-dev libcmocka-dev \
	   libssl-dev \
	   python3 procps util-linux netcat-openbsd \
	   python3-cloudpickle python3-setuptools python3-wheel python3-pip \
	   chromium chromium-driver python3-selenium

# make check-slurm: a one-node cluster the test starts (tests/slurm/run.py).
PKGS_SLURM = slurm-wlm munge
# make bench: the peers measured beside simq, on the same machine and in
# the same run: RQ on Redis for command jobs (tests/bench/rq_commands.py),
# RQ, Dask, ipyparallel and Celery for Python tasks (tests/bench/peers.py);
# not needed by make check.
PKGS_BENCH = redis-server python3-redis python3-rq python3-distributed \
	     python3-ipyparallel python3-celery

# Where `make install` puts the Python package (python/simq): Debian's
# own directory under /usr, else the version's site directory under
# PREFIX (/usr/local/lib/python3.11/dist-packages), both on sys.path.
PYTHON3	?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
PYVER	:= $(shell $(PYTHON3) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
PYTHONDIR ?= $(if $(filter /usr,$(PREFIX)),$(PREFIX)/lib/python3/dist-packages,$(PREFIX)/lib/python$(PYVER)/dist-packages)

# Where `make install` puts the systemd units (contrib/systemd) and the
# bash completion (client/simq.bash); systemd and bash-completion look
# in both under /usr and /usr/local.
SYSTEMDDIR  ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions

EVENT_CFLAGS	:= $(shell pkg-config --cflags libevent 2>/dev/null)
EVENT_LIBS	:= $(shell pkg-config --libs libevent 2>/dev/null || echo -levent)
JEMALLOC_LIBS	:= $(shell pkg-config --libs jemalloc 2>/dev/null || echo -ljemalloc)
CMOCKA_LIBS	:= $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)
# lib/sha256.c: blob names (SHA-256) through libcrypto, linked everywhere
# lib/ is.
CRYPTO_LIBS	:= $(shell pkg-config --libs libcrypto 2>/dev/null || echo -lcrypto)

WARN	 = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	   -Wmissing-prototypes -Wpointer-arith -Wformat=2 -Wno-unused-parameter
# -MMD -MP: each object depends on the headers it includes (build/*.d).
BASE_CFLAGS = -std=c11 -D_GNU_SOURCE -g $(WARN) -MMD -MP -Iproto -Ilib \
	      $(EVENT_CFLAGS)
REL_CFLAGS  = $(BASE_CFLAGS) -O2 $(CFLAGS)
SAN_FLAGS   = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	      -fno-omit-frame-pointer
SAN_CFLAGS  = $(BASE_CFLAGS) -O1 $(SAN_FLAGS) $(CFLAGS)

# Quiet by default: one line per file; V=1 shows the commands.
ifeq ($(V),1)
Q	=
say	= @:
else
Q	= @
say	= @printf '  %-6s %s\n'
MAKEFLAGS += --no-print-directory
endif

# lib/: what the three programs share (allocation, logging, the clock,
# the broker's address and token, JSON); linked into each, and into
# everything that links proto/ (whose buffers allocate through it).
PROTO_SRC  = proto/proto.c proto/frame.c proto/buf.c proto/opts.c \
	     proto/files.c
LIB_SRC    = $(wildcard lib/*.c)
# The job model and its records link alone (MODEL_SRC: the unit tests of
# the model and the record fuzz target use just these); the rest of the
# broker is the network side.
MODEL_SRC  = broker/crc32c.c broker/journal.c \
	     broker/state.c broker/idmap.c broker/heap.c broker/timer.c \
	     broker/queue.c broker/jobopts.c broker/job.c broker/array.c \
	     broker/deps.c broker/worker.c broker/codec.c broker/record.c \
	     broker/snapshot.c broker/fit.c broker/blobref.c broker/entries.c \
	     broker/epoch.c
# The broker: every .c file of broker/ but main.c.
BROKER_SRC = $(filter-out broker/main.c,$(wildcard broker/*.c))
BROKER_MAIN = broker/main.c

UNIT_TESTS = test_proto test_lib test_journal test_model test_records \
	     test_client test_files test_cgsweep

# The dashboard's CSS and JS, carried inside simqd as C strings written
# at build time (no network, no package manager).
DASH_ASSETS = broker/dashboard/dash.css broker/dashboard/dash.js
DASH_C	    = build/gen/dash_assets.c

# Object lists for the two flavours: build/rel (optimised) and build/san
# (AddressSanitizer + UndefinedBehaviorSanitizer).
obj = $(patsubst %.c,build/$(1)/%.o,$(2))

PROTO_REL  = $(call obj,rel,$(PROTO_SRC) $(LIB_SRC))
PROTO_SAN  = $(call obj,san,$(PROTO_SRC) $(LIB_SRC))
BROKER_REL = $(call obj,rel,$(BROKER_SRC) $(DASH_C))
BROKER_SAN = $(call obj,san,$(BROKER_SRC) $(DASH_C))

# The worker and the client: every .c file of worker/ and client/.
WORKER_SRC = $(wildcard worker/*.c)
CLIENT_SRC = $(wildcard client/*.c)

PROGS = bin/simqd
SAN_PROGS = build/san/simqd
ifneq ($(wildcard worker/main.c),)
PROGS += bin/simq-worker
SAN_PROGS += build/san/simq-worker
endif
ifneq ($(wildcard client/main.c),)
PROGS += bin/simq
SAN_PROGS += build/san/simq
endif

all: $(PROGS)

# Each program's directory is on its own include path: broker/, worker/
# and client/ each have one header, and tests include the one they test.
incdir = $(if $(filter tests/%,$(1)),-Ibroker -Iworker -Iclient,-I$(firstword $(subst /, ,$(1))))

# The compiler and flags each flavour was built with: when they change
# (make CC=clang after make), every object of that flavour is rebuilt.
build/rel/.flags: FORCE
	@mkdir -p $(dir $@)
	@echo '$(CC) $(REL_CFLAGS)' | cmp -s - $@ || \
	    echo '$(CC) $(REL_CFLAGS)' >$@
build/san/.flags: FORCE
	@mkdir -p $(dir $@)
	@echo '$(CC) $(SAN_CFLAGS)' | cmp -s - $@ || \
	    echo '$(CC) $(SAN_CFLAGS)' >$@

build/rel/%.o: %.c build/rel/.flags
	@mkdir -p $(dir $@)
	$(say) CC $@
	$(Q)$(CC) $(REL_CFLAGS) $(call incdir,$<) -c -o $@ $<

build/san/%.o: %.c build/san/.flags
	@mkdir -p $(dir $@)
	$(say) CC $@
	$(Q)$(CC) $(SAN_CFLAGS) $(call incdir,$<) -c -o $@ $<

$(DASH_C): broker/dashboard/embed.sh $(DASH_ASSETS)
	@mkdir -p $(dir $@)
	$(say) GEN $@
	$(Q)sh broker/dashboard/embed.sh $@ $(DASH_ASSETS)

bin/simqd: build/rel/broker/main.o $(BROKER_REL) $(PROTO_REL)
	@mkdir -p bin
	$(say) LD $@
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(EVENT_LIBS) $(JEMALLOC_LIBS) $(LDFLAGS) $(CRYPTO_LIBS)

# The sanitizer build of the broker cannot use jemalloc: ASan replaces
# the allocator itself.
build/san/simqd: build/san/broker/main.o $(BROKER_SAN) $(PROTO_SAN)
	$(say) LD $@
	$(Q)$(CC) $(SAN_CFLAGS) -o $@ $^ $(EVENT_LIBS) $(LDFLAGS) $(CRYPTO_LIBS)

bin/simq-worker: $(call obj,rel,$(WORKER_SRC)) $(PROTO_REL)
	@mkdir -p bin
	$(say) LD $@
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(EVENT_LIBS) $(LDFLAGS) $(CRYPTO_LIBS)

build/san/simq-worker: $(call obj,san,$(WORKER_SRC)) $(PROTO_SAN)
	$(say) LD $@
	$(Q)$(CC) $(SAN_CFLAGS) -o $@ $^ $(EVENT_LIBS) $(LDFLAGS) $(CRYPTO_LIBS)

# The client is plain blocking sockets: no libevent.
bin/simq: $(call obj,rel,$(CLIENT_SRC)) $(PROTO_REL)
	@mkdir -p bin
	$(say) LD $@
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(LDFLAGS) -lm $(CRYPTO_LIBS)

build/san/simq: $(call obj,san,$(CLIENT_SRC)) $(PROTO_SAN)
	$(say) LD $@
	$(Q)$(CC) $(SAN_CFLAGS) -o $@ $^ $(LDFLAGS) -lm $(CRYPTO_LIBS)

# Unit tests link the modules they test, never main.o.  The protocol's
# and lib/'s tests need only proto/ and lib/.
build/rel/test_proto build/rel/test_lib build/rel/test_files: build/rel/test_%: \
		build/rel/tests/unit/test_%.o $(PROTO_REL)
	$(say) LD $@
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(CRYPTO_LIBS)

build/san/test_proto build/san/test_lib build/san/test_files: build/san/test_%: \
		build/san/tests/unit/test_%.o $(PROTO_SAN)
	$(say) LD $@
	$(Q)$(CC) $(SAN_CFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(CRYPTO_LIBS)

# The client's tests need only its pure parts (no sockets, no main()).
CLIENT_PURE = client/split.c client/fmt.c client/wire.c client/util.c
build/rel/test_client: build/rel/tests/unit/test_client.o \
		$(call obj,rel,$(CLIENT_PURE)) $(PROTO_REL)
	$(say) LD $@
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(CRYPTO_LIBS)

build/san/test_client: build/san/tests/unit/test_client.o \
		$(call obj,san,$(CLIENT_PURE)) $(PROTO_SAN)
	$(say) LD $@
	$(Q)$(CC) $(SAN_CFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(CRYPTO_LIBS)

# The worker's cgroup sweep is plain libc.
build/rel/test_cgsweep: build/rel/tests/unit/test_cgsweep.o \
		build/rel/worker/cgsweep.o
	$(say) LD $@
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(CMOCKA_LIBS)

build/san/test_cgsweep: build/san/tests/unit/test_cgsweep.o \
		build/san/worker/cgsweep.o
	$(say) LD $@
	$(Q)$(CC) $(SAN_CFLAGS) -o $@ $^ $(CMOCKA_LIBS)

# The journal's tests need only the storage layer.
JOURNAL_SRC = broker/crc32c.c broker/journal.c
build/rel/test_journal: build/rel/tests/unit/test_journal.o \
		$(call obj,rel,$(JOURNAL_SRC)) $(PROTO_REL)
	$(say) LD $@
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(CRYPTO_LIBS)

build/san/test_journal: build/san/tests/unit/test_journal.o \
		$(call obj,san,$(JOURNAL_SRC)) $(PROTO_SAN)
	$(say) LD $@
	$(Q)$(CC) $(SAN_CFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(CRYPTO_LIBS)

build/san/fuzz_journal: build/san/tests/fuzz/fuzz_journal.o \
		build/san/tests/fuzz/replay.o $(call obj,san,$(JOURNAL_SRC)) $(PROTO_SAN)
	$(say) LD $@
	$(Q)$(CC) $(SAN_CFLAGS) -o $@ $^ $(CRYPTO_LIBS)

# The model's tests link the model alone: no connection, no handler.
MODEL_REL = $(call obj,rel,$(MODEL_SRC))
MODEL_SAN = $(call obj,san,$(MODEL_SRC))
build/rel/test_model: build/rel/tests/unit/test_model.o $(MODEL_REL) $(PROTO_REL)
	$(say) LD $@
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(EVENT_LIBS) $(CMOCKA_LIBS) $(CRYPTO_LIBS)

build/san/test_model: build/san/tests/unit/test_model.o $(MODEL_SAN) $(PROTO_SAN)
	$(say) LD $@
	$(Q)$(CC) $(SAN_CFLAGS) -o $@ $^ $(EVENT_LIBS) $(CMOCKA_LIBS) $(CRYPTO_LIBS)

build/rel/test_records: build/rel/tests/unit/test_records.o $(MODEL_REL) $(PROTO_REL)
	$(say) LD $@
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(EVENT_LIBS) $(CMOCKA_LIBS) $(CRYPTO_LIBS)

build/san/test_records: build/san/tests/unit/test_records.o $(MODEL_SAN) $(PROTO_SAN)
	$(say) LD $@
	$(Q)$(CC) $(SAN_CFLAGS) -o $@ $^ $(EVENT_LIBS) $(CMOCKA_LIBS) $(CRYPTO_LIBS)

build/rel/test_%: build/rel/tests/unit/test_%.o $(BROKER_REL) $(PROTO_REL)
	$(say) LD $@
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(EVENT_LIBS) $(CMOCKA_LIBS) $(CRYPTO_LIBS)

build/san/test_%: build/san/tests/unit/test_%.o $(BROKER_SAN) $(PROTO_SAN)
	$(say) LD $@
	$(Q)$(CC) $(SAN_CFLAGS) -o $@ $^ $(EVENT_LIBS) $(CMOCKA_LIBS) $(CRYPTO_LIBS)

# The fuzz targets, linked with a small driver that replays a corpus; with
# clang, `make fuzz` builds the same targets against libFuzzer.
FUZZ_TARGETS = fuzz_proto fuzz_journal fuzz_records
# The record decoders and the snapshot reader, with the model alone.
build/san/fuzz_records: build/san/tests/fuzz/fuzz_records.o \
		build/san/tests/fuzz/replay.o $(MODEL_SAN) $(PROTO_SAN)
	$(say) LD $@
	$(Q)$(CC) $(SAN_CFLAGS) -o $@ $^ $(EVENT_LIBS) $(CRYPTO_LIBS)

build/san/fuzz_proto: build/san/tests/fuzz/fuzz_proto.o \
		build/san/tests/fuzz/replay.o $(PROTO_SAN)
	$(say) LD $@
	$(Q)$(CC) $(SAN_CFLAGS) -o $@ $^ $(CRYPTO_LIBS)

build/san/fuzz_%: build/san/tests/fuzz/fuzz_%.o build/san/tests/fuzz/replay.o \
		$(BROKER_SAN) $(PROTO_SAN)
	$(say) LD $@
	$(Q)$(CC) $(SAN_CFLAGS) -o $@ $^ $(EVENT_LIBS) $(CRYPTO_LIBS)

fuzz: $(PROTO_SRC) $(LIB_SRC) $(BROKER_SRC) tests/fuzz/*.c
	@mkdir -p build/fuzz
	$(Q)for t in fuzz_proto fuzz_journal; do \
	clang -std=c11 -D_GNU_SOURCE -g -O1 -Iproto -Ilib -Ibroker \
	    -fsanitize=fuzzer,address,undefined -o build/fuzz/$$t \
	    tests/fuzz/$$t.c $(PROTO_SRC) $(LIB_SRC) $(BROKER_SRC) \
	    $(EVENT_LIBS) $(CRYPTO_LIBS) || exit 1; \
	done
	$(Q)clang -std=c11 -D_GNU_SOURCE -g -O1 -Iproto -Ilib -Ibroker \
	    -fsanitize=fuzzer,address,undefined -o build/fuzz/fuzz_records \
	    tests/fuzz/fuzz_records.c $(PROTO_SRC) $(LIB_SRC) $(MODEL_SRC) \
	    $(EVENT_LIBS) $(CRYPTO_LIBS)
	@echo "run: mkdir -p build/fuzz/corpus &&" \
	    "build/fuzz/fuzz_proto build/fuzz/corpus tests/fuzz/corpus/proto" \
	    "(fuzz_journal and fuzz_records likewise, with their corpora)"

TEST_BINS = $(foreach t,$(UNIT_TESTS),build/rel/$(t) build/san/$(t)) \
	    $(foreach t,$(FUZZ_TARGETS),build/san/$(t))

build-tests: $(PROGS) $(SAN_PROGS) $(TEST_BINS) build/rel/bench_workers

check: deps-quiet
	$(Q)$(MAKE) build-tests
	@sh tests/run.sh

# The unit tests of the optimised build alone, quick (.ci/run runs them
# built with clang as well).
check-unit: $(foreach t,$(UNIT_TESTS),build/rel/$(t))
	@for t in $(UNIT_TESTS); do \
		CMOCKA_MESSAGE_OUTPUT=TAP build/rel/$$t >build/rel/$$t.tap \
		    2>&1 || { cat build/rel/$$t.tap; exit 1; }; \
		echo "$$t: $$(grep -c '^ok ' build/rel/$$t.tap) passed"; \
	done

# check-slurm: pilot workers (examples/slurm/pilot.sbatch) under a real
# slurmctld and slurmd that tests/slurm/run.py starts in a temporary
# folder, loopback only, and stops at the end.
check-slurm: deps-quiet
	@sh tests/deps.sh $(PKGS_SLURM)
	$(Q)$(MAKE) $(PROGS)
	@python3 tests/slurm/run.py --bin bin

bench: deps-quiet
	@sh tests/deps.sh $(PKGS_BENCH)
	$(Q)$(MAKE) $(PROGS) build/rel/bench_submit build/rel/bench_spawn \
	    build/rel/bench_workers build/rel/bench_blob
	@sh tests/bench/run.sh
	@sh tests/bench/worker.sh
	@sh tests/bench/resources.sh
	@sh tests/bench/workers.sh
	@python3 tests/bench/stress.py
	@$(PYTHON3) tests/bench/python.py
	@$(PYTHON3) tests/bench/rq_commands.py

# The benchmarks link proto/ and lib/ from an archive, so that each takes
# only the objects it uses and --as-needed drops libraries it does not
# call: bench_spawn is also the job whose start the latency benchmark
# times, and loading libcrypto (which it never calls) would add about
# half a millisecond of dynamic linking to every start.
build/rel/libsimq.a: $(PROTO_REL)
	$(say) AR $@
	$(Q)rm -f $@ && $(AR) rcs $@ $^

build/rel/bench_%: build/rel/tests/bench/bench_%.o build/rel/libsimq.a
	$(say) LD $@
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(LDFLAGS) -Wl,--as-needed \
	    $(CRYPTO_LIBS)

# demo: a broker and two workers in a temporary folder, a Monte Carlo
# sweep of 200 tasks, its progress and its answer; everything is stopped
# and removed at the end.
demo: deps-quiet
	$(Q)$(MAKE) all
	@sh demo/demo.sh

# dashboard-shot: screenshots of the dashboard (a small sweep in a
# temporary broker) in headless chromium, for reviewing changes.
dashboard-shot: deps-quiet
	$(Q)$(MAKE) bin/simqd
	@python3 tests/dashboard_shot.py build/dashboard.png

# deps: install what is missing, quietly when nothing is (make bench's
# packages too; make check needs only PKGS_DEB).
deps:
	@sh tests/deps.sh $(PKGS_DEB) $(PKGS_BENCH)

deps-quiet:
	@sh tests/deps.sh $(PKGS_DEB)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/
	for m in man/*.[0-9]; do \
		s=$${m##*.}; \
		install -d $(DESTDIR)$(PREFIX)/share/man/man$$s && \
		install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man$$s/ || exit 1; \
	done
	install -d $(DESTDIR)$(PYTHONDIR)/simq
	install -m 644 python/simq/*.py $(DESTDIR)$(PYTHONDIR)/simq/
	install -d $(DESTDIR)$(SYSTEMDDIR)
	for u in contrib/systemd/*.service.in; do \
		sed -e 's|@BINDIR@|$(PREFIX)/bin|g' \
		    -e 's|@SYSTEMDDIR@|$(SYSTEMDDIR)|g' $$u \
		    >$(DESTDIR)$(SYSTEMDDIR)/$$(basename $$u .in) && \
		chmod 644 $(DESTDIR)$(SYSTEMDDIR)/$$(basename $$u .in) || \
		exit 1; \
	done
	install -d $(DESTDIR)$(BASHCOMPDIR)
	install -m 644 client/simq.bash $(DESTDIR)$(BASHCOMPDIR)/simq

clean:
	rm -rf build bin

# The headers each object included when it was last built (-MMD).
-include $(shell find build -name '*.d' 2>/dev/null)

FORCE:

.PHONY: all check check-unit check-slurm bench demo deps deps-quiet install clean fuzz \
	build-tests dashboard-shot FORCE
.SECONDARY:
