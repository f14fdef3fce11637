#!/usr/bin/env bash
# The image's HEALTHCHECK: exit 0 when `radix serve` in this container answers GET /health with
# 200 (it does once the model is loaded and warmed up, and 503 while draining). Uses bash's
# /dev/tcp so the runtime image needs no curl. Reads the port and API key from the same
# environment variables radix serve does.
set -uo pipefail

port=${RADIX_PORT:-${PORT:-3000}}
timeout_s=${RADIX_HEALTHCHECK_TIMEOUT:-5}

exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
request="GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
if [[ -n ${RADIX_API_KEY:-} ]]; then
  request+="Authorization: Bearer ${RADIX_API_KEY}\r\n"
fi
printf "%b\r\n" "$request" >&3
status_line=""
IFS= read -r -t "$timeout_s" status_line <&3 || exit 1
exec 3<&-
# "HTTP/1.1 200 OK\r"
[[ $status_line =~ ^HTTP/1\.[01]\ 200 ]]
