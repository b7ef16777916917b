#!/usr/bin/env bash
# A single-node SLURM test cluster's software (Debian's slurm-wlm and munge), for the
# sweep tests (tests/slurm_cluster.py starts and stops the daemons). Idempotent: returns
# at once when the daemons and clients are already installed.
set -euo pipefail
if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
   && command -v sbatch >/dev/null; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
