#!/bin/sh
# NAME
#	valgrind-check - memcheck over the unit tests and part of the suite
# SYNOPSIS
#	tools/valgrind-check.sh SENDMAIL UNIT PYTHON [PYTEST-ARGS...]
# DESCRIPTION
#	Runs UNIT (build/unit) under valgrind memcheck, then pytest with
#	PYTEST-ARGS (test files or node ids) against a wrapper that runs
#	SENDMAIL under valgrind. The tests give the program a clean
#	environment, so the wrapper is written with every path in it.
#	Every process (forked children included: the unit runner's tests,
#	the background flush, parallel flush workers) writes its own log;
#	programs it executes from the system (/bin/sh for password_command)
#	are not traced. The check fails if the tests fail or if any log
#	reports a memory error or a definite leak; it prints how many
#	processes were checked. tools/valgrind.supp holds the suppressions
#	(library noise only). KEEP=1 keeps the logs.
# EXIT STATUS
#	0 clean; 1 errors, leaks or failed tests; 2 valgrind missing.
set -u

sendmail=$(realpath "$1")
unit=$(realpath "$2")
python=$3
shift 3
top=$(cd "$(dirname "$0")/.." && pwd)
vg=$(command -v valgrind) || {
	echo "valgrind-check: valgrind is not installed" >&2
	exit 2
}
dir=$(mktemp -d "${TMPDIR:-/tmp}/outbox-valgrind.XXXXXX")
mkdir "$dir/logs" "$dir/bin"
[ "${KEEP:-}" ] || trap 'rm -rf "$dir"' EXIT

# --trace-children: follow exec too; fork is always followed.
# The log name carries the start time as well as the pid, so a reused
# pid cannot overwrite an earlier process's log.
opts="--error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite
 --trace-children=yes --trace-children-skip=/bin/*,/usr/bin/*,/sbin/*,/usr/sbin/*
 --suppressions=$top/tools/valgrind.supp --num-callers=30"

# The wrapper: the same name the tests invoke (mailq, a symlink) reaches
# the binary under that name, as argv[0] picks the mode.
cat > "$dir/bin/sendmail" <<WRAP
#!/bin/sh
name=\$(basename "\$0")
bin=$sendmail
if [ "\$name" != sendmail ]; then
	mkdir -p "$dir/as"
	ln -sf "$sendmail" "$dir/as/\$name"
	bin="$dir/as/\$name"
fi
exec $vg $(echo $opts) --log-file="$dir/logs/\$(date +%s%N).%p.log" "\$bin" "\$@"
WRAP
chmod 755 "$dir/bin/sendmail"

status=0
echo "valgrind-check: $unit"
# shellcheck disable=SC2086
"$vg" $opts --log-file="$dir/logs/unit.%p.log" "$unit" || status=1
echo "valgrind-check: pytest $*"
OUTBOX_SENDMAIL="$dir/bin/sendmail" "$python" -m pytest -q \
	-p no:cacheprovider "$@" || status=1

# A detached background flush may outlive its test: give such processes
# (the pid is the log name's last part) a minute to finish their log.
for i in $(seq 60); do
	alive=0
	for f in $(grep -L 'ERROR SUMMARY' "$dir/logs"/*.log 2>/dev/null); do
		pid=${f%.log}
		kill -0 "${pid##*.}" 2>/dev/null && alive=1
	done
	[ $alive -eq 0 ] && break
	sleep 1
done
total=$(find "$dir/logs" -name '*.log' | wc -l)
units=$(find "$dir/logs" -name 'unit.*.log' | wc -l)
bad=$(grep -lE 'ERROR SUMMARY: [1-9]|definitely lost: [1-9]' \
	"$dir/logs"/*.log 2>/dev/null)
unfinished=$(grep -L 'ERROR SUMMARY' "$dir/logs"/*.log 2>/dev/null | wc -l)
for f in $bad; do
	echo "==== $f"
	cat "$f"
done
nbad=$(echo "$bad" | grep -c .)
echo "valgrind-check: $total processes checked ($units unit, $((total - units))" \
	"sendmail), $nbad with errors or definite leaks ($unfinished killed" \
	"before valgrind's summary)"
[ "$nbad" -eq 0 ] || status=1
exit $status
