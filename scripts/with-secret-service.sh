#!/usr/bin/env bash
# Run a command against a real, unlocked Secret Service (gnome-keyring) on a private D-Bus session.
#
#   bash scripts/with-secret-service.sh .venv/bin/python -m pytest tests/keyring
#
# The keyring daemon keeps its files in a throwaway directory that is removed afterwards; only the
# daemon sees that directory as HOME, so the command keeps the caller's HOME, caches and config.
# Nothing touches the caller's own keyring or session bus. Exits with the command's status.
# Needs gnome-keyring and dbus: `bash scripts/system-deps.sh test` installs them.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
fi
for tool in dbus-run-session gnome-keyring-daemon; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$0: $tool not found; bash scripts/system-deps.sh test installs it" >&2
        exit 127
    fi
done

keyring_home="$(mktemp -d "${TMPDIR:-/tmp}/modeldesk-keyring.XXXXXX")"
trap 'rm -rf "$keyring_home"' EXIT

status=0
MODELDESK_KEYRING_HOME="$keyring_home" dbus-run-session -- sh -c '
    set -e
    home="$MODELDESK_KEYRING_HOME"
    unset MODELDESK_KEYRING_HOME
    mkdir -p "$home/share" "$home/config" "$home/run"
    chmod 700 "$home/run"
    # The password only unlocks (creates) the throwaway login keyring.
    exports="$(printf %s modeldesk-throwaway |
        HOME="$home" XDG_DATA_HOME="$home/share" XDG_CONFIG_HOME="$home/config" \
        XDG_RUNTIME_DIR="$home/run" gnome-keyring-daemon --unlock --components=secrets)"
    set -a
    eval "$exports"
    set +a
    # --unlock can return before the daemon owns its bus name, and a client calling then would
    # make D-Bus activate a second daemon with the caller HOME: wait for the name first.
    name=org.freedesktop.secrets
    if command -v gdbus >/dev/null 2>&1; then
        gdbus wait --session --timeout 10 "$name" || registered=no
    else
        registered=no
        tries=0
        while [ "$tries" -lt 100 ]; do
            if dbus-send --session --print-reply --dest=org.freedesktop.DBus \
                /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner "string:$name" |
                grep -q "boolean true"; then
                registered=yes
                break
            fi
            tries=$((tries + 1))
            sleep 0.1
        done
    fi
    if [ "${registered:-yes}" = no ]; then
        echo "with-secret-service: gnome-keyring-daemon did not register $name within 10 s" >&2
        exit 125
    fi
    exec "$@"
' with-secret-service "$@" || status=$?
exit "$status"
