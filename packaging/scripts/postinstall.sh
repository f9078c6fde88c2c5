#!/bin/sh
# After install or upgrade: let the service's dynamic user (in the docker
# group) read the config, then enable and start the service, or restart it
# on an upgrade. deb passes "configure" and, on an upgrade, the old
# version; rpm passes 1 on an install and 2 on an upgrade.
set -e

if getent group docker >/dev/null 2>&1; then
	chgrp docker /etc/portwarden/portwarden.yaml
else
	echo "portwarden: no docker group yet; install the engine, then:" \
		"chgrp docker /etc/portwarden/portwarden.yaml" >&2
fi

upgrade=no
case "$1" in
configure) [ -n "$2" ] && upgrade=yes ;;
2) upgrade=yes ;;
esac

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload
	journalctl --update-catalog ||
		echo "portwarden: journalctl --update-catalog failed; run it by hand" >&2
	if [ "$upgrade" = yes ]; then
		systemctl try-restart portwarden.service
	else
		systemctl enable --now portwarden.service
	fi
fi
