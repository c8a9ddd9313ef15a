/*
 * NAME
 *	common - what every libFuzzer harness in fuzz/ shares
 * SYNOPSIS
 *	#include "fuzz/common.h"
 * DESCRIPTION
 *	FUZZ_ASSERT() is the harnesses' oracle: a property that does not
 *	hold prints the expression and aborts, which libFuzzer reports as a
 *	crash with the input that caused it.
 *
 *	fuzz_tmpdir() makes a private scratch directory (mode 0700, on
 *	/dev/shm when it is there, so that fsync costs nothing) that is
 *	removed when the fuzzer exits; directories left by a fuzzer that
 *	crashed are removed by the next one. fuzz_empty_dir() removes what
 *	one input left in a spool subdirectory, so nothing grows from run
 *	to run.
 *
 *	fuzz_memfd() puts bytes in an anonymous file, positioned at 0: how
 *	a harness hands "standard input" or "a file" to the code under test.
 *
 *	log_die() is how outbox refuses a bad configuration. With
 *	fuzz_die_armed set, a log_die() longjmps to fuzz_die_env (its
 *	message in fuzz_die_text) before it prints or exits:
 *
 *		fuzz_die_armed = true;
 *		if (setjmp(fuzz_die_env) == 0)
 *			...code that may log_die()...
 *		fuzz_die_armed = false;
 *
 *	Anywhere else a log_die() still exits, and libFuzzer reports that
 *	as a bug. fuzz_catch_install() sets the hook (LLVMFuzzerInitialize).
 *
 *	fuzz_track_begin() and fuzz_track_end() record what is allocated
 *	in between and still live (through the sanitizer allocator's hooks);
 *	fuzz_track_end(true) frees it. A refused configuration is abandoned
 *	half built by log_die(); this frees it, so that LeakSanitizer
 *	reports only real leaks.
 */
#ifndef OUTBOX_FUZZ_COMMON_H
#define OUTBOX_FUZZ_COMMON_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond) \
	((cond) ? (void)0 : fuzz_fail(__FILE__, __LINE__, #cond))

_Noreturn void fuzz_fail(const char *file, int line, const char *expr);

char *fuzz_tmpdir(const char *tag);
void fuzz_empty_dir(const char *dir);
int fuzz_memfd(const void *data, size_t len);
void fuzz_memfd_reset(int fd, const void *data, size_t len);
char *fuzz_memfd_read(int fd, size_t *len);

extern jmp_buf fuzz_die_env;
extern volatile bool fuzz_die_armed;
extern char fuzz_die_text[512];
void fuzz_catch_install(void);

void fuzz_track_begin(void);
size_t fuzz_track_end(bool free_them);

#endif
