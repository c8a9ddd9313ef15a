#!/usr/bin/env bash
# install.sh - build and install outbox, a sendmail-compatible mail submission
# program.
#
# Usage: ./install.sh [--prefix DIR] [--system] [--force] [--uninstall]
#                     [--no-deps] [-h|--help]
#
# Run "./install.sh --help" for what each option does.
#
# Exit status: 0 success, 64 usage error, 69 required packages missing or the
# build impossible, 73 refused to replace or remove a file (see --force),
# 77 permission denied (--system needs root).
#
# For tests only: OUTBOX_SYSROOT (default empty) is prefixed to every system
# path this script touches (/usr/sbin/sendmail, /usr/lib/sendmail,
# /etc/outbox.conf, /var/spool/outbox); package ownership of the two sendmail
# paths is then looked up in $OUTBOX_SYSROOT/var/lib/dpkg (dpkg --root).
# With it set, --system also works without root. It does not affect --prefix,
# the build, or the package-dependency step. Leave it unset in normal use.

set -euo pipefail

readonly PROG=install.sh
readonly SYSROOT=${OUTBOX_SYSROOT:-}
# Build: the first six. Test (make check drives real programs and a real
# Postfix): the rest. Postfix is installed unconfigured ("No
# configuration"): its system instance never runs; the tests start their
# own on loopback. sasl2-bin (saslpasswd2) and the libsasl2 modules give
# that Postfix Cyrus SASL AUTH from a sasldb of its own; saslauthd is not
# used and stays disabled. clang and its sanitizer runtimes
# (libclang-rt-14-dev: libFuzzer, ASan, UBSan) build the fuzzing
# harnesses (make fuzz, make fuzz-regress; fuzz/README); clang-tidy and
# cppcheck are make lint, valgrind make check-valgrind. git send-email
# needs Mail::Address (libmailtools-perl), only a Recommends of git-email.
readonly DEPS=(gcc make pkg-config libssl-dev libinih-dev libcurl4-openssl-dev
	openssl ca-certificates python3 python3-pytest python3-aiosmtpd
	python3-dkim swaks php-cli bsd-mailx git git-email libmailtools-perl
	postfix msmtp sasl2-bin libsasl2-modules libsasl2-modules-db clang
	libclang-rt-14-dev clang-tidy cppcheck valgrind)
readonly SYSTEM_PATHS=(/usr/sbin/sendmail /usr/lib/sendmail)
readonly BACKUP_SUFFIX=.outbox-backup

DONE=()    # things this run changed
PRESENT=() # things already in place
NOTES=()   # things skipped, and why

say() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
	local code=$1
	shift
	warn "$*"
	exit "$code"
}

readonly USAGE_LINE="Usage: ./install.sh [--prefix DIR] [--system] [--timer USER] [--force] [--uninstall] [--no-deps] [-h|--help]"

# for usage errors: the usage line only, on stderr, then exit 64
usage_error() {
	warn "$*"
	printf '%s\n' "$USAGE_LINE" "Try './install.sh --help' for more information." >&2
	exit 64
}

usage() {
	printf '%s\n' "$USAGE_LINE"
	cat <<'EOF'

Build outbox and install it as PREFIX/sbin/sendmail (with mailq and
newaliases links to it).

  --prefix DIR  install under DIR (default /usr/local); works without root,
                e.g. --prefix "$HOME/.local"
  --system      also point /usr/sbin/sendmail and /usr/lib/sendmail at
                PREFIX/sbin/sendmail (symlinks); whatever was there is moved
                to PATH.outbox-backup
  --timer USER  also flush USER's queue every 5 minutes (sendmail -q as
                USER): a systemd timer outbox-flush@USER.timer, or
                /etc/cron.d/outbox-USER where systemd is not running
  --force       replace files owned by a Debian package (with --system, or
                PREFIX/sbin/sendmail itself)
  --uninstall   remove what was installed and restore the backups; keeps
                /etc/outbox.conf and the spool (queued mail is never deleted)
  --no-deps     do not check for or install build and test packages
  -h, --help    show this help

