#!/usr/bin/env bash
# run.sh - run outbox's libFuzzer harnesses (see fuzz/README)
#
# Usage: fuzz/run.sh fuzz SECONDS TARGET...
#        fuzz/run.sh regress 0 TARGET...
#
# fuzz: each target for SECONDS on build/fuzz/corpus/TARGET, a working
# copy of fuzz/corpus/TARGET and fuzz/regress/TARGET that keeps growing
# from run to run (the committed corpus is never written to). Crashes go
# to build/fuzz/crashes/TARGET-*, the log to build/fuzz/logs/TARGET.log.
# Prints one line per target: executions, coverage (cov, ft), corpus.
#
# regress: each target once over every file of fuzz/corpus/TARGET and
# fuzz/regress/TARGET (crash reproducers), nothing else: seconds.
#
# Exit status: 0 when no target crashed, 1 otherwise, 64 usage.

set -uo pipefail

readonly FUZZ_DIR=fuzz
readonly BUILD=build/fuzz

# -max_len per target: what one realistic input of that kind needs
declare -A MAX_LEN=(
	[addr]=4096 [header]=65536 [smtpd]=65536 [reply]=8192 [sasl]=16384
	[conf]=16384 [spool]=32768 [cache]=16384 [oauth2]=16384 [dkim]=32768
)

usage() {
	echo "usage: fuzz/run.sh fuzz SECONDS TARGET... | regress 0 TARGET..." >&2
	exit 64
}

(($# >= 3)) || usage
mode=$1 seconds=$2
shift 2
[[ $seconds =~ ^[0-9]+$ ]] || usage

# the files of the committed corpus and the reproducers of one target
inputs() {
	local d
	for d in "$FUZZ_DIR/corpus/$1" "$FUZZ_DIR/regress/$1"; do
		[[ -d $d ]] && find "$d" -type f ! -name '.*' ! -name README
	done | sort
}

# fuzz_one TARGET: run it, print its summary line; 1 if it crashed
fuzz_one() {
	local t=$1 bin=$BUILD/fuzz_$1 work=$BUILD/corpus/$1
	local log=$BUILD/logs/$1.log dict=() rc f
	mkdir -p "$work" "$BUILD/crashes" "$BUILD/logs"
	while IFS= read -r f; do
		cp -n -- "$f" "$work/$(basename -- "$f")"
	done < <(inputs "$t")
	[[ -f $FUZZ_DIR/$t.dict ]] && dict=(-dict="$FUZZ_DIR/$t.dict")
	"$bin" -max_len="${MAX_LEN[$t]:-4096}" -max_total_time="$seconds" \
		-timeout=25 -print_final_stats=1 "${dict[@]}" \
		-artifact_prefix="$BUILD/crashes/$t-" "$work" >"$log" 2>&1
	rc=$?
	local last execs
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	printf '%-7s %s execs=%s  %s\n' "$t" \
		"$( ((rc == 0)) && echo ok || echo CRASH)" "${execs:-?}" \
		"$(sed -E 's/.*(cov: [0-9]+ ft: [0-9]+ corp: [^ ]+).*/\1/' <<<"$last")"
	if ((rc != 0)); then
		echo "  $t: see $log and $BUILD/crashes/$t-*" >&2
		return 1
	fi
	return 0
}

# regress_one TARGET: every committed input once; 1 if one crashed
regress_one() {
	local t=$1 bin=$BUILD/fuzz_$1 files log=$BUILD/logs/$1.regress.log
	mkdir -p "$BUILD/logs"
	mapfile -t files < <(inputs "$t")
	if ((${#files[@]} == 0)); then
		echo "$t: no inputs in $FUZZ_DIR/corpus/$t" >&2
		return 1
	fi
	if "$bin" -runs=1 "${files[@]}" >"$log" 2>&1; then
		printf '%-7s ok (%d inputs)\n' "$t" "${#files[@]}"
		return 0
	fi
	echo "$t: FAILED; see $log" >&2
	tail -n 30 "$log" >&2
	return 1
}

status=0
for t in "$@"; do
	[[ -x $BUILD/fuzz_$t ]] || { echo "no $BUILD/fuzz_$t (make fuzz-build)" >&2; exit 1; }
	case $mode in
	fuzz) fuzz_one "$t" || status=1 ;;
	regress) regress_one "$t" || status=1 ;;
	*) usage ;;
	esac
done
exit $status
