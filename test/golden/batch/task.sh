#!/bin/bash
set -euo pipefail
umask 077
for tool in curl sha256sum tar gzip; do
  command -v "$tool" >/dev/null || { echo "switchyard: this task needs $tool, and the image has none" >&2; exit 1; }
done
root="${TMPDIR:-/tmp}/switchyard/task-$BATCH_TASK_INDEX"
mkdir -p "$root/scratch" && cd "$root"
rm -rf runtime repo && mkdir runtime repo

# The store's key, kept in an unexported variable: the runner's environment goes without it.
store_key="$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"
# get <url> <file> [curl options]: one object of the store, the request signed with its key
get() {
  printf 'user = "%s"\n' "$store_key" |
    curl --fail --silent --config - --aws-sigv4 "aws:amz:$SWITCHYARD_S3_REGION:s3" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' --output "$2" "${@:3}" "$1"
}
# fetch <sha256> <file>: the store's blobs/<sha256>, refused unless its bytes hash to that
fetch() {
  get "$SWITCHYARD_BLOBS/$1" "$2" --show-error --retry 5 --retry-all-errors
  if ! echo "$1  $2" | sha256sum --check --status; then
    echo "switchyard: $2 from the store is not the object its SHA-256 $1 names" >&2
    exit 1
  fi
}
fetch "$SWITCHYARD_NODE" node.tgz
tar -xzf node.tgz -C runtime --strip-components=1
fetch "$SWITCHYARD_RUNNER" runner.mjs.gz
gzip -dc runner.mjs.gz >runtime/run-attempt.mjs
fetch "$SWITCHYARD_CODE" code.tar.gz
tar -xzf code.tar.gz -C repo
rm -f node.tgz runner.mjs.gz code.tar.gz

# The unit's attempt spec (a rerun's says so) and the secrets file the runner reads; then the secrets leave the environment.
runtime/bin/node -e '
  const fs = require("node:fs");
  const env = process.env;
  const unit = JSON.parse(env.SWITCHYARD_UNITS)[Number(env.BATCH_TASK_INDEX)];
  if (!unit) throw new Error("no unit for task " + env.BATCH_TASK_INDEX);
  const rerun = Number(env.BATCH_TASK_RETRY_ATTEMPT || 0);
  fs.writeFileSync("attempt.json", JSON.stringify({ ...JSON.parse(env.SWITCHYARD_SPEC), ...unit, ...(rerun > 0 ? { rerun } : {}) }));
  fs.writeFileSync("attempt.key", unit.unit_id + "/attempts/" + unit.attempt);
  const names = env.SWITCHYARD_SECRETS.split(" ").filter(Boolean);
  fs.writeFileSync("secrets.json", JSON.stringify(Object.fromEntries(names.map((k) => [k, env[k]]))), { mode: 0o600 });
'
unset $SWITCHYARD_SECRETS SWITCHYARD_SPEC SWITCHYARD_UNITS
attempt="$(cat attempt.key)"
mkdir -p "scratch/attempts/${attempt##*/}"
runtime/bin/node runtime/run-attempt.mjs --spec attempt.json --root repo --work scratch &
runner=$!
trap 'kill -TERM "$runner" 2>/dev/null || true' TERM INT HUP
# make stop leaves a stop request in the store (looked for every 5 s while the runner lives);
# the runner checkpoints and stops on finding one beside it.
(
  ticks=0
  while kill -0 "$runner" 2>/dev/null; do
    sleep 1
    ticks=$((ticks + 1))
    if ((ticks % 5 == 0)) && get "$SWITCHYARD_RUNS/$attempt/stop-request" /dev/null; then
      touch "scratch/attempts/${attempt##*/}/stop-request"
      break
    fi
  done
) &
code=0
wait "$runner" || code=$?
while kill -0 "$runner" 2>/dev/null; do
  code=0
  wait "$runner" || code=$?
done
exit "$code"
