#!/usr/bin/env bash
# The system packages ModelDesk needs, checked in well under a second and installed with the
# distribution's package manager (apt-get on Debian/Ubuntu, dnf on Fedora; through sudo when not
# root) when something is missing. `make test`, `make package` and `.ci/run` install; `make run`
# only checks and says how to get what Qt lacks.
#
#   scripts/system-deps.sh [--check | --dry-run] PROFILE...
#
# Profiles: run (a venv, the libraries Qt's X11 platform plugin loads, a font), build (run plus the
# llama-server compiler tool chain), test (build plus Xvfb and xdotool, a Secret Service, the
# desktop-file validators), package (run plus binutils for PyInstaller).
#   --check    print what is missing and the command that installs it; exit 2 if anything is
#   --dry-run  print what is missing and the commands an install would run; run nothing
# MODELDESK_SYSTEM_DEPS=check turns an install into --check (for machines where make may not sudo).
# A probe looks for the command, library or module itself, so a tool installed some other way
# counts as present. Without apt-get or dnf it prints the exact list and stops. Linux only.
set -euo pipefail

mode=install
profiles=()
for arg in "$@"; do
    case "$arg" in
        --check) mode=check ;;
        --dry-run) mode=dry-run ;;
        run | build | test | package) profiles+=("$arg") ;;
        *)
            echo "usage: $0 [--check | --dry-run] {run|build|test|package}..." >&2
            exit 64
            ;;
    esac
done
[ ${#profiles[@]} -gt 0 ] || profiles=(test)
[ "$mode" = install ] && [ "${MODELDESK_SYSTEM_DEPS:-}" = check ] && mode=check

if [ "$(uname -s)" != Linux ]; then
    exit 0 # macOS and Windows ship what Qt needs; the suite's system tools are Linux ones
fi

python=${PYTHON:-python3}
py_name=$(basename "$python")
venv_deb=python3-venv
# python3.12 (not the distribution's default python3) has its own venv package on Debian.
[ "$py_name" != python3 ] && venv_deb="$py_name-venv"

# One line a requirement: probe  Debian package  Fedora package  what it is for.
# Probes: cmd:NAME (on PATH), lib:SONAME (in the linker cache), py:MODULE (importable by $PYTHON),
# font:any (a TrueType/OpenType file under /usr/share/fonts).
req_run=(
    "cmd:$py_name            python3              python3                 Python to make the app's virtual environment"
    "py:ensurepip            $venv_deb            python3                 python -m venv (pip inside the environment)"
    "lib:libxcb-cursor.so.0  libxcb-cursor0       xcb-util-cursor         Qt's X11 platform plugin (cursors)"
    "lib:libxcb-icccm.so.4   libxcb-icccm4        xcb-util-wm             Qt's X11 platform plugin (window hints)"
    "lib:libxcb-image.so.0   libxcb-image0        xcb-util-image          Qt's X11 platform plugin (images)"
    "lib:libxcb-keysyms.so.1 libxcb-keysyms1      xcb-util-keysyms        Qt's X11 platform plugin (keyboard)"
    "lib:libxcb-render-util.so.0 libxcb-render-util0 xcb-util-renderutil  Qt's X11 platform plugin (rendering)"
    "lib:libxcb-randr.so.0   libxcb-randr0        libxcb                  Qt's X11 platform plugin (screens)"
    "lib:libxcb-shape.so.0   libxcb-shape0        libxcb                  Qt's X11 platform plugin (window shapes)"
    "lib:libxcb-shm.so.0     libxcb-shm0          libxcb                  Qt's X11 platform plugin (shared memory)"
    "lib:libxcb-sync.so.1    libxcb-sync1         libxcb                  Qt's X11 platform plugin (sync)"
    "lib:libxcb-xfixes.so.0  libxcb-xfixes0       libxcb                  Qt's X11 platform plugin (xfixes)"
    "lib:libxcb-xkb.so.1     libxcb-xkb1          libxcb                  Qt's X11 platform plugin (keyboard)"
    "lib:libxcb-util.so.1    libxcb-util1         xcb-util                Qt's X11 platform plugin (helpers)"
    "lib:libX11-xcb.so.1     libx11-xcb1          libX11-xcb              Qt's X11 platform plugin (Xlib)"
    "lib:libxkbcommon-x11.so.0 libxkbcommon-x11-0 libxkbcommon-x11        Qt's X11 platform plugin (keymaps)"
    "lib:libxkbcommon.so.0   libxkbcommon0        libxkbcommon            Qt (keymaps)"
    "lib:libEGL.so.1         libegl1              libglvnd-egl            Qt (OpenGL loader)"
    "lib:libGL.so.1          libgl1               libglvnd-glx            Qt (OpenGL)"
    "lib:libfontconfig.so.1  libfontconfig1       fontconfig              Qt (fonts)"
    "lib:libdbus-1.so.3      libdbus-1-3          dbus-libs               Qt (D-Bus)"
    "font:any                fonts-dejavu-core    dejavu-sans-fonts       text in the window (Qt ships no font)"
)
req_build=(
    "cmd:make                make                 make                    the project's Makefile"
    "cmd:c++                 g++                  gcc-c++                 compiling llama-server for the tests"
    "cmd:cmake               cmake                cmake                   compiling llama-server for the tests"
    "cmd:ninja               ninja-build          ninja-build             compiling llama-server for the tests"
)
req_test=(
    "cmd:xvfb-run            xvfb                 xorg-x11-server-Xvfb    the end-to-end tests' virtual X display"
    "cmd:xauth               xauth                xorg-x11-xauth          the end-to-end tests' virtual X display"
    "cmd:xdotool             xdotool              xdotool                 the end-to-end tests' keyboard and mouse"
    "cmd:dbus-run-session    dbus                 dbus-daemon             a private D-Bus session for the keyring tests"
    "cmd:dbus-send           dbus                 dbus-tools              a private D-Bus session for the keyring tests"
    "cmd:gnome-keyring-daemon gnome-keyring       gnome-keyring           a real Secret Service for the keyring tests"
    "cmd:desktop-file-validate desktop-file-utils desktop-file-utils      validating the .desktop file in the tests"
    "cmd:appstreamcli        appstream            appstream               validating the AppStream file in the tests"
)
req_package=(
    "cmd:objdump             binutils             binutils                PyInstaller reads the libraries it bundles"
    "cmd:objcopy             binutils             binutils                PyInstaller writes its boot loader"
)

wanted=()
for profile in "${profiles[@]}"; do
    case "$profile" in
        run) wanted+=("${req_run[@]}") ;;
        build) wanted+=("${req_run[@]}" "${req_build[@]}") ;;
        test) wanted+=("${req_run[@]}" "${req_build[@]}" "${req_test[@]}") ;;
        package) wanted+=("${req_run[@]}" "${req_package[@]}") ;;
    esac
