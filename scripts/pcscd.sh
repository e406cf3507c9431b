#!/bin/sh
# pcscd.sh: make sure pcscd (PC/SC daemon) is running with the vsmartcard
# virtual reader driver (vpcd), for the PIV tests. Idempotent: if the daemon
# already answers on its socket, nothing is done.
#
# On Debian pcscd is normally socket-activated by systemd; containers and CI
# machines without systemd need it started by hand, which is what this does.
# The vpcd reader configuration comes from the Debian package
# vsmartcard-vpcd (/etc/reader.conf.d/vpcd): one DEVICENAME line whose
# CHANNELID 0x8C7B (35963) is the TCP port the card side connects to on
# 127.0.0.1; the driver creates two slots, "Virtual PCD 00 00" on 35963 and
# "Virtual PCD 00 01" on 35964.
#
# Usage: scripts/pcscd.sh   (as root; needs pcscd vsmartcard-vpcd)
set -eu

SOCK=/run/pcscd/pcscd.comm

if ! command -v pcscd >/dev/null 2>&1; then
	echo "pcscd.sh: pcscd is not installed (apt-get install pcscd vsmartcard-vpcd libpcsclite-dev)" >&2
	exit 1
fi
if [ ! -e /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || [ ! -e /etc/reader.conf.d/vpcd ]; then
	echo "pcscd.sh: the vpcd reader driver is not installed (apt-get install vsmartcard-vpcd)" >&2
	exit 1
fi

running() {
	# A live daemon holds the socket; a stale socket file is left behind by a
	# killed one, so also look for the process.
	[ -S "$SOCK" ] && pidof pcscd >/dev/null 2>&1
}

if running; then
	exit 0
fi

# A stale socket or pid file from a killed daemon makes pcscd refuse to start.
rm -f "$SOCK" /run/pcscd/pcscd.pid
mkdir -p /run/pcscd
LOG=${PCSCD_LOG:-/tmp/pcscd.log}
# pcscd daemonises itself (forks) when started without --foreground.
pcscd >>"$LOG" 2>&1 || true

i=0
while [ $i -lt 100 ]; do
	if running; then
		exit 0
	fi
	i=$((i + 1))
	sleep 0.1
done
echo "pcscd.sh: pcscd did not come up (no $SOCK after 10s); see $LOG" >&2
exit 1