As root it also creates the spool /var/spool/outbox (root:root, mode 1733)
and installs /etc/outbox.conf from conf/outbox.conf.sample if there is none.
Without root those steps are skipped and outbox uses the per-user spool.
Running it again changes nothing.
EOF
}

is_root() { [[ $EUID -eq 0 ]]; }

exists() { [[ -e $1 || -L $1 ]]; }

# pkg_owner sys|real PATH: print the Debian package owning PATH (a path as
# dpkg knows it, without OUTBOX_SYSROOT), or nothing.  "sys" consults the
# OUTBOX_SYSROOT package database when that is set.
pkg_owner() {
	local where=$1 path=$2 out line
	command -v dpkg >/dev/null 2>&1 || return 0
	if [[ $where == sys && -n $SYSROOT ]]; then
		out=$(dpkg --root="$SYSROOT" -S "$path" 2>/dev/null) || return 0
	else
		out=$(dpkg -S "$path" 2>/dev/null) || return 0
	fi
	while IFS= read -r line; do
		[[ $line == "diversion "* ]] && continue
		[[ $line == *": /"* ]] || continue
		printf '%s\n' "${line%%: /*}"
		return 0
	done <<<"$out"
}

# ---------------------------------------------------------------- options

PREFIX=/usr/local
TIMER_USERS=()
SYSTEM=0
FORCE=0
UNINSTALL=0
NODEPS=0

while (($#)); do
	case $1 in
	--prefix)
		(($# >= 2)) || usage_error "--prefix needs a directory"
		PREFIX=$2
		shift 2
		continue
		;;
	--prefix=*) PREFIX=${1#--prefix=} ;;
	--system) SYSTEM=1 ;;
	--timer)
		(($# >= 2)) || usage_error "--timer needs a user name"
		TIMER_USERS+=("$2")
		shift 2
		continue
		;;
	--force) FORCE=1 ;;
	--uninstall) UNINSTALL=1 ;;
	--no-deps) NODEPS=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage_error "unknown option: $1"
		;;
	esac
	shift
done

[[ -n $PREFIX ]] || usage_error "--prefix needs a non-empty directory"
# Absolute and normalised (no trailing slash, no ".."), relative to the
# directory the script was started from.
PREFIX=$(realpath -m -s -- "$PREFIX")
readonly PREFIX
readonly BIN=$PREFIX/sbin/sendmail
readonly MAN=$PREFIX/share/man/man8/outbox.8

SRCDIR=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
readonly SRCDIR
cd -- "$SRCDIR"

# ---------------------------------------------------------------- install steps

