# Kernloom in C — one build for everything.
#
#   make            build binaries (build/bin) and the XDP object (build/bpf)
#   make check      install missing deps, build with ASan+UBSan, run every test
#   make bench      benchmarks (numbers recorded in bench/README.md)
#   make fuzz       run every libFuzzer target for FUZZ_SECONDS each
#   make demo       the self-contained lab
#   make man        regenerate the committed man/ pages from the binaries
#   make install    DESTDIR=... PREFIX=/usr/local   (make uninstall: the same, undone)
#
# Layout conventions the rules below rely on:
#   common/ ipc/ sandbox/ harvest/ -> build/lib/libkl.a
#   <daemon>/main.c            -> the binary; other <daemon>/*.c -> lib<daemon>.a
#   tests/unit/test_*.c        -> cmocka binaries linked with every lib
#   tests/bpf/test_*.c         -> BPF_PROG_TEST_RUN fixtures (need root)
#   tests/fuzz/fuzz_*.c        -> libFuzzer targets (clang)
#   tests/integration/*.sh     -> network-namespace scenarios (need root)

CC      ?= gcc
CLANG   ?= clang
BPFTOOL ?= bpftool
PREFIX  ?= /usr/local
BUILD   ?= build
SAN     ?= 0
FUZZ_SECONDS ?= 60

ARCH_INC := -I/usr/include/$(shell $(CC) -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)

CSTD    := -std=gnu11
WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral
CFLAGS  ?= -O2 -g
CFLAGS  += $(CSTD) $(WARN) -D_GNU_SOURCE -fstack-protector-strong -I. -I$(BUILD)/gen \
	   -DKL_DEFAULT_OBJ='"$(PREFIX)/lib/kernloom/shield.bpf.o"'
ifeq ($(SAN),1)
# KL_TEST_HOOKS: the sandbox's test-only switches (sandbox/testhooks.c).
CFLAGS  += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	   -DKL_TEST_HOOKS
LDFLAGS += -fsanitize=address,undefined
else
CFLAGS  += -D_FORTIFY_SOURCE=2
endif
LDLIBS  := -lbpf -lelf -lz -lnng -ljansson -lyaml -lsqlite3 -lcap -lseccomp -lsodium -lpcap -lsystemd -lm

BPF_CFLAGS := -target bpf -D__TARGET_ARCH_x86 -O2 -g -Wall -Werror -mcpu=v3 $(ARCH_INC) -I.

DAEMON_DIRS := $(patsubst %/main.c,%,$(wildcard ctl/main.c enforcer/main.c sensor/main.c decider/main.c graphd/main.c))
binname = $(if $(filter ctl,$(1)),klctl,kl-$(1))
BINS := $(foreach d,$(DAEMON_DIRS),$(BUILD)/bin/$(call binname,$(d)))

