#!/usr/bin/env bash
# Downloads a Debian 11 (bullseye, glibc 2.31) userland for the tests that
# run programs of an older glibc under the shim: libc6 and a few small
# programs that need nothing else (dash, netcat-traditional). The .deb files
# go to /var/cache/slim-testdata/bullseye; tests unpack them with dpkg-deb.
# apt runs with a private source list, package lists and status, so the
# machine's own apt configuration is not touched. Idempotent.
set -euo pipefail

dest=/var/cache/slim-testdata/bullseye
packages=(libc6 libgcc-s1 gcc-10-base libcrypt1 dash netcat-traditional)

have_all() {
  for p in "${packages[@]}"; do
    compgen -G "$dest/${p}_*.deb" >/dev/null || return 1
  done
}
have_all && exit 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$dest"
touch "$work/status"
# The machine's mirror, bullseye instead of its own suite.
uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${uri:-http://deb.debian.org/debian} bullseye main" >"$work/sources.list"
apt_opts=(-q -o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=-
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "Dir::State::status=$work/status"
  -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update >/dev/null
(cd "$dest" && apt-get "${apt_opts[@]}" download "${packages[@]}" >/dev/null)
have_all || { echo "fetch-old-glibc: some packages are missing in $dest" >&2; exit 1; }
echo "fetch-old-glibc: Debian 11 packages in $dest"
