#!/usr/bin/env bash
# Request a TPU VM or pod slice as a queued resource; its node gets the same name.
# The runtime (TPU software version) defaults to the one Cloud TPU recommends for JAX on
# that generation (cloud.google.com/tpu/docs/runtimes).
# shellcheck source-path=SCRIPTDIR
USAGE="usage: create.sh --name=NAME --zone=ZONE --accelerator-type=TYPE [--version=RUNTIME] \
[--project=ID] [--spot | --reserved] [--dry-run]"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

parse_flags "name zone accelerator-type version project" "spot reserved" "" "$@"
require name zone accelerator-type
type=${OPT[accelerator-type]}
if [[ -z ${OPT[version]:-} ]]; then
  case $type in
    v2-* | v3-* | v4-*) OPT[version]=tpu-ubuntu2204-base ;;
    v5litepod-*) OPT[version]=v2-alpha-tpuv5-lite ;;
    v5p-*) OPT[version]=v2-alpha-tpuv5 ;;
    v6e-*) OPT[version]=v2-alpha-tpuv6e ;;
    *) die "no default runtime for --accelerator-type=$type: pass --version=RUNTIME" ;;
  esac
fi
if [[ -n ${OPT[spot]:-} && -n ${OPT[reserved]:-} ]]; then
  die "--spot and --reserved exclude each other"
fi

mapfile -t location < <(gcloud_location)
command=(gcloud compute tpus queued-resources create "${OPT[name]}"
  --node-id="${OPT[name]}" "${location[@]}"
  --accelerator-type="$type" --runtime-version="${OPT[version]}")
[[ -z ${OPT[spot]:-} ]] || command+=(--spot)
[[ -z ${OPT[reserved]:-} ]] || command+=(--reserved)
run "${command[@]}"
note "the slice is ready when this shows state ACTIVE:"
note "  $(quote_all gcloud compute tpus queued-resources describe "${OPT[name]}" "${location[@]}")"
