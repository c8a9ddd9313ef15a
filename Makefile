# outbox - a sendmail-compatible mail submission program.
# make | make check | make install [PREFIX=/usr/local] [DESTDIR=] | make demo

PREFIX  ?= /usr/local
DESTDIR ?=
PYTHON  ?= /usr/bin/python3

# libcurl, libssl and libcrypto are compiled against but not linked: they
# are loaded when first needed (relay/curl.c for OAuth2 token requests,
# util/ossl.c for TLS and DKIM), so queueing, mailq and -bv start fast.
PKGS    := libcurl libssl libcrypto inih
CC      ?= cc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
	   -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -I. -pthread
CFLAGS  += $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs inih) -pthread

# Debian's libinih exposes its limits as globals; outbox raises the line
# limit and turns continuation lines off where it can (conf/conf.c).
INI_H   := $(shell pkg-config --variable=includedir inih 2>/dev/null)/ini.h
ifneq ($(shell grep -s ini_max_line $(INI_H)),)
CFLAGS  += -DHAVE_INI_GLOBALS
endif

BUILD   ?= build
BIN     ?= sendmail
ifdef SAN
CFLAGS  += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	   -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif
# the library as the libFuzzer harnesses link it (make fuzz, fuzz/README)
ifdef FUZZ
CFLAGS  += -O1 -fno-omit-frame-pointer \
	   -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
