# shellcheck shell=bash
# bench/lib.sh: the shell functions bench/run.sh and bench/load.sh share. Set PROG (the prefix of
# error messages) before sourcing it.

# die prints its arguments as one error line and exits 1.
die() {
	echo "$PROG: $*" >&2
	exit 1
}
step() { printf '\n== %s\n' "$*"; }

as_root() {
	if [[ $(id -u) == 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		die "need root to run: $* (install it yourself, or run as root)"
	fi
}
apt_updated=
# install PACKAGE installs a Debian package with apt-get.
install() {
	command -v apt-get >/dev/null || die "apt-get is not available: install the $1 package yourself"
	echo "installing $1"
	if [[ -z $apt_updated ]]; then
		as_root apt-get update -qq
		apt_updated=1
	fi
	as_root apt-get install -y -qq "$1" >/dev/null
}
# need COMMAND PACKAGE installs PACKAGE when COMMAND is missing.
need() {
	command -v "$1" >/dev/null && return
	install "$2"
	command -v "$1" >/dev/null || die "installing $2 did not provide $1"
}

