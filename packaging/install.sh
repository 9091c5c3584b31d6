#!/bin/sh
# Installs a built inboxgrove binary as a systemd service on Debian/Ubuntu.
# Usage: sudo packaging/install.sh target/release/inboxgrove
set -eu
binary=${1:-target/release/inboxgrove}
here=$(dirname "$0")
install -m 0755 "$binary" /usr/bin/inboxgrove
id inboxgrove >/dev/null 2>&1 || useradd --system --home /var/lib/inboxgrove --shell /usr/sbin/nologin inboxgrove
install -d -o inboxgrove -g inboxgrove -m 0750 /var/lib/inboxgrove
install -d -m 0755 /etc/inboxgrove
if [ ! -f /etc/inboxgrove/config.toml ]; then
    sed -e 's|^data_dir = .*|data_dir = "/var/lib/inboxgrove"|' "$here/../config.example.toml" > /etc/inboxgrove/config.toml
    echo "Edit /etc/inboxgrove/config.toml (hostname, public_ips, listen addresses), then:"
fi
install -m 0644 "$here/inboxgrove.service" /etc/systemd/system/inboxgrove.service
systemctl daemon-reload
echo "systemctl enable --now inboxgrove && journalctl -u inboxgrove | grep setup"
