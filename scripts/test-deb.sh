#!/usr/bin/env bash
# Checks the Debian package (issue 17): builds it (scripts/build-deb.sh) and checks its
# metadata (dpkg-deb -I), its files and conffiles (dpkg-deb -c), the hardening of its systemd
# unit, the unit with `systemd-analyze verify` (any warning fails) and its exposure score
# (`systemd-analyze security --offline`), and that the packaged binary, run with the
# package's configuration, serves /readyz and the widget built into it (/embed.js, the wasm).
#
# Time: by default the suite packages the dev-profile binary it already built for the e2e step
# (`--no-build`: seconds, where a `server`-profile build takes minutes on 2 cores); everything
# checked here is the same for both. DEB_PROFILE=server checks a release build instead
# (scripts/build-deb.sh's default, what is shipped).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
profile=${DEB_PROFILE:-dev}
fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }
ok() { echo "test-deb: ok: $*"; }

if [ "$profile" = dev ]; then
  cargo build --quiet -p image-chat-server
  # cargo-deb warns that dev builds are not for releases: this one is only inspected, so its
  # stderr is shown only if the build fails.
  if ! deb=$(bash scripts/build-deb.sh --profile dev --no-build --fast 2> "${TMPDIR:-/tmp}/test-deb.$$.err"); then
    cat "${TMPDIR:-/tmp}/test-deb.$$.err" >&2
    rm -f "${TMPDIR:-/tmp}/test-deb.$$.err"
    fail "cargo-deb failed"
  fi
  rm -f "${TMPDIR:-/tmp}/test-deb.$$.err"
else
  deb=$(bash scripts/build-deb.sh --profile "$profile")
fi
[ -f "$deb" ] || fail "no package built ($deb)"
ok "built $deb ($(du -h "$deb" | cut -f1))"
work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Metadata.
info=$(dpkg-deb -I "$deb")
for field in "Package: image-chat-server" "Section: net" "Depends: .*libc6" "Depends: .*adduser"; do
  grep -Eq "^ $field" <<<"$info" || fail "dpkg-deb -I has no '$field':"$'\n'"$info"
done
ok "control fields"

# Files, modes and conffiles.
listing=$(dpkg-deb -c "$deb")
expect_file() { # mode path
  grep -Eq "^$1 root/root .* \./$2\$" <<<"$(sed 's|0/0|root/root|' <<<"$listing")" \
    || fail "dpkg-deb -c has no $1 ./$2:"$'\n'"$listing"
}
expect_file '-rwxr-xr-x' 'usr/bin/image-chat-server'
expect_file '-rw-r--r--' 'usr/lib/systemd/system/image-chat.service'
expect_file '-rw-r-----' 'etc/image-chat/image-chat.env'
expect_file '-rw-r-----' 'etc/image-chat/tenants.toml'
expect_file '-rw-r--r--' 'usr/share/doc/image-chat-server/OPERATIONS.md'
dpkg-deb -e "$deb" "$work/DEBIAN"
for conf in /etc/image-chat/image-chat.env /etc/image-chat/tenants.toml; do
  grep -qx "$conf" "$work/DEBIAN/conffiles" || fail "$conf is not a conffile"
done
grep -q "addgroup --system --quiet image-chat-config" "$work/DEBIAN/postinst" || fail "postinst creates no group"
grep -q "deb-systemd-helper enable image-chat.service" "$work/DEBIAN/postinst" || fail "postinst enables no unit"
ok "files, modes, conffiles, maintainer scripts"

# The unit's hardening.
dpkg-deb -x "$deb" "$work/root"
unit="$work/root/usr/lib/systemd/system/image-chat.service"
for directive in DynamicUser=yes StateDirectory=image-chat NoNewPrivileges=yes ProtectSystem=strict \
  LimitNOFILE=65536 ProtectHome=yes PrivateTmp=yes PrivateDevices=yes CapabilityBoundingSet= \
  'ExecStart=/usr/bin/image-chat-server serve' 'ExecReload=/bin/kill -HUP $MAINPID' \
  EnvironmentFile=/etc/image-chat/image-chat.env SupplementaryGroups=image-chat-config; do
  grep -qxF "$directive" "$unit" || fail "the unit lacks $directive"
done
ok "unit hardening directives"

if command -v systemd-analyze >/dev/null 2>&1; then
  # verify needs the executables to exist: point the copy at the extracted ones.
  sed -e "s|/usr/bin/image-chat-server|$work/root/usr/bin/image-chat-server|" \
    -e "s|/etc/image-chat/|$work/root/etc/image-chat/|" "$unit" > "$work/image-chat.service"
  # It exits 0 on unknown keys and bad values, but says so on stderr: any output fails.
  said=$(systemd-analyze verify "$work/image-chat.service" 2>&1) || fail "systemd-analyze verify: $said"
  [ -z "$said" ] || fail "systemd-analyze verify warned:"$'\n'"$said"
  ok "systemd-analyze verify ($(systemd-analyze --version | head -n 1))"
  if exposure=$(systemd-analyze security --offline=true "$work/image-chat.service" 2>/dev/null | grep 'Overall exposure level'); then
    score=$(grep -Eo '[0-9]+\.[0-9]+' <<<"$exposure" | head -n 1)
    awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "exposure $score > 2.0: $exposure"
    ok "systemd-analyze security: exposure $score (0 = locked down, 10 = unprotected)"
  else
    echo "test-deb: systemd-analyze security --offline is not available here: exposure not scored"
  fi
else
  echo "test-deb: systemd-analyze is not installed here: the unit was not verified (install systemd)"
fi

# The packaged binary with the package's configuration (listen and database moved to a scratch
# place), no asset flags: ready, and serving the widget built into it.
set -a
# shellcheck disable=SC1091
. "$work/root/etc/image-chat/image-chat.env"
set +a
export IMAGE_CHAT_LISTEN=127.0.0.1:0 IMAGE_CHAT_DATABASE="$work/state/image-chat.db"
export IMAGE_CHAT_TENANTS="$work/root/etc/image-chat/tenants.toml"
mkdir -p "$work/state"
"$work/root/usr/bin/image-chat-server" serve > "$work/stdout" 2> "$work/stderr" &
server_pid=$!
for _ in $(seq 100); do
  grep -q 'listening on' "$work/stdout" 2>/dev/null && break
  sleep 0.1
done
url=$(sed -n 's/^image-chat-server listening on //p' "$work/stdout")
[ -n "$url" ] || fail "the packaged server did not start: $(cat "$work/stderr")"
# "STATUS CONTENT-TYPE BYTES" of a GET (node: always here, unlike curl).
http() {
  node -e 'fetch(process.argv[1]).then(async (r) => console.log(r.status, r.headers.get("content-type"), (await r.arrayBuffer()).byteLength), (e) => console.log("000", e.message))' "$1"
}
[ "$(http "$url/readyz")" = "200 application/json 45" ] || fail "/readyz: $(http "$url/readyz")"
embed=$(http "$url/embed.js")
grep -q '^200 text/javascript' <<<"$embed" || fail "/embed.js: $embed"
wasm=$(http "$url/pkg/image_chat_bg.wasm")
grep -q '^200 application/wasm' <<<"$wasm" || fail "/pkg/image_chat_bg.wasm: $wasm"
grep -q 'no tenants: every connection will be refused' "$work/stderr" \
  || fail "the default configuration should start with no tenant (and no demo tenant)"
ok "packaged binary: /readyz 200, /embed.js and the wasm ($wasm) built in, no demo tenant"
