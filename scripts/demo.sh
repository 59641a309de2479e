#!/usr/bin/env bash
# The demo: installs what is missing, builds the widget (which the server build then carries
# inside its binary), and runs the server on an embedded SQLite file (no external service) at
# http://127.0.0.1:8080/ (override with IMAGE_CHAT_LISTEN, IMAGE_CHAT_DATABASE), with the demo
# site from www/. Open the page in two windows to watch the live sync.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh demo
bash scripts/build-widget.sh
export PATH="$HOME/.cargo/bin:$PATH"
exec cargo run --quiet --profile server -p image-chat-server -- serve \
  --listen "${IMAGE_CHAT_LISTEN:-127.0.0.1:8080}" \
  --database "${IMAGE_CHAT_DATABASE:-demo.db}" \
  --www-dir www