done

linker_cache=""
have_lib() {
    if [ -z "$linker_cache" ]; then
        linker_cache=$(PATH="$PATH:/sbin:/usr/sbin" ldconfig -p 2>/dev/null || true)
        [ -n "$linker_cache" ] || linker_cache=" "
    fi
    if [ "$linker_cache" != " " ]; then
        awk -v so="$1" '$1 == so { found = 1 } END { exit !found }' <<<"$linker_cache"
    else
        compgen -G "/lib*/$1" >/dev/null || compgen -G "/usr/lib*/$1" >/dev/null ||
            compgen -G "/lib*/*/$1" >/dev/null || compgen -G "/usr/lib*/*/$1" >/dev/null
    fi
}

present() {
    local kind=${1%%:*} name=${1#*:}
    case "$kind" in
        cmd) command -v "$name" >/dev/null 2>&1 ;;
        lib) have_lib "$name" ;;
        py) command -v "$python" >/dev/null 2>&1 && "$python" -c "import $name" >/dev/null 2>&1 ;;
        font) [ -n "$(find /usr/share/fonts /usr/local/share/fonts \( -iname '*.ttf' -o -iname '*.otf' \) \
                  -print -quit 2>/dev/null)" ] ;;
    esac
}

manager=none
if command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
    manager=apt
elif command -v dnf >/dev/null 2>&1; then
    manager=dnf
fi