install_deps() {
	if [[ ! -e /etc/debian_version ]] && ! command -v dpkg-query >/dev/null 2>&1; then
		NOTES+=("not Debian/Ubuntu: build and test packages not checked (need: ${DEPS[*]})")
		return 0
	fi
	if ! command -v dpkg-query >/dev/null 2>&1; then
		NOTES+=("dpkg-query not found: build and test packages not checked")
		return 0
	fi
	local p status missing=()
	for p in "${DEPS[@]}"; do
		# shellcheck disable=SC2016 # ${Status} is a dpkg-query field, not a shell expansion
		status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) || status=
		[[ $status == *" ok installed" ]] || missing+=("$p")
	done
	if ((${#missing[@]} == 0)); then
		PRESENT+=("build and test packages (all ${#DEPS[@]} installed)")
		return 0
	fi
	if is_root; then
		say "installing missing packages: ${missing[*]}"
		# the test Postfix must not become this machine's mail server
		echo "postfix postfix/main_mailer_type select No configuration" |
			debconf-set-selections 2>/dev/null || true
		apt-get update || die 69 "apt-get update failed"
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" ||
			die 69 "apt-get install failed for: ${missing[*]}"
		DONE+=("installed packages: ${missing[*]}")
		return 0
	fi
	warn "missing packages (not root, cannot install them): ${missing[*]}"
	warn "trying to build anyway"
	command -v make >/dev/null 2>&1 ||
		die 69 "make is not installed; as root run: apt-get install ${missing[*]}"
	if make; then
		NOTES+=("packages missing but the build works without them: ${missing[*]} (make check may need them)")
	else
		die 69 "build failed and packages are missing: ${missing[*]}; as root run: apt-get install ${missing[*]} (or rerun ./install.sh as root)"
	fi
}

# stat-like fingerprint of an installed file, to tell what make install changed
fingerprint() {
	if [[ -L $1 ]]; then
		printf 'link:%s' "$(readlink -- "$1")"
	elif [[ -e $1 ]]; then
		stat -c 'file:%d:%i:%Y:%s:%a' -- "$1"
	else
		printf 'none'
	fi
}

build_and_install() {
	command -v make >/dev/null 2>&1 || die 69 "make is not installed (run without --no-deps, or install it)"
	say "building in $SRCDIR"
	make || die 69 "build failed"

	local owner backup=$BIN$BACKUP_SUFFIX
	owner=$(pkg_owner real "$BIN")
	if [[ -n $owner ]] && exists "$BIN" && ! exists "$backup"; then
		# only reached with --force (checked up front)
		mv -T -- "$BIN" "$backup"
		DONE+=("moved $BIN (package $owner) to $backup")
	fi

	local f files=("$BIN" "$PREFIX/sbin/mailq" "$PREFIX/sbin/newaliases" "$MAN")
	local before=()
	for f in "${files[@]}"; do before+=("$(fingerprint "$f")"); done
	say "installing into $PREFIX"
	make install PREFIX="$PREFIX" DESTDIR= || die 73 "make install PREFIX=$PREFIX failed"
	local i
	for i in "${!files[@]}"; do
		f=${files[i]}
		if ! exists "$f"; then
			continue # e.g. no man page yet
		elif [[ $(fingerprint "$f") == "${before[i]}" ]]; then
			PRESENT+=("$f (up to date)")
		else
			DONE+=("installed $f")
		fi
	done
	exists "$BIN" || die 73 "make install did not create $BIN"
}

setup_spool() {
	local d=$SYSROOT/var/spool/outbox
	if ! is_root; then
		NOTES+=("not root: $d not set up (outbox uses the per-user spool)")
		return 0
	fi
	[[ -L $d ]] && die 73 "$d is a symlink; refusing to use it as the spool"
	if [[ ! -e $d ]]; then
		install -d -m 1733 -o root -g root -- "$d"
		DONE+=("created spool $d (root:root, mode 1733)")
		return 0
	fi
	[[ -d $d ]] || die 73 "$d exists and is not a directory"
	local owner mode fixed=
	owner=$(stat -c '%u:%g' -- "$d")
	mode=$(stat -c '%a' -- "$d")
	if [[ $owner != 0:0 ]]; then
		chown root:root -- "$d"
		fixed="owner was $owner"
	fi
	if [[ $mode != 1733 ]]; then
		chmod 1733 -- "$d"
		fixed+="${fixed:+, }mode was $mode"
	fi
	if [[ -n $fixed ]]; then
		DONE+=("fixed spool $d to root:root 1733 ($fixed)")
	else
		PRESENT+=("spool $d")
	fi
}

install_conf() {
	local f=$SYSROOT/etc/outbox.conf sample=$SRCDIR/conf/outbox.conf.sample
	if ! is_root; then
		NOTES+=("not root: $f not installed (sample: $sample)")
		return 0
	fi
	if exists "$f"; then
		PRESENT+=("$f (never overwritten)")
		return 0
	fi
	[[ -f $sample ]] || die 66 "missing $sample"
	install -D -m 0644 -o root -g root -- "$sample" "$f"
	DONE+=("installed $f from the sample (no relay configured: mail is queued until you set one)")
}

# Is the system path (with sysroot) our symlink?
is_our_link() {
	[[ -L $1 && $(readlink -- "$1") == "$BIN" ]]
}

# PATH with its directory resolved but not its last component (so a symlink
# such as /usr/lib/sendmail -> ../sbin/sendmail stays itself).
dir_resolved() {
	printf '%s/%s' "$(realpath -m -- "$(dirname -- "$1")")" "$(basename -- "$1")"
}

# Is this system path the same file name as BIN (PREFIX=/usr), so that
# linking it would make it point at itself?
is_self() {
	[[ $(dir_resolved "$1") == "$(dir_resolved "$BIN")" ]]
}

# Refuse up front, before changing anything, if --system would have to replace
# something it must not.
check_system_paths() {
	local p full backup owner
	if ! is_root && [[ -z $SYSROOT ]]; then
		die 77 "--system needs root (it changes ${SYSTEM_PATHS[*]})"
	fi
	for p in "${SYSTEM_PATHS[@]}"; do
		full=$SYSROOT$p
		backup=$full$BACKUP_SUFFIX
		is_our_link "$full" && continue
		is_self "$full" && continue
		exists "$full" || continue
		((FORCE)) && continue
		owner=$(pkg_owner sys "$p")
		if [[ -n $owner ]]; then
			die 73 "$full belongs to package $owner; use --force to replace it anyway (it is moved to $backup)"
		fi
		if exists "$backup"; then
			die 73 "$full exists and $backup already exists; move one of them away, or use --force to replace $full without a new backup"
		fi
	done
}

link_system_paths() {
	local p full backup
	for p in "${SYSTEM_PATHS[@]}"; do
		full=$SYSROOT$p
		backup=$full$BACKUP_SUFFIX
		if is_our_link "$full"; then
			PRESENT+=("$full -> $BIN")
			continue
		fi
		if is_self "$full"; then
			NOTES+=("$full is the installed binary itself: not linked")
			continue
		fi
		if exists "$full"; then
			if exists "$backup"; then
				rm -f -- "$full"
				DONE+=("removed $full ($backup already existed)")
			else
				mv -T -- "$full" "$backup"
				DONE+=("moved $full to $backup")
			fi
		fi
		mkdir -p -- "$(dirname -- "$full")"
		ln -sT -- "$BIN" "$full"
		DONE+=("linked $full -> $BIN")
	done
}

# ---------------------------------------------------------------- timer

readonly UNIT_DIR=$SYSROOT/etc/systemd/system
readonly CRON_DIR=$SYSROOT/etc/cron.d

has_systemd() { [[ -z $SYSROOT && -d /run/systemd/system ]]; }

# write_if_changed FILE MODE: stdin becomes FILE unless it already is
write_if_changed() {
	local f=$1 mode=$2 tmp
	tmp=$(mktemp)
	cat >"$tmp"
	if [[ -f $f ]] && cmp -s "$tmp" "$f"; then
		rm -f -- "$tmp"
		PRESENT+=("$f")
		return 0
	fi
	mkdir -p -- "$(dirname -- "$f")"
	install -m "$mode" -- "$tmp" "$f"
	rm -f -- "$tmp"
	DONE+=("wrote $f")
}

install_timer() {
	local user=$1
	is_root || [[ -n $SYSROOT ]] || die 77 "--timer needs root"
	[[ $user =~ ^[a-z_][a-z0-9_.-]*$ ]] || usage_error "--timer: not a user name: $user"
	if has_systemd; then
		write_if_changed "$UNIT_DIR/outbox-flush@.service" 0644 <<EOF
[Unit]
Description=outbox: send %i's queued mail (sendmail -q)

[Service]
Type=oneshot
User=%i
ExecStart=$BIN -q
SuccessExitStatus=75
EOF
		write_if_changed "$UNIT_DIR/outbox-flush@.timer" 0644 <<EOF
[Unit]
Description=outbox: flush %i's mail queue every 5 minutes

[Timer]
OnBootSec=1min
OnUnitActiveSec=5min

[Install]
WantedBy=timers.target
EOF
		systemctl daemon-reload
		if systemctl is-enabled --quiet "outbox-flush@$user.timer" 2>/dev/null; then
			PRESENT+=("outbox-flush@$user.timer (enabled)")
		else
			systemctl enable --now "outbox-flush@$user.timer"
			DONE+=("enabled outbox-flush@$user.timer")
		fi
		return 0
	fi
	write_if_changed "$CRON_DIR/outbox-$user" 0644 <<EOF
# outbox: send $user's queued mail every 5 minutes (installed by install.sh --timer)
*/5 * * * * $user $BIN -q >/dev/null 2>&1
EOF
}

uninstall_timers() {
	local f u
	for f in "$CRON_DIR"/outbox-*; do
		[[ -f $f ]] || continue
		rm -f -- "$f"
		DONE+=("removed $f")
	done
	if has_systemd && [[ -f $UNIT_DIR/outbox-flush@.timer ]]; then
		for u in $(systemctl list-units --all --plain --no-legend 'outbox-flush@*.timer' | awk '{print $1}'); do
			systemctl disable --now "$u" && DONE+=("disabled $u")
		done
	fi
	for f in "$UNIT_DIR/outbox-flush@.service" "$UNIT_DIR/outbox-flush@.timer"; do
		[[ -f $f ]] || continue
		rm -f -- "$f"
		DONE+=("removed $f")
	done
}

# ---------------------------------------------------------------- uninstall

uninstall() {
	local owner f link
	if exists "$BIN"; then
		owner=$(pkg_owner real "$BIN")
		if [[ -n $owner ]] && ! ((FORCE)); then
			die 73 "$BIN belongs to package $owner, not outbox; not removing it (use --force if outbox really replaced it)"
		fi
		rm -f -- "$BIN"
		DONE+=("removed $BIN")
	else
		PRESENT+=("$BIN")
	fi
	for f in "$PREFIX/sbin/mailq" "$PREFIX/sbin/newaliases"; do
		if [[ -L $f ]]; then
			link=$(readlink -- "$f")
			if [[ ${link##*/} == sendmail ]]; then
				rm -f -- "$f"
				DONE+=("removed $f")
			else
				NOTES+=("$f points at $link, not sendmail: left alone")
			fi
		elif [[ -e $f ]]; then
			NOTES+=("$f is not a link to sendmail: left alone")
		fi
	done
	if exists "$MAN"; then
		rm -f -- "$MAN"
		DONE+=("removed $MAN")
	fi

	local p full backup
	for p in "${SYSTEM_PATHS[@]}"; do
		full=$SYSROOT$p
		backup=$full$BACKUP_SUFFIX
		if is_our_link "$full"; then
			rm -f -- "$full"
			DONE+=("removed link $full")
		fi
		if exists "$backup"; then
			if exists "$full"; then
				NOTES+=("$full is not an outbox link: $backup left in place")
			else
				mv -T -- "$backup" "$full"
				DONE+=("restored $full from $backup")
			fi
		fi
	done
	# Restore a backup of PREFIX/sbin/sendmail made with --force (when PREFIX
	# is not /usr, whose backup the loop above already handled).
	backup=$BIN$BACKUP_SUFFIX
	if exists "$backup" && ! exists "$BIN"; then
		mv -T -- "$backup" "$BIN"
		DONE+=("restored $BIN from $backup")
	fi

	NOTES+=("kept $SYSROOT/etc/outbox.conf and the spool $SYSROOT/var/spool/outbox (and per-user spools): queued mail is never deleted by the uninstaller")
}

# ---------------------------------------------------------------- main

summary() {
	local s
	if ((${#DONE[@]})); then
		say "done:"
		for s in "${DONE[@]}"; do say "  $s"; done
	else
		say "nothing changed"
	fi
	if ((${#PRESENT[@]})); then
		if ((UNINSTALL)); then say "already absent:"; else say "already present:"; fi
		for s in "${PRESENT[@]}"; do say "  $s"; done
	fi
	if ((${#NOTES[@]})); then
		say "notes:"
		for s in "${NOTES[@]}"; do say "  $s"; done
	fi
}

if ((UNINSTALL)); then
	uninstall
	uninstall_timers
	summary
	exit 0
fi

# Refusals first, so nothing is half done.
if exists "$BIN" && ! ((FORCE)); then
	owner=$(pkg_owner real "$BIN")
	[[ -z $owner ]] ||
		die 73 "$BIN belongs to package $owner; use another --prefix, or --force to replace it (it is moved to $BIN$BACKUP_SUFFIX)"
fi
if ((SYSTEM)); then
	check_system_paths
fi

if ((NODEPS)); then
	NOTES+=("--no-deps: build and test packages not checked")
else
	install_deps
fi
build_and_install
setup_spool
install_conf
if ((SYSTEM)); then
	link_system_paths
fi
for u in "${TIMER_USERS[@]}"; do
	install_timer "$u"
done
summary
