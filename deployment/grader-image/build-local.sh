#!/usr/bin/env bash
# Builds the grading image into the local Docker engine without any container
# registry: the base is a Debian bookworm made here with debootstrap (from the
# mirror in the machine's apt sources) and `docker import`, and the virtualenv
# layer is installed by pip with the machine's own pip configuration.
# The image contract is in README.md; Dockerfile is the registry equivalent.
#
# Tags: otter-service-grader:<12 hex of sha256(requirements.txt + this script)>
#       otter-service-grader:local
# Does nothing (but point :local at it) if the first tag exists. The debootstrap
# tarball is cached in <repo>/var/grader-image/, so a requirements change only
# redoes the pip layer. Runs as root (debootstrap); needs no standard input.
# Environment: DEBIAN_MIRROR overrides the mirror read from the apt sources.
set -euo pipefail
exec </dev/null

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
req=$here/requirements.txt
name=otter-service-grader
tag=$(cat "$req" "$here/build-local.sh" | sha256sum | cut -c1-12)
image=$name:$tag

say() { echo "build-local: $*" >&2; }
die() { say "$*"; exit 1; }
t0=$SECONDS
step_t=$SECONDS
step() { step_t=$SECONDS; say "$*"; }
took() { say "$1 took $((SECONDS - step_t))s"; }

bash "$repo/scripts/docker-engine.sh"
export DOCKER_BUILDKIT=0 # the classic builder: Debian's docker.io has no buildx

if docker image inspect "$image" >/dev/null 2>&1; then
  docker tag "$image" "$name:local"
  say "$image is there (also $name:local)"
  exit 0
fi

[ "$(id -u)" = 0 ] || die "building the image needs root (debootstrap)"
cache=$repo/var/grader-image
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9 # one build at a time; the other one may have built it meanwhile
if docker image inspect "$image" >/dev/null 2>&1; then
  docker tag "$image" "$name:local"
  say "$image is there (also $name:local)"
  exit 0
fi

# ---- The base: debootstrap, cached as a tarball, imported as an image. ----
suite=bookworm
arch=$(dpkg --print-architecture)
include=python3,python3-venv,ca-certificates
base_rev=1 # bump when the rootfs recipe below changes
base_key=$(echo "$base_rev $suite $arch minbase $include" | sha256sum | cut -c1-12)
base=$name-base:$base_key
tarball=$cache/rootfs-$suite-$arch-$base_key.tar

# The first URI that serves "<suite> main" in the machine's apt sources, in
# one-line (*.list) or deb822 (*.sources) format.
apt_mirror() {
  local suite=$1 f all
  all=$(
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] || continue
      awk -v s="$suite" '
        $1 == "deb" {
          i = 2
          if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
          if ($(i + 1) != s) next
          for (j = i + 2; j <= NF; j++) if ($j == "main") { print $i; exit }
        }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] || continue
      awk -v s="$suite" '
        BEGIN { RS = ""; FS = "\n" }
        {
          split("", v); key = ""
          for (i = 1; i <= NF; i++) {
            line = $i
            if (line ~ /^#/) continue
            if (line ~ /^[ \t]/) { if (key != "") v[key] = v[key] " " line; continue }
            p = index(line, ":"); if (!p) continue
            key = tolower(substr(line, 1, p - 1)); v[key] = substr(line, p + 1)
          }
          if (tolower(v["enabled"]) ~ /no/) next
          if ((" " v["types"] " ") !~ /[ \t]deb[ \t]/) next
          if ((" " v["suites"] " ") !~ ("[ \t]" s "[ \t]")) next
          if ((" " v["components"] " ") !~ /[ \t]main[ \t]/) next
          n = split(v["uris"], u, /[ \t]+/)
          for (j = 1; j <= n; j++) if (u[j] != "") { print u[j]; exit }
        }' "$f"
    done
  )
  printf '%s\n' "${all%%$'\n'*}"
}

