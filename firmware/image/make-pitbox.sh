#!/usr/bin/env bash
# Turn a fresh Raspberry Pi OS Lite (bookworm, 64-bit) into a pitbox. Run as root on the Pi
# (or in a chroot of the image) from a checkout of this repository:
#
#   sudo PITBOX_BUNDLE=pitbox-0.2.0.pbxupd PITBOX_FLEET_KEY=fleet-update.pub.pem \
#        PITBOX_BROKER_HOST=mqtt.example.org firmware/image/make-pitbox.sh
#
# Safe to run again: every step checks before it changes anything. See firmware/image/README.md.
set -euo pipefail

: "${PITBOX_BUNDLE:?the signed bundle to install, e.g. pitbox-0.2.0.pbxupd}"
: "${PITBOX_FLEET_KEY:?the fleet Ed25519 public key, fleet-update.pub.pem}"
: "${PITBOX_BROKER_HOST:?the broker the boxes publish to}"
PITBOX_BROKER_PORT="${PITBOX_BROKER_PORT:-8883}"
PITBOX_PROJECT="${PITBOX_PROJECT:-pitbox}"
PITBOX_UPDATE_URL="${PITBOX_UPDATE_URL:-}"
PITBOX_HOSTNAME="${PITBOX_HOSTNAME:-pitbox}"
SRC="$(cd "$(dirname "$0")/../.." && pwd)"
ROOT=/opt/pitbox

say() { printf '== %s\n' "$*"; }
[ "$(id -u)" = 0 ] || { echo "make-pitbox: run as root (sudo)" >&2; exit 1; }

say "packages: python3-venv, pip (slot installs), avahi (pitbox.local), lgpio (LEDs)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq python3-venv python3-pip avahi-daemon liblgpio1 >/dev/null

say "user pitbox: no login, no home, in group gpio for the LEDs"
getent group gpio >/dev/null || groupadd --system gpio
id pitbox >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /var/lib/pitbox \
    --shell /usr/sbin/nologin --groups gpio pitbox

say "config in /etc/pitbox (read-only at run time; state lives in /var/lib/pitbox)"
install -d -m 0755 /etc/pitbox
install -m 0644 "$PITBOX_FLEET_KEY" /etc/pitbox/fleet-update.pub.pem
if [ ! -e /etc/pitbox/pitbox.toml ]; then
  cat > /etc/pitbox/pitbox.toml <<TOML
# pitbox on this box. The device id and key come from pitbox-provision (LoadCredential).
[device]
project = "$PITBOX_PROJECT"
key_path = "/var/lib/pitbox/device_key.pem"

[outbox]
path = "/var/lib/pitbox/outbox.sqlite"

[uplink]
host = "$PITBOX_BROKER_HOST"
port = $PITBOX_BROKER_PORT
tls = true

[leds]
factory = "lgpio"
TOML
fi
if [ -n "$PITBOX_UPDATE_URL" ]; then
  printf 'PITBOX_UPDATE_URL=%s\n' "$PITBOX_UPDATE_URL" > /etc/pitbox/update.env
fi

say "slots: install the bundle into $ROOT (verified with the fleet key, like any update)"
if [ ! -e "$ROOT/current" ]; then
  boot=$(mktemp -d)
  python3 -m venv "$boot/venv"
  "$boot/venv/bin/pip" install -q "$SRC"
  "$boot/venv/bin/pitbox" update --bundle "$PITBOX_BUNDLE" --root "$ROOT" \
      --public-key /etc/pitbox/fleet-update.pub.pem --no-restart
  rm -rf "$boot"
fi
# $ROOT/good (the slot boot-time recovery runs from): set by the install above; a box installed
# by an older script gets it here, from the slot that runs (no update is pending on a fresh box).
"$ROOT/current/bin/pitbox" update --recover --no-restart --root "$ROOT" || [ $? = 75 ]
install -m 0644 "$SRC/README.md" "$ROOT/README.md"
# `pitbox` on every shell's PATH, always the active slot (the symlink follows `current`).
ln -sfn "$ROOT/current/bin/pitbox" /usr/local/bin/pitbox

say "systemd units: gateway (+ hardening), first-boot provisioning, boot-time update recovery, nightly update timer"
install -m 0644 "$SRC"/systemd/pitbox-*.service "$SRC"/systemd/pitbox-update.timer /etc/systemd/system/
install -d -m 0755 /etc/systemd/system/pitbox-gateway.service.d
install -m 0644 "$SRC"/systemd/pitbox-gateway.service.d/hardening.conf \
    /etc/systemd/system/pitbox-gateway.service.d/
# 20 rigs at 60 Hz burst ~8 MB/s of UDP: let the capture socket have the 4 MB buffer it asks
# for (the default cap is ~208 KB; the gateway logs a warning when it gets less).
install -d -m 0755 /etc/sysctl.d
printf 'net.core.rmem_max = 4194304\n' > /etc/sysctl.d/60-pitbox.conf
sysctl -q -p /etc/sysctl.d/60-pitbox.conf || true

# The Pi's hardware watchdog resets a hung box; bcm2835_wdt takes at most ~15 s.
install -d -m 0755 /etc/systemd/system.conf.d
printf '[Manager]\nRuntimeWatchdogSec=14s\n' > /etc/systemd/system.conf.d/pitbox-watchdog.conf
systemctl daemon-reload
systemctl enable pitbox-provision.service pitbox-update-recover.service pitbox-gateway.service \
    pitbox-update.timer avahi-daemon

say "hostname $PITBOX_HOSTNAME.local (avahi mDNS)"
if [ "$(cat /etc/hostname)" != "$PITBOX_HOSTNAME" ]; then
  old=$(cat /etc/hostname)
  echo "$PITBOX_HOSTNAME" > /etc/hostname
  sed -i "s/\b$old\b/$PITBOX_HOSTNAME/g" /etc/hosts
fi

say "SD card care: journal in RAM (capped), no atime updates"
install -d -m 0755 /etc/systemd/journald.conf.d
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\n' > /etc/systemd/journald.conf.d/pitbox.conf
grep -q 'noatime' /etc/fstab || sed -i -E 's#(\s/\s+ext4\s+)defaults#\1defaults,noatime#' /etc/fstab

say "done: reboot; then read the registration line with: journalctl -u pitbox-provision"
