#!/usr/bin/env bash
# Builds the perfwatch container image from scratch layers with buildah
# (deploy/Containerfile): no base image is pulled, so it works where no
# registry can be reached.
#
# It stages the build context in a temporary directory: the binary (stripped),
# every shared library `ldd` lists for it at the path ldd prints (the ELF
# interpreter included: the binary names it by absolute path), the system's
# CA bundle, /etc/passwd and /etc/group with root and perfwatch (10001, no
# login shell), /etc/nsswitch.conf, an empty /etc/perfwatch/ with the example
# config, and the LICENSE. Then `buildah bud` with the vfs storage driver
# (no overlay or fuse needed; works in an unprivileged container as root).
#
# Usage: scripts/build-image.sh [options]
#   --binary PATH        perfwatch binary to package (default: build
#                        target/release/perfwatch with `cargo build --release`)
#   --tag NAME           image name (default: perfwatch:<version>)
#   --storage-root DIR   buildah --root (default: buildah's own)
#   --runroot DIR        buildah --runroot (default: buildah's own)
#   --oci-archive FILE   also write the image as an OCI archive (what
#                        `podman load` / `skopeo copy` read)
#
# Prints the image's name and size. Needs root (or a user namespace set up
# for buildah), buildah, ldd (libc-bin), strip (binutils) and the CA bundle
# (ca-certificates); scripts/install-test-deps.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
tag=""
storage_opts=(--storage-driver vfs)
oci_archive=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --binary) binary=$2; shift 2 ;;
        --tag) tag=$2; shift 2 ;;
        --storage-root) storage_opts+=(--root "$2"); shift 2 ;;
        --runroot) storage_opts+=(--runroot "$2"); shift 2 ;;
        --oci-archive) oci_archive=$2; shift 2 ;;
        *) echo "usage: $0 [--binary PATH] [--tag NAME] [--storage-root DIR] [--runroot DIR] [--oci-archive FILE]" >&2; exit 2 ;;
    esac
done

need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "build-image: $1 not found: apt-get install -y $2 (or run scripts/install-test-deps.sh)" >&2
        exit 1
    fi
}
need buildah buildah
need ldd libc-bin
need strip binutils
ca_bundle=/etc/ssl/certs/ca-certificates.crt
if [[ ! -s $ca_bundle ]]; then
    echo "build-image: $ca_bundle missing: apt-get install -y ca-certificates" >&2
    exit 1
fi

if [[ -z $binary ]]; then
    cargo build --release --locked -p perfwatch --bin perfwatch
    binary=target/release/perfwatch
fi
if [[ ! -x $binary ]]; then
    echo "build-image: binary $binary is not an executable file" >&2
    exit 1
fi

# The binary's own account of itself labels the image.
version_text=$("$binary" --version)
version=$(sed -n '1s/^perfwatch //p' <<<"$version_text")
revision=$(sed -n 's/^ *revision: *//p' <<<"$version_text")
if [[ -z $version ]]; then
    echo "build-image: $binary --version printed no version: $version_text" >&2
    exit 1
fi
tag=${tag:-perfwatch:$version}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
rootfs=$stage/rootfs
# var/lib here (root's), so that the Containerfile's chowned COPY creates
# only var/lib/perfwatch itself.
install -d -m 0755 "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs" "$rootfs/etc/perfwatch" \
    "$rootfs/usr/share/doc/perfwatch" "$rootfs/var/lib" "$stage/state"
install -m 0755 "$binary" "$rootfs/usr/local/bin/perfwatch"
strip "$rootfs/usr/local/bin/perfwatch"

# Shared libraries: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)"
# and the interpreter "/lib64/ld-linux-x86-64.so.2 (0x...)". vdso lines have
# no path. A "not found" line means the binary cannot run anywhere: stop.
ldd_out=$(ldd "$binary")
if grep -q 'not found' <<<"$ldd_out"; then
    echo "build-image: ldd $binary: a library is missing:" >&2
    echo "$ldd_out" >&2
    exit 1
fi
libs=$(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$ldd_out")
if [[ -z $libs ]]; then
    # A static binary (e.g. musl) needs none; say so rather than guess.
    echo "build-image: ldd lists no shared library for $binary (static?)" >&2
fi
for lib in $libs; do
    install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
done

install -m 0644 "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
# Login shells name a file the image does not have: no account can log in.
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nperfwatch:x:10001:10001:perfwatch:/nonexistent:/usr/sbin/nologin\n' \
    >"$rootfs/etc/passwd"
printf 'root:x:0:\nperfwatch:x:10001:\n' >"$rootfs/etc/group"
# glibc's resolver reads it; without it glibc's built-in default would try DNS
# before /etc/hosts, which Kubernetes and Docker fill.
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group" "$rootfs/etc/nsswitch.conf"
install -m 0644 config/perfwatch.example.toml "$rootfs/etc/perfwatch/perfwatch.example.toml"
install -m 0644 config/quickstart.toml "$rootfs/etc/perfwatch/quickstart.toml"
install -m 0644 LICENSE "$rootfs/usr/share/doc/perfwatch/LICENSE"

buildah "${storage_opts[@]}" bud --quiet \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.revision=$revision" \
    -f deploy/Containerfile -t "$tag" "$stage" >/dev/null

if [[ -n $oci_archive ]]; then
    rm -f "$oci_archive"
    buildah "${storage_opts[@]}" push --quiet "$tag" "oci-archive:$oci_archive:$tag"
    echo "build-image: wrote $oci_archive ($(stat -c %s "$oci_archive") bytes)"
fi
size=$(buildah "${storage_opts[@]}" images --format '{{.Size}}' "$tag")
echo "build-image: built $tag ($size uncompressed)"
