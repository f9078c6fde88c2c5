#!/bin/sh
# After removal: forget the unit; on a purge (deb), delete the state, the
# undelivered alerts included. rpm has no purge: its state stays.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload
fi
if [ "$1" = purge ]; then
	rm -rf /var/lib/portwarden /var/lib/private/portwarden
fi