lib_suffix=""
case "$(uname -m)" in *64) lib_suffix="(64bit)" ;; esac
declare -A seen_probe=() seen_pkg=()
missing=()   # "probe|deb|rpm|why", one entry a probe
packages=()  # the package names for this machine's manager, once each
checked=0
for line in "${wanted[@]}"; do
    read -r probe deb rpm why <<<"$line"
    [ -n "${seen_probe[$probe]:-}" ] && continue
    seen_probe[$probe]=1
    checked=$((checked + 1))
    present "$probe" && continue
    missing+=("$probe|$deb|$rpm|$why")
    case "$manager" in
        apt) pkg=$deb ;;
        # dnf installs by what a package provides, so a renamed Fedora package is still found.
        dnf) case "$probe" in
                cmd:*) pkg="/usr/bin/${probe#cmd:}" ;;
                lib:*) pkg="${probe#lib:}()$lib_suffix" ;;
                *) pkg=$rpm ;;
            esac ;;
        *) pkg=$deb ;;
    esac
    if [ -z "${seen_pkg[$pkg]:-}" ]; then
        seen_pkg[$pkg]=1
        packages+=("$pkg")
    fi
done

label="${profiles[*]}"
if [ ${#missing[@]} -eq 0 ]; then
    echo "System packages for ${label// /, }: all $checked present."
    exit 0
fi

describe() {
    local entry probe deb rpm why
    for entry in "${missing[@]}"; do
        IFS='|' read -r probe deb rpm why <<<"$entry"
        case "$manager" in
            apt) printf '  %-22s %s (%s)\n' "$deb" "$why" "$probe" ;;
            dnf) printf '  %-22s %s (%s)\n' "$rpm" "$why" "$probe" ;;
            *) printf '  %-28s Debian/Ubuntu: %-20s Fedora: %-22s %s\n' "$probe" "$deb" "$rpm" "$why" ;;
        esac
    done
}

sudo=()
[ "$(id -u)" -ne 0 ] && sudo=(sudo)
update=()
case "$manager" in
    apt)
        update=(apt-get update -qq)
        install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}")
        ;;
    dnf)
        install=(dnf install -y "${packages[@]}")
        ;;
    *)
        echo "ModelDesk needs these system tools and libraries, and this machine has neither apt-get nor dnf" >&2
        echo "to install them; install them with your package manager, then run make again:" >&2
        describe >&2
        exit 2
        ;;
esac

# A command as the user would type it (dnf's "lib.so.0()(64bit)" needs quotes in a shell).
shown() {
    local word out=""
    for word in "$@"; do
        case "$word" in *[\(\)]*) word="'$word'" ;; esac
        out+="$word "
    done
    echo "${out% }"
}
say_commands() {
    [ ${#update[@]} -eq 0 ] || echo "  $(shown "${sudo[@]}" "${update[@]}")"
    echo "  $(shown "${sudo[@]}" "${install[@]}")"
}

echo "ModelDesk (${label// /, }) needs ${#packages[@]} system package(s) that this machine lacks:" >&2
describe >&2
if [ "$mode" = check ]; then
    echo "Install them with:" >&2
    say_commands >&2
    echo "(or: bash scripts/system-deps.sh ${label})" >&2
    exit 2
fi
if [ "$mode" = dry-run ]; then
    echo "An install would run:"
    say_commands
    exit 0
fi
if [ ${#sudo[@]} -gt 0 ] && ! command -v sudo >/dev/null 2>&1; then
    sudo=()
    echo "sudo is not available: as root, run" >&2
    say_commands >&2
    exit 2
fi
echo "Installing them now:" >&2
say_commands >&2
[ ${#update[@]} -eq 0 ] || "${sudo[@]}" "${update[@]}"
"${sudo[@]}" "${install[@]}"

# What the install did not bring (a renamed package, a probe no package satisfies) is said here,
# before any long build starts.
still=()
for entry in "${missing[@]}"; do
    IFS='|' read -r probe _ <<<"$entry"
    linker_cache=""
    present "$probe" || still+=("$probe")
done
if [ ${#still[@]} -gt 0 ]; then
    echo "Still missing after the install: ${still[*]}" >&2
    exit 1
fi
echo "System packages for ${label// /, }: installed ${packages[*]}."
