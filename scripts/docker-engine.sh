#!/usr/bin/env bash
# Makes sure a local Docker engine answers, for the Docker grading runner and for
# deployment/grader-image/build-local.sh. Idempotent and quick when all is there:
#   1. installs Debian's docker.io and debootstrap with apt (as root) if missing,
#      from the machine's configured Debian sources;
#   2. starts dockerd in the background if `docker info` fails, without iptables
#      and without the default bridge network (containers get host or none
#      networking only), logging to $DOCKERD_LOG (default /tmp/dockerd.log);
#   3. waits until `docker info` answers ($DOCKER_WAIT seconds, default 60).
# Exits non-zero with a message on stderr if the engine cannot be had.
# Needs no standard input.
set -euo pipefail
exec </dev/null

log=${DOCKERD_LOG:-/tmp/dockerd.log}
wait_s=${DOCKER_WAIT:-60}
say() { echo "docker-engine: $*" >&2; }
die() { say "$*"; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }
# Without procps: any process named dockerd?
dockerd_running() { grep -qsx dockerd /proc/[0-9]*/comm; }

# 1. Packages.
missing=()
command -v docker >/dev/null 2>&1 || missing+=(docker.io)
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  # docker.io for both binaries; cgroupfs-mount in case nothing mounts cgroups.
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | xargs)
  if ! is_root || ! command -v apt-get >/dev/null 2>&1; then
    die "please install (as root, with apt): $pkgs"
  fi
  case " $pkgs " in *" docker.io "*) pkgs="$pkgs cgroupfs-mount" ;; esac
  say "installing $pkgs"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $pkgs >/dev/null ||
    die "apt-get install $pkgs failed"
fi

# 2. The engine.
if docker info >/dev/null 2>&1; then
  exit 0
fi

if ! dockerd_running; then
  if ! is_root; then
    die "no Docker engine answers and starting dockerd needs root (docker info: $(docker info 2>&1 | tail -n 1))"
  fi
  # Without systemd, nothing may have mounted the cgroup hierarchies.
  if ! mountpoint -q /sys/fs/cgroup 2>/dev/null && command -v cgroupfs-mount >/dev/null 2>&1; then
    cgroupfs-mount || say "cgroupfs-mount failed; trying dockerd anyway"
  fi
  say "starting dockerd (log: $log)"
  mkdir -p "$(dirname "$log")"
  # setsid: the daemon outlives this script and the caller's process group.
  setsid dockerd --iptables=false --bridge=none >>"$log" 2>&1 </dev/null &
  dpid=$!
fi
alive() { { [ -n "${dpid:-}" ] && kill -0 "$dpid" 2>/dev/null; } || dockerd_running; }

# 3. Wait for it.
deadline=$((SECONDS + wait_s))
until docker info >/dev/null 2>&1; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    say "the Docker engine did not answer within ${wait_s}s; last lines of $log:"
    tail -n 20 "$log" >&2 2>/dev/null || true
    die "giving up (docker info: $(docker info 2>&1 | tail -n 1))"
  fi
  if ! alive; then
    say "dockerd exited; last lines of $log:"
    tail -n 20 "$log" >&2 2>/dev/null || true
    die "the Docker engine could not be started"
  fi
  sleep 0.5
done
say "the Docker engine answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