endif
LIBSRC  := $(wildcard util/*.c conf/*.c message/*.c queue/*.c relay/*.c)
LIBOBJ  := $(LIBSRC:%.c=$(BUILD)/%.o)
UNITSRC := $(wildcard tests/unit/*.c)
UNITOBJ := $(UNITSRC:%.c=$(BUILD)/%.o)

all: $(BIN)

# V=1 shows the full commands
Q       := $(if $(V),,@)

$(BIN): $(BUILD)/sendmail.o $(LIBOBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c $(wildcard */*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/unit: $(UNITOBJ) $(LIBOBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

check: style $(BIN) $(BUILD)/unit
	$(BUILD)/unit
	$(MAKE) fuzz-regress
	OUTBOX_SENDMAIL=$(BIN) $(PYTHON) -m pytest -q -p no:cacheprovider tests

# What CI runs after make check: the suite under the sanitizers, the
# static analysis and a short run of every fuzzer.
check-hardening: check-asan lint fuzz-ci

# The whole suite on an AddressSanitizer + UndefinedBehaviorSanitizer build.
check-asan:
	$(MAKE) SAN=1 BUILD=build/asan BIN=build/asan/sendmail check

# The style check, make check's first step: banned functions, layout and
# the comments STYLE.md asks for; inline exceptions are counted against
# tools/style-budget (tools/style.py says how).
style:
	$(Q)$(PYTHON) tools/style.py

# Static analysis: clang-tidy (.clang-tidy) and cppcheck (tools/cppcheck.supp
# and tools/cppcheck.cfg) over every C file of the program and of fuzz/;
# any finding fails. Both see the code as the compiler does: the -std, -D
# and -I flags of CFLAGS, pkg-config's directories as system ones. One
# clang-tidy run per file, remembered in $(BUILD)/lint until the file, a
# header or the configuration changes: make -j lint.
CLANG_TIDY ?= clang-tidy
CPPCHECK   ?= cppcheck
LINTSRC    := sendmail.c $(LIBSRC) $(wildcard fuzz/*.c)
LINTSTD    := $(filter -std=%,$(CFLAGS))
LINTDEFS   := $(filter -D% -U%,$(CFLAGS))
LINTINC    := -I. $(patsubst -I%,-isystem %,$(filter-out -I.,$(filter -I%,$(CFLAGS))))
TIDYOK     := $(LINTSRC:%.c=$(BUILD)/lint/%.ok)

lint: lint-tidy lint-cppcheck

lint-tidy: $(TIDYOK)

$(BUILD)/lint/%.ok: %.c .clang-tidy $(wildcard */*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	@echo "  TIDY    $<"
	$(Q)$(CLANG_TIDY) --quiet $< -- $(LINTSTD) $(LINTDEFS) $(LINTINC) \
	  >$@.log 2>&1 || { grep -v 'warnings\? generated\.$$' $@.log; \
	  rm -f $@.log; exit 1; }
	$(Q)mv $@.log $@

lint-cppcheck:
	@echo "  CPPCHECK $(words $(LINTSRC)) files"
	$(Q)$(CPPCHECK) --quiet --error-exitcode=1 --inline-suppr \
	  --enable=warning,style,performance,portability \
	  $(patsubst -std=%,--std=%,$(LINTSTD)) \
	  --library=posix --library=gnu --library=tools/cppcheck.cfg \
	  --suppressions-list=tools/cppcheck.supp \
	  --template='{file}:{line}: {severity}: {message} [{id}]' \
	  $(LINTDEFS) -I. $(LINTSRC)

.PHONY: style lint lint-tidy lint-cppcheck

# libFuzzer harnesses, one per parser of untrusted input (fuzz/README),
# built with clang into build/fuzz. make fuzz runs each for FUZZ_TIME
# seconds on a copy of its corpus in build/fuzz/corpus/ (the committed
# corpus never grows by itself), fuzz-ci for 10 seconds each;
# fuzz-regress (a step of make check) runs each over its committed corpus
# and its crash reproducers in fuzz/regress/ once: seconds.
FUZZ_TIME    ?= 60
FUZZ_CC      ?= clang
FUZZ_TARGETS := addr header smtpd reply sasl conf spool cache oauth2 dkim
FUZZ_BUILD   := build/fuzz
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

fuzz-build:
	$(MAKE) FUZZ=1 SAN= CC=$(FUZZ_CC) BUILD=$(FUZZ_BUILD) fuzz-bins

fuzz-bins: $(FUZZ_BINS)

# the harnesses call libcrypto themselves (keys, verification): linked
$(FUZZ_BINS): $(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_BUILD)/fuzz/common.o \
	$(LIBOBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS) \
		$(shell pkg-config --libs libcrypto)

fuzz: fuzz-build
	fuzz/run.sh fuzz $(FUZZ_TIME) $(FUZZ_TARGETS)

fuzz-ci: fuzz-build
	fuzz/run.sh fuzz 10 $(FUZZ_TARGETS)

fuzz-regress: fuzz-build
	fuzz/run.sh regress 0 $(FUZZ_TARGETS)

# The unit tests and a representative part of the suite under valgrind
# memcheck (tools/valgrind-check.sh): any memory error or definite leak
# in any process fails. About three minutes; the whole suite would take
# more than half an hour.
VALGRIND_TESTS ?= \
	tests/test_submit.py::test_adds_from_date_message_id_and_drops_bcc \
	tests/test_submit.py::test_t_reads_to_cc_bcc_and_removes_bcc \
	tests/test_submit.py::test_nul_byte_is_refused_and_nothing_queued \
	tests/test_hygiene.py::test_long_8bit_line_gets_utf8_content_type \
	tests/test_hygiene.py::test_cron_mail_from_root_is_rewritten_and_aliased \
	tests/test_bs.py::test_several_messages_pipelined_with_rset \
	tests/test_bs.py::test_garbage_gets_500_or_501_and_the_session_goes_on \
	tests/test_bs.py::test_spool_failure_mid_session_is_421_not_stderr \
	tests/test_delivery.py::test_wrong_password_sends_nothing_and_keeps_mail \
	tests/test_delivery.py::test_relay_down_then_up_then_flush_delivers_exactly_once \
	tests/test_delivery.py::test_partial_acceptance_exits_0_reports_and_bounces_the_rejected \
	tests/test_delivery.py::test_password_command \
	tests/test_queue.py::test_expired_message_bounces_with_the_last_reply \
	tests/test_queue.py::test_hold_release_delete \
	tests/test_queue.py::test_mailq_json \
	tests/test_flags.py::test_invoked_as_mailq_lists \
	tests/test_dkim.py::test_rsa_and_ed25519_side_by_side \
	tests/test_transport.py::test_check_a_good_relay_reports_tls_certificate_and_auth \
	tests/test_delivery.py::test_flush_reuses_one_connection_for_many_messages \
	tests/test_queue.py::test_background_flush_skips_what_is_not_due \
	tests/test_config.py::test_strict_errors_name_file_and_line \
	tests/test_config.py::test_missing_explicit_config_is_an_error

check-valgrind: $(BIN) $(BUILD)/unit
	$(Q)tools/valgrind-check.sh $(BIN) $(BUILD)/unit $(PYTHON) $(VALGRIND_TESTS)

install: sendmail
	install -C -D -m 0755 sendmail $(DESTDIR)$(PREFIX)/sbin/sendmail
	for l in mailq newaliases; do \
	  [ -L $(DESTDIR)$(PREFIX)/sbin/$$l ] || \
	    ln -s sendmail $(DESTDIR)$(PREFIX)/sbin/$$l; done
	install -C -D -m 0644 docs/outbox.8 \
	  $(DESTDIR)$(PREFIX)/share/man/man8/outbox.8

demo: sendmail
	@tests/demo.sh

# Side by side with msmtp and Postfix's sendmail on a loopback Postfix
# relay; prints one table (bench/bench.py). Never part of make check.
bench: sendmail
	$(PYTHON) bench/bench.py

clean:
	rm -rf $(BUILD) sendmail

.PHONY: all check check-hardening check-asan check-valgrind install demo bench clean fuzz fuzz-ci \
	fuzz-regress fuzz-build fuzz-bins