KL_SRCS := $(wildcard common/*.c ipc/*.c sandbox/*.c harvest/*.c)
KL_OBJS := $(KL_SRCS:%.c=$(BUILD)/obj/%.o)
dirlib_srcs = $(filter-out $(1)/main.c,$(wildcard $(1)/*.c))
DIR_LIBS := $(foreach d,$(DAEMON_DIRS),$(if $(call dirlib_srcs,$(d)),$(BUILD)/lib/lib$(d).a))
ALL_LIBS := $(DIR_LIBS) $(BUILD)/lib/libkl.a

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(BPF_SRCS:bpf/%.bpf.c=$(BUILD)/bpf/%.bpf.o)
SKELS    := $(BPF_SRCS:bpf/%.bpf.c=$(BUILD)/gen/%.skel.h)
MAPHDRS  := $(BPF_SRCS:bpf/%.bpf.c=$(BUILD)/gen/%.maps.h)
BPF_TEST_SRCS := $(wildcard tests/bpf/*.bpf.c bench/*.bpf.c)
BPF_TEST_OBJS := $(patsubst %.bpf.c,$(BUILD)/bpf/%.bpf.o,$(notdir $(BPF_TEST_SRCS)))
TEST_SKELS    := $(patsubst %.bpf.c,$(BUILD)/gen/%.skel.h,$(notdir $(BPF_TEST_SRCS)))

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
BPF_TESTS  := $(patsubst tests/bpf/%.c,$(BUILD)/tests/%,$(wildcard tests/bpf/test_*.c))
BENCHES    := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/bench_*.c))
TOOLS      := $(patsubst tests/tools/%.c,$(BUILD)/tools/kl-%,$(wildcard tests/tools/*.c))
FUZZERS    := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
HDRS := $(wildcard */*.h bpf/*.h)
# Man pages, each printed by a binary from its own tables (scripts/gen-man.sh).
MAN_PAGES := $(shell scripts/gen-man.sh --list)

.PHONY: all deps check test test-stages slow-replay unit bpftest fuzz-smoke integration bench fuzz demo man install uninstall clean
.SECONDARY:

all: $(BINS) $(BPF_OBJS) $(BUILD)/man/.stamp

deps:
	@scripts/deps.sh

# ---- BPF ----
$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c bpf/*.h
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
$(BUILD)/bpf/%.bpf.o: tests/bpf/%.bpf.c bpf/*.h
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
$(BUILD)/bpf/%.bpf.o: bench/%.bpf.c bpf/*.h
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
$(BUILD)/gen/%.skel.h: $(BUILD)/bpf/%.bpf.o
	@mkdir -p $(@D)
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@.tmp && mv $@.tmp $@
# Key and value size of each map from the object's BTF, for _Static_assert.
$(BUILD)/host/btf-map-sizes: scripts/btf-map-sizes.c
	@mkdir -p $(@D)
	$(CC) -O2 $(CSTD) $(WARN) -o $@ $< -lbpf -lelf -lz
$(BUILD)/gen/%.maps.h: $(BUILD)/bpf/%.bpf.o $(BUILD)/host/btf-map-sizes
	@mkdir -p $(@D)
	$(BUILD)/host/btf-map-sizes $< > $@.tmp && mv $@.tmp $@

# ---- userspace ----
$(BUILD)/obj/%.o: %.c $(HDRS) $(SKELS) $(MAPHDRS) $(TEST_SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/lib/libkl.a: $(KL_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

.SECONDEXPANSION:
$(BUILD)/lib/lib%.a: $$(foreach s,$$(call dirlib_srcs,$$*),$(BUILD)/obj/$$(basename $$(s)).o)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

# Each binary links its own library and the shared one, nothing else; a
# link error then shows code that one daemon reaches into another for.
# (klctl's `trace from-pcap` and kl-sensor share the harvest in libkl.a.)
own_libs = $(filter $(BUILD)/lib/lib$(1).a,$(DIR_LIBS))
$(BUILD)/bin/kl-%: $(BUILD)/obj/%/main.o $$(call own_libs,$$*) $(BUILD)/lib/libkl.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/bin/klctl: $(BUILD)/obj/ctl/main.o $(call own_libs,ctl) $(BUILD)/lib/libkl.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka
$(BUILD)/tests/%: $(BUILD)/obj/tests/bpf/%.o $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka
$(BUILD)/tools/kl-%: $(BUILD)/obj/tests/tools/%.o $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# ---- man pages ----
$(BUILD)/man/.stamp: $(BINS) scripts/gen-man.sh
	@scripts/gen-man.sh $(BUILD)/bin $(BUILD)/man && touch $@

man: $(BINS)
	scripts/gen-man.sh $(BUILD)/bin man

# ---- fuzzing (clang + libFuzzer; every lib source compiled in) ----
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -I. -I$(BUILD)/gen -fsanitize=fuzzer,address,undefined
FUZZ_LIB_SRCS := $(KL_SRCS) $(foreach d,$(DAEMON_DIRS),$(call dirlib_srcs,$(d)))
# Each library source is compiled once and linked into every target.
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:%.c=$(BUILD)/fuzzobj/%.o)
$(BUILD)/fuzzobj/%.o: %.c $(HDRS) $(SKELS) $(MAPHDRS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -c $< -o $@
$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_OBJS) $(HDRS) $(SKELS) $(MAPHDRS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIB_OBJS) $(LDLIBS)

# ---- tests ----
# `check` builds everything with ASan+UBSan in build/san and runs it all.
# One results file spans both builds so the closing line counts everything.
RESULTS := $(CURDIR)/build/test-results
check: deps
	@mkdir -p build && KL_RESULTS=$(RESULTS) tests/run.sh reset build
	KL_RESULTS=$(RESULTS) $(MAKE) BUILD=build/san SAN=1 test-stages
	KL_RESULTS=$(RESULTS) $(MAKE) BUILD=build/fuzz-build fuzz-smoke
	KL_RESULTS=$(RESULTS) $(MAKE) BUILD=build/rel slow-replay
	@KL_RESULTS=$(RESULTS) tests/run.sh summary build

test:
	@mkdir -p $(BUILD) && tests/run.sh reset $(BUILD)
	$(MAKE) test-stages
	@tests/run.sh summary $(BUILD)

test-stages: all $(TOOLS) $(UNIT_TESTS) $(BPF_TESTS) $(BPF_TEST_OBJS)
	@tests/run.sh unit $(BUILD) $(UNIT_TESTS)
	@tests/run.sh bpf $(BUILD) $(BPF_TESTS)
	@tests/run.sh replay $(BUILD) $(wildcard tests/replay/run.sh tests/replay/graph_run.sh tests/replay/baseline_run.sh tests/golden/run.sh tests/golden/graph_pdp.sh)
	@tests/run.sh docs $(BUILD) tests/man/run.sh
	@tests/run.sh integration $(BUILD) $(sort $(wildcard tests/integration/[0-9]*.sh))

# The 15-simulated-day autotune replay is CPU-bound in userspace: it runs
# on an optimised build (ASan makes it 4x slower) and is counted with the rest.
slow-replay: $(BUILD)/bin/kl-decider
	@tests/run.sh replay $(BUILD) $(wildcard tests/replay/autotune_run.sh)

fuzz-smoke: $(FUZZERS)
	@tests/run.sh fuzz-smoke $(BUILD) $(FUZZERS)

fuzz: deps $(FUZZERS)
	@for f in $(FUZZERS); do n=$$(basename $$f); mkdir -p $(BUILD)/corpus/$$n; \
		echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(BUILD)/corpus/$$n tests/fuzz/corpus/$$n 2>&1 | tail -n 12 || exit 1; done

bench: deps all $(TOOLS) $(BENCHES) $(BPF_TEST_OBJS)
	@bench/run.sh $(BUILD)

demo: deps all $(TOOLS)
	@scripts/demo.sh $(BUILD)

# PREFIX is compiled in (the default BPF object path): build and install
# with the same one (`make PREFIX=/usr && make install PREFIX=/usr`).
# Where systemd looks for units, sysusers.d and tmpfiles.d files: under
# /usr/local/lib and /usr/lib by default; set the three dirs for another PREFIX.
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
UNITS := $(wildcard systemd/*.service systemd/*.target)
MANDIR      ?= $(PREFIX)/share/man
# Example configuration: copied only where the file does not exist yet.
ETC_FILES := etc/enforcer.yaml etc/sensor.yaml etc/graphd.yaml etc/whitelist.txt

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/kernloom \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) \
		$(DESTDIR)$(PREFIX)/share/kernloom/pdp $(DESTDIR)$(PREFIX)/share/doc/kernloom/docs \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 $(BPF_OBJS) $(DESTDIR)$(PREFIX)/lib/kernloom/
	for u in $(UNITS); do \
		sed 's|@PREFIX@|$(PREFIX)|g' $$u > $(DESTDIR)$(UNITDIR)/$$(basename $$u).tmp && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$u).tmp && \
		mv $(DESTDIR)$(UNITDIR)/$$(basename $$u).tmp $(DESTDIR)$(UNITDIR)/$$(basename $$u) || exit 1; \
	done
	install -m 0644 systemd/sysusers.d/kernloom.conf $(DESTDIR)$(SYSUSERSDIR)/kernloom.conf
	install -m 0644 systemd/tmpfiles.d/kernloom.conf $(DESTDIR)$(TMPFILESDIR)/kernloom.conf
	install -m 0644 etc/pdp/*.yaml $(DESTDIR)$(PREFIX)/share/kernloom/pdp/
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/kernloom/README.md
	install -m 0644 docs/*.md $(DESTDIR)$(PREFIX)/share/doc/kernloom/docs/
	for p in $(MAN_PAGES); do \
		[ -f $(BUILD)/man/$$p ] || continue; \
		install -m 0644 $(BUILD)/man/$$p $(DESTDIR)$(MANDIR)/man$${p##*.}/$$p || exit 1; \
	done
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/kernloom
	for f in $(ETC_FILES); do \
		t=$(DESTDIR)$(SYSCONFDIR)/kernloom/$$(basename $$f); \
		if [ -e $$t ]; then echo "keeping $$t"; else install -m 0644 $$f $$t || exit 1; fi; \
	done

# Removes what install put there; /etc/kernloom, the state under
# /var/lib/kernloom and the service users stay (docs/deployment.md).
uninstall:
	rm -f $(foreach b,$(notdir $(BINS)),$(DESTDIR)$(PREFIX)/bin/$(b))
	rm -f $(foreach o,$(notdir $(BPF_OBJS)),$(DESTDIR)$(PREFIX)/lib/kernloom/$(o))
	rm -f $(foreach u,$(notdir $(UNITS)),$(DESTDIR)$(UNITDIR)/$(u))
	rm -f $(DESTDIR)$(SYSUSERSDIR)/kernloom.conf $(DESTDIR)$(TMPFILESDIR)/kernloom.conf
	rm -rf $(DESTDIR)$(PREFIX)/share/kernloom $(DESTDIR)$(PREFIX)/share/doc/kernloom
	rm -f $(foreach p,$(MAN_PAGES),$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(p)))/$(p))
	-rmdir $(DESTDIR)$(PREFIX)/lib/kernloom 2>/dev/null

clean:
	rm -rf build
