#!/usr/bin/env bash
# Delete the queued resource and its TPU VM (--force deletes the running node first).
# Copy what you need first (sync.sh): the workers' disks go with it.
# shellcheck source-path=SCRIPTDIR
USAGE="usage: delete.sh --name=NAME --zone=ZONE [--project=ID] [--dry-run]"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

parse_flags "name zone project" "" "" "$@"
require name zone
mapfile -t location < <(gcloud_location)
run gcloud compute tpus queued-resources delete "${OPT[name]}" "${location[@]}" --force --quiet
