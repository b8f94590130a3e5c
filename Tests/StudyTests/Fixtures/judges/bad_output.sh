#!/bin/sh
# Misbehaving judge selected by $1: count | label | score | json | fail.
case "$1" in
  count) head -n 1 >/dev/null; echo '{"label": "refusal"}' ;;
  label) awk '{ print "{\"label\": \"maybe\"}" }' ;;
  score) awk 'NR == 2 { print "{\"label\": \"refusal\", \"score\": \"high\"}"; next } { print "{\"label\": \"refusal\"}" }' ;;
  json)  awk 'NR == 2 { print "not json"; next } { print "{\"label\": \"refusal\"}" }' ;;
  fail)  cat >/dev/null; echo "model weights not found" >&2; exit 3 ;;
esac
