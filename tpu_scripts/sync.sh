#!/usr/bin/env bash
# Copy a run directory (checkpoints, metrics, config.gin) to or from a gs:// bucket with
# `gcloud storage rsync`. Runs here, or with --name on one worker of a TPU VM (paths are then
# the worker's).
# shellcheck source-path=SCRIPTDIR
USAGE="usage: sync.sh --from=PATH --to=PATH [--name=NAME --zone=ZONE [--worker=0]] \
[--project=ID] [--dry-run]   (one of the two paths is gs://...)"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

parse_flags "from to name zone project worker" "" "" "$@"
require from to
if [[ ${OPT[from]} != gs://* && ${OPT[to]} != gs://* ]]; then
  die "one of --from and --to must be a gs:// path"
fi
copy=(gcloud storage rsync --recursive "${OPT[from]}" "${OPT[to]}")
if [[ -z ${OPT[name]:-} ]]; then
  [[ -z ${OPT[worker]:-} ]] || die "--worker needs --name"
  [[ -z ${OPT[project]:-} ]] || copy+=("--project=${OPT[project]}")
  run "${copy[@]}"
else
  require zone
  mapfile -t location < <(gcloud_location)
  run gcloud compute tpus tpu-vm ssh "${OPT[name]}" --worker="${OPT[worker]:-0}" \
    "${location[@]}" --command="$(quote_all "${copy[@]}")"
fi
