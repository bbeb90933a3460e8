#!/usr/bin/env bash
# Stream the training log of one worker (default 0, which writes the metrics) or all of them.
# shellcheck source-path=SCRIPTDIR
USAGE="usage: logs.sh --name=NAME --zone=ZONE [--worker=0|all] [--lines=100] [--project=ID] \
[--dry-run]"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

parse_flags "name zone project worker lines" "" "" "$@"
require name zone
worker=${OPT[worker]:-0}
[[ $worker =~ ^([0-9]+|all)$ ]] || die "--worker must be a number or all, got '$worker'"
lines=${OPT[lines]:-100}
[[ $lines =~ ^[0-9]+$ ]] || die "--lines must be a number, got '$lines'"
mapfile -t location < <(gcloud_location)
run gcloud compute tpus tpu-vm ssh "${OPT[name]}" --worker="$worker" "${location[@]}" \
  --command="tail -n $lines -F $REMOTE_LOG"