rootfs=
cleanup() {
  if [ -n "$rootfs" ] && [ -d "$rootfs" ]; then
    # debootstrap mounts proc and sys in the target; never delete through them.
    awk -v r="$rootfs/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r |
      while read -r m; do umount -l "$m" || true; done
    rm -rf --one-file-system "$rootfs"
  fi
  [ -z "${ctx:-}" ] || rm -rf "$ctx"
}
trap cleanup EXIT

if ! docker image inspect "$base" >/dev/null 2>&1; then
  if [ ! -f "$tarball" ]; then
    mirror=${DEBIAN_MIRROR:-$(apt_mirror "$suite")}
    [ -n "$mirror" ] || die "no apt source serves '$suite main' (deb) in /etc/apt/sources.list{,.d/}; set DEBIAN_MIRROR"
    # debootstrap fetches with wget, which takes its proxy from the environment.
    if [ -z "${http_proxy:-}${https_proxy:-}" ] && command -v apt-config >/dev/null 2>&1; then
      eval "$(apt-config shell http_proxy Acquire::http::Proxy https_proxy Acquire::https::Proxy)"
      [ -z "${http_proxy:-}" ] || export http_proxy
      [ -z "${https_proxy:-}" ] || export https_proxy
    fi
    command -v debootstrap >/dev/null 2>&1 || die "debootstrap is missing (scripts/docker-engine.sh installs it)"
    rootfs=$(mktemp -d "${TMPDIR:-/var/tmp}/otter-grader-rootfs.XXXXXX")
    step "debootstrap --variant=minbase --include=$include $suite ($arch) from $mirror"
    if ! debootstrap --variant=minbase --arch="$arch" --include="$include" \
      "$suite" "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1; then
      tail -n 20 "$cache/debootstrap.log" >&2
      [ ! -f "$rootfs/debootstrap/debootstrap.log" ] || tail -n 20 "$rootfs/debootstrap/debootstrap.log" >&2
      die "debootstrap failed (log: $cache/debootstrap.log)"
    fi
    took debootstrap

    step "trimming and packing the root filesystem"
    (
      cd "$rootfs"
      rm -rf var/cache/apt/archives/*.deb var/cache/apt/archives/partial/* var/cache/apt/*.bin \
        var/lib/apt/lists/* var/cache/debconf/*-old var/lib/dpkg/*-old \
        usr/share/man/* usr/share/info/* usr/share/locale/* usr/share/lintian
      find var/log -type f -delete
      # Documentation, except the copyright files.
      find usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
      find usr/share/doc -mindepth 1 -type d -empty -delete
      # The engine provides these at run time; keep nothing of the host in them.
      : >etc/resolv.conf
      echo localhost >etc/hostname
    )
    tar -C "$rootfs" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
      -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    rm -f "$cache"/rootfs-*.tar.part
    # Older base tarballs are of no more use.
    find "$cache" -maxdepth 1 -name 'rootfs-*.tar' ! -path "$tarball" -delete
    took "trimming and packing ($(du -h "$tarball" | cut -f1))"
  fi
  step "docker import $tarball as $base"
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=minbase --include=$include $suite" \
    "$tarball" "$base" >/dev/null
  took "docker import"
fi

# ---- The grading layer: the virtualenv, the user, the working directory. ----
# pip runs in a builder stage with the machine's pip configuration: its config
# files, its PIP_* environment and the files these name (a cert bundle, a
# find-links directory), copied at the same paths. The final stage copies only
# /opt/otter out of it, so none of the machine's files land in the image.
ctx=$(mktemp -d "${TMPDIR:-/tmp}/otter-grader-ctx.XXXXXX")
mkdir -p "$ctx/hostfs"
cp "$req" "$ctx/requirements.txt"
: >"$ctx/pip.env"
paths=()
while IFS='=' read -r k v; do
  printf "export %s='%s'\n" "$k" "${v//\'/\'\\\'\'}" >>"$ctx/pip.env" # for sh, not bash
  paths+=("$v")
done < <(env | grep -E '^PIP_[A-Z0-9_]+=' || true)
confs=()
IFS=: read -r -a xdg <<<"${XDG_CONFIG_DIRS:-/etc/xdg}"
for d in "${xdg[@]}"; do confs+=("$d/pip/pip.conf"); done
home=${HOME:-/root}
confs+=(/etc/pip.conf "$home/.pip/pip.conf" "${XDG_CONFIG_HOME:-$home/.config}/pip/pip.conf")
[ -z "${PIP_CONFIG_FILE:-}" ] || [ "$PIP_CONFIG_FILE" = /dev/null ] || confs+=("$PIP_CONFIG_FILE")
for f in "${confs[@]}"; do
  [ -f "$f" ] || continue
  case $f in
    "$home"/*) install -D -m 0644 "$f" "$ctx/hostfs/root/${f#"$home"/}" ;; # pip runs as root there
  esac
  install -D -m 0644 "$f" "$ctx/hostfs/$f"
  paths+=("$(cat "$f")")
done
# Absolute paths (or file:// URLs) named in these values that exist here.
for p in $(printf '%s\n' "${paths[@]}" | grep -oE '(file://)?/[^[:space:]"'"'"',;]+' | sed 's|^file://||' | sort -u); do
  [ "$p" != / ] && [ -e "$p" ] || continue
  cp -rL --parents "$p" "$ctx/hostfs/"
done
say "pip configuration of this machine for the build: $(grep -o '^export [A-Z0-9_]*' "$ctx/pip.env" | cut -c8- | tr '\n' ' ')$(cd "$ctx/hostfs" && find . ! -type d | cut -c2- | sort | tr '\n' ' ')"
cat >"$ctx/Dockerfile" <<'EOF'
ARG BASE
FROM ${BASE} AS venv
LABEL otter-service.grader.stage=venv
COPY hostfs/ /
COPY pip.env requirements.txt /tmp/build/
RUN set -e; . /tmp/build/pip.env; \
    python3 -m venv /opt/otter; \
    /opt/otter/bin/pip install --no-cache-dir --no-input -r /tmp/build/requirements.txt; \
    /opt/otter/bin/python -c 'import otter, numpy, pandas, scipy, matplotlib, seaborn, datascience, folium, tqdm, ipywidgets, gspread; print("otter", otter.__version__)'

FROM ${BASE}
COPY --from=venv /opt/otter /opt/otter
RUN groupadd --gid 1000 grader \
 && useradd --uid 1000 --gid 1000 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin grader \
 && install -d -o 1000 -g 1000 -m 0755 /autograder
ENV PATH=/opt/otter/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    VIRTUAL_ENV=/opt/otter \
    HOME=/tmp \
    LANG=C.UTF-8
WORKDIR /autograder
USER 1000:1000
CMD ["python3", "-c", "from otter.run.run_autograder import main; main('/autograder')"]
EOF
proxy_args=()
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  [ -z "${!v:-}" ] || proxy_args+=(--build-arg "$v")
done

step "docker build (pip install -r requirements.txt into /opt/otter) as $image"
if ! docker build --network host --build-arg "BASE=$base" "${proxy_args[@]}" \
  --label "org.opencontainers.image.title=$name" --label "otter-service.grader.base=$base" \
  -t "$image" -t "$name:local" "$ctx" >"$cache/build.log" 2>&1; then
  tail -n 30 "$cache/build.log" >&2
  die "docker build failed (log: $cache/build.log)"
fi
took "docker build"
# The builder stage holds this machine's pip files (a cert bundle): drop it.
step "removing the builder stage"
docker image prune --force --filter label=otter-service.grader.stage=venv >/dev/null || true
took "removing the builder stage"
grep -E '^otter ' "$cache/build.log" | tail -n 1 | sed 's/^/build-local: /' >&2 || true
say "built $image and $name:local ($(docker image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')) in $((SECONDS - t0))s"
