# outbox - a sendmail-compatible mail submission program.
# make | make check | make install [PREFIX=/usr/local] [DESTDIR=] | make demo

PREFIX  ?= /usr/local
DESTDIR ?=
PYTHON  ?= /usr/bin/python3

# libcurl is compiled against but not linked: relay/curl.c loads it
# when a relay is contacted, so queueing, mailq and -bv start fast.
PKGS    := libcurl libcrypto inih
CC      ?= cc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
	   -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -I.
CFLAGS  += $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs libcrypto inih)

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

check: $(BIN) $(BUILD)/unit
	$(BUILD)/unit
	OUTBOX_SENDMAIL=$(BIN) $(PYTHON) -m pytest -q -p no:cacheprovider tests

# The whole suite on an AddressSanitizer + UndefinedBehaviorSanitizer build.
check-asan:
	$(MAKE) SAN=1 BUILD=build/asan BIN=build/asan/sendmail check

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

.PHONY: all check check-asan install demo bench clean
