#!/bin/sh
# Before removal (not an upgrade): stop and disable the service. deb
# passes "remove"; rpm passes 0 when the last version goes.
set -e
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now portwarden.service
	fi
	;;
esac
