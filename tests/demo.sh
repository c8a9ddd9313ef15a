#!/usr/bin/env bash
# make demo - outbox's main job end to end on loopback, for a newcomer with
# no relay of their own: start the test relay (STARTTLS + AUTH, throwaway
# CA), send one message through ./sendmail, show what the relay received,
# then stop the relay and remove everything.
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

work=$(mktemp -d /tmp/outbox-demo.XXXXXX)
relay_pid=
cleanup() {
	[ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null && wait "$relay_pid" 2>/dev/null
	rm -rf -- "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. start a test relay on 127.0.0.1 (STARTTLS required, AUTH PLAIN/LOGIN as alice)"
/usr/bin/python3 tests/relay.py --certdir "$work/certs" --user alice --password s3cret \
	>"$work/relay.out" 2>"$work/relay.err" &
relay_pid=$!
for _ in $(seq 50); do
	grep -q '^listening' "$work/relay.out" 2>/dev/null && break
	sleep 0.1
done
port=$(awk '/^listening/ {print $3; exit}' "$work/relay.out")
[ -n "$port" ] || { cat "$work/relay.err" >&2; exit 1; }
echo "relay listening on port $port"

step "2. a configuration for it (mode 0600: it holds a password)"
cat >"$work/outbox.conf" <<CONF
[relay]
host = 127.0.0.1
port = $port
tls = starttls
ca_file = $work/certs/ca.pem
user = alice
password = s3cret

[mail]
from = demo@example.com
domain = example.com

[queue]
dir = $work/spool
CONF
chmod 600 "$work/outbox.conf"
sed 's/^password = .*/password = (hidden)/' "$work/outbox.conf"

step "3. send: printf 'Subject: hello\\n\\nHello from outbox.\\n' | ./sendmail -t -i you@example.org"
printf 'To: you@example.org\nSubject: hello\n\nHello from outbox.\n' |
	./sendmail -C "$work/outbox.conf" -v -t -i
echo "exit status: $?"

step "4. what the relay received"
sleep 0.3
sed -n '/^message /,$p' "$work/relay.out"

step "5. the queue is empty again: ./sendmail -bp"
./sendmail -C "$work/outbox.conf" -bp

step "done: relay stopped, $work removed"
