should_fail="$1"
if [ "$should_fail" = "true" ]; then
  echo "failing on purpose" >&2
  exit 3
fi
echo '{"ok": true}'
