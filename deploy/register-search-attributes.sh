#!/bin/sh
# Register Dunning's search attributes (SPEC 3) in Temporal, idempotently: attributes that
# already exist are left alone, so this one-shot service can run on every `compose up`.
# Input: SEARCH_ATTRIBUTES="Name=Type ..." (Type: Keyword, Datetime, Text, Int, Double, Bool,
# KeywordList), TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE.
set -eu

address="${TEMPORAL_ADDRESS:-temporal:7233}"
namespace="${TEMPORAL_NAMESPACE:-default}"

# The server may be healthy before the namespace exists (auto-setup creates it).
tries=0
until temporal operator namespace describe --address "$address" -n "$namespace" >/dev/null 2>&1
do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "namespace $namespace not available at $address" >&2
    exit 1
  fi
  sleep 2
done

existing="$(temporal operator search-attribute list --address "$address" -n "$namespace")"
for pair in $SEARCH_ATTRIBUTES; do
  name="${pair%%=*}"
  type="${pair#*=}"
  if printf '%s\n' "$existing" | awk '{print $1}' | grep -qx "$name"; then
    echo "search attribute $name already registered"
    continue
  fi
  temporal operator search-attribute create --address "$address" -n "$namespace" \
    --name "$name" --type "$type"
  echo "registered search attribute $name ($type)"
done
